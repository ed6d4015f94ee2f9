"""`automl evaluate | explain | compare | report`: understanding a registered model from the shell."""

from __future__ import annotations

import json

from .errors import AutoMLError


def _plain(value):
    from .assessment import _plain as plain

    return plain(value)


def _store():
    from store import Store

    return Store()


def _load(store, ref: str):
    version = store.registry.get(ref)
    meta = store.registry.get_document(version.ref, "meta") or {"task": version.task}
    return version, store.registry.load(version.ref), meta


def _training_sample(store, version, meta: dict, rows: int = 200):
    from .intake import read_table

    sha = version.data_sha256
    if not sha:
        return None
    frame = read_table(store.artifacts.load_bytes(sha))
    if meta.get("target") in frame.columns:
        frame = frame.drop(columns=[meta["target"]])
    return frame.sample(min(rows, len(frame)), random_state=0)


def cmd_evaluate(args) -> int:
    from .assessment import assess_on_data
    from .evaluation import ConformalIntervals
    from .intake import read_table

    store = _store()
    version, pipeline, meta = _load(store, args.ref)
    target = args.target or meta.get("target")
    if not target:
        raise AutoMLError(f"{version.ref} has no target (a clustering model?); nothing to evaluate against")
    frame = read_table(args.data)
    intervals = None
    assessment = store.registry.get_document(version.ref, "assessment") or {}
    half = (assessment.get("intervals") or {}).get("half_width")
    if half is not None:
        intervals = ConformalIntervals(alpha=assessment["intervals"]["alpha"])
        intervals.quantile_ = float(half)
        intervals.n_calibration_ = int(assessment.get("n_rows") or 0)
    result = assess_on_data(pipeline, meta, frame, target, intervals=intervals)
    metrics = {k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))}
    if result.get("intervals"):
        metrics["interval_coverage"] = result["intervals"]["coverage"]
    if args.json:
        print(json.dumps(_plain(metrics)))
        return 0
    print(f"{version.ref} on {args.data} ({result['n_rows']} labelled rows)")
    for name, value in metrics.items():
        print(f"  {name:<26} {value:.6g}")
    return 0


def _parse_rows(spec: str, n: int) -> list[int]:
    if ":" in spec:
        start, _, stop = spec.partition(":")
        return list(range(int(start or 0), min(int(stop or n), n)))
    return [int(part) for part in spec.split(",") if part.strip()]


def cmd_explain(args) -> int:
    from .explain import Explainer
    from .intake import read_table

    store = _store()
    version, pipeline, meta = _load(store, args.ref)
    if version.task == "clustering":
        raise AutoMLError("explanations are for supervised models; this one is a clustering")
    frame = read_table(args.data, drop_empty_rows=False)
    rows = _parse_rows(args.rows, len(frame))
    bad = [r for r in rows if r < 0 or r >= len(frame)]
    if bad or not rows:
        raise AutoMLError(f"--rows {args.rows} does not select rows of {args.data} (it has {len(frame)} rows)")
    background = _training_sample(store, version, meta)
    if background is None:
        background = frame
    positive = meta.get("positive_class") if version.task == "binary" else None
    explainer = Explainer(pipeline, background, version.task, classes=meta.get("classes"), target_class=positive)
    explanation = explainer.explain(frame.iloc[rows])
    out = []
    for i, row in zip(rows, explanation.contributions.index):
        contributions = explanation.contributions.loc[row]
        out.append({
            "row": i,
            "prediction": _plain(explanation.prediction.loc[row]),
            "explained": _plain(explanation.explained_class.loc[row]) if explanation.explained_class is not None else None,
            "output": _plain(explanation.output.loc[row]),
            "base_value": _plain(explanation.base_value.loc[row]),
            "contributions": _plain(contributions.to_dict()),
        })
    if args.json:
        print(json.dumps({"method": explanation.method, "space": explanation.space, "rows": out}))
        return 0
    for item in out:
        what = f"P({item['explained']})" if item["explained"] is not None else "prediction"
        print(f"row {item['row']}: prediction {item['prediction']}  {what} = {item['output']:.4g} "
              f"= base {item['base_value']:.4g} + contributions ({explanation.method})")
        ranked = sorted(item["contributions"].items(), key=lambda kv: -abs(kv[1]))
        for column, value in ranked[:10]:
            print(f"    {column:<28} {value:+.4g}")
    return 0


def cmd_compare(args) -> int:
    from .comparison import compare_versions

    store = _store()
    result = compare_versions(store, args.refs, data=args.data, target=args.target)
    if args.json:
        print(json.dumps(result, default=str))
        return 0
    print(f"metric: {result['metric']} ({'higher' if result['greater_is_better'] else 'lower'} is better)")
    for row in result["table"]:
        print(f"  {row['model']:<28} cv {row['cv_score']:.6g}  chosen {row['chosen']}")
    for row in result.get("data_table", []):
        value = row.get(result["metric"])
        print(f"  on data: {row['model']:<20} {result['metric']} {value if value is None else f'{value:.6g}'}")
    for test in result["tests"]:
        print(f"  {test['a']} vs {test['b']}: {test['summary']}")
    return 0


def cmd_report(args) -> int:
    from .report import render_html, version_report

    store = _store()
    report = version_report(store, args.ref)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(render_html(report))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, default=str, indent=1)
    print(f"wrote {args.out}")
    return 0


def add_parsers(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="every metric of a registered model on a labelled file")
    evaluate.add_argument("ref")
    evaluate.add_argument("data")
    evaluate.add_argument("--target", help="target column (default: the one the model was trained on)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object: metric name → value")
    evaluate.set_defaults(func=cmd_evaluate)

    explain = sub.add_parser("explain", help="why the model predicts what it does, row by row (SHAP)")
    explain.add_argument("ref")
    explain.add_argument("data")
    explain.add_argument("--rows", default="0:5", help="rows to explain: START:STOP or a comma list (default 0:5)")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=cmd_explain)

    compare = sub.add_parser("compare", help="compare versions; with --data, an offline A/B test on a file")
    compare.add_argument("refs", nargs="+")
    compare.add_argument("--data")
    compare.add_argument("--target")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(func=cmd_compare)

    report = sub.add_parser("report", help="write the validation report as one self-contained HTML file")
    report.add_argument("ref")
    report.add_argument("--out", required=True)
    report.add_argument("--json-out", help="also write the report's data as JSON")
    report.set_defaults(func=cmd_report)

