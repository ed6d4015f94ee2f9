"""A validation report per version: one JSON document and one self-contained HTML file.

The HTML embeds its charts as inline SVG and its styles inline, with no script and no external
resource, so it opens offline and can be mailed as one file. Computing (`version_report`) and
rendering (`render_html`) are separate, so the dashboard and the server can reuse the data.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

from .assessment import _plain

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


# --------------------------------------------------------------------------- data
def ensure_importance(store, ref: str, *, max_rows: int = 2000) -> list[dict] | None:
    """Feature importance of a version, computed once on its stored training data and cached."""
    registry = store.registry
    cached = registry.get_document(ref, "importance")
    if cached is not None:
        return cached
    version = registry.get(ref)
    sha = version.data_sha256
    if not sha or version.task == "clustering":
        return None
    from .explain import feature_importance
    from .training import training_data

    X, y = training_data(store, version.ref)
    table = feature_importance(registry.load(ref), X, y, task=version.task, max_rows=max_rows)
    records = _plain(table.to_dict(orient="records"))
    registry.put_document(ref, "importance", records)
    return records


def ensure_shap_summary(store, ref: str, *, max_rows: int = 500):
    """SHAP summary of a version on a sample of its training rows, computed once and cached.

    The model-agnostic path takes seconds (an ensemble: about 12 s for 100 rows), so every process
    after the first reads the stored document instead.
    """
    from .explain import ShapSummary, shap_summary

    registry = store.registry
    cached = registry.get_document(ref, "shap_summary")
    if cached is not None and cached.get("max_rows") == max_rows:
        return ShapSummary.from_dict(cached)
    version = registry.get(ref)
    if not version.data_sha256 or version.task == "clustering":
        return None
    from .training import training_data

    X, _ = training_data(store, version.ref)
    summary = shap_summary(registry.load(ref), X, version.task, max_rows=max_rows)
    registry.put_document(ref, "shap_summary", {**summary.to_dict(), "max_rows": max_rows})
    return summary


def version_report(store, ref: str, *, with_importance: bool = True) -> dict:
    """Everything the report shows, as JSON-able data."""
    registry = store.registry
    version = registry.get(ref)
    docs = registry.documents(version.ref)
    importance = docs.get("importance")
    if importance is None and with_importance:
        try:
            importance = ensure_importance(store, version.ref)
        except Exception as exc:  # noqa: BLE001 - the report is still useful without importance
            importance = None
            docs.setdefault("caveats", []).append(
                {"kind": "report", "severity": "info", "message": f"importance could not be computed: {exc}"}
            )
    lineage = version.lineage or {}
    profile = docs.get("profile") or {}
    return _plain({
        "title": f"Validation report: {version.ref}",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "ref": version.ref,
            "task": version.task,
            "metric": version.metric_name,
            "cv_score": version.cv_score,
            "created_at": str(version.created_at),
            "aliases": list(version.aliases),
            "chosen": lineage.get("chosen_model"),
            "description": version.description,
        },
        "data": {
            "file": (lineage.get("data") or {}).get("file"),
            "rows": (lineage.get("data") or {}).get("rows"),
            "fingerprint": (lineage.get("data") or {}).get("fingerprint_sha256"),
            "target": lineage.get("target"),
            "task_reason": lineage.get("task_reason"),
            "columns": profile.get("columns", []),
            "warnings": profile.get("warnings", []),
        },
        "assessment": docs.get("assessment") or {},
        "caveats": docs.get("caveats") or [],
        "importance": importance,
        "leaderboard": (docs.get("leaderboard") or [])[:20],
        "lineage": {k: lineage.get(k) for k in ("cv_plan", "seed", "time_budget", "libraries", "git_commit",
                                                 "job_id", "parent", "chosen_params", "ensemble")},
    })


# --------------------------------------------------------------------------- SVG charts
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return html.escape(str(value))


def _scale(values, lo_px, hi_px):
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi == lo:
        hi = lo + 1.0
    return lambda v: lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px), lo, hi


def svg_lines(series: dict[str, list[tuple[float, float]]], *, x_label: str, y_label: str,
              width: int = 420, height: int = 300, diagonal: bool = False) -> str:
    """Line chart of several named series of (x, y) points."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return ""
    sx, x0, x1 = _scale([p[0] for p in points], 50, width - 10)
    sy, y0, y1 = _scale([p[1] for p in points], height - 40, 10)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<rect x="50" y="10" width="{width - 60}" height="{height - 50}" fill="#fafafa" stroke="#ccc"/>']
    if diagonal:
        parts.append(f'<line x1="{sx(x0):.1f}" y1="{sy(y0):.1f}" x2="{sx(x1):.1f}" y2="{sy(y1):.1f}" '
                     'stroke="#999" stroke-dasharray="4"/>')
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts if math.isfinite(x) and math.isfinite(y))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        parts.append(f'<text x="{width - 15}" y="{25 + 14 * i}" text-anchor="end" font-size="11" fill="{color}">'
                     f"{html.escape(str(name))}</text>")
    parts += _axes(width, height, x_label, y_label, (x0, x1), (y0, y1))
    parts.append("</svg>")
    return "".join(parts)


def _axes(width, height, x_label, y_label, xr, yr) -> list[str]:
    return [
        f'<text x="{width / 2:.0f}" y="{height - 5}" text-anchor="middle" font-size="12">{html.escape(x_label)}</text>',
        f'<text x="12" y="{height / 2:.0f}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 12 {height / 2:.0f})">{html.escape(y_label)}</text>',
        f'<text x="50" y="{height - 25}" font-size="10">{_fmt(xr[0])}</text>',
        f'<text x="{width - 10}" y="{height - 25}" font-size="10" text-anchor="end">{_fmt(xr[1])}</text>',
        f'<text x="46" y="{height - 40}" font-size="10" text-anchor="end">{_fmt(yr[0])}</text>',
        f'<text x="46" y="18" font-size="10" text-anchor="end">{_fmt(yr[1])}</text>',
    ]


def svg_scatter(points: list[tuple[float, float]], *, x_label: str, y_label: str, width: int = 420,
                height: int = 300, zero_line: bool = True) -> str:
    if not points:
        return ""
    sx, x0, x1 = _scale([p[0] for p in points], 50, width - 10)
    sy, y0, y1 = _scale([p[1] for p in points], height - 40, 10)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<rect x="50" y="10" width="{width - 60}" height="{height - 50}" fill="#fafafa" stroke="#ccc"/>']
    if zero_line and y0 < 0 < y1:
        parts.append(f'<line x1="50" x2="{width - 10}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#999"/>')
    for x, y in points[:2000]:
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" fill="{PALETTE[0]}" fill-opacity="0.5"/>')
    parts += _axes(width, height, x_label, y_label, (x0, x1), (y0, y1))
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(labels: list[str], values: list[float], *, width: int = 520, value_label: str = "") -> str:
    """Horizontal bars, largest first as given."""
    if not labels:
        return ""
    row = 20
    height = row * len(labels) + 30
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    top = max(finite + [1e-12])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(zip(labels, values)):
        v = value if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
        w = max(0.0, v) / top * (width - 230)
        y = 10 + i * row
        parts.append(f'<text x="150" y="{y + 14}" text-anchor="end" font-size="12">{html.escape(str(label)[:24])}</text>')
        parts.append(f'<rect x="155" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}"/>')
        parts.append(f'<text x="{160 + w:.1f}" y="{y + 14}" font-size="11">{_fmt(value)}</text>')
    if value_label:
        parts.append(f'<text x="155" y="{height - 4}" font-size="11" fill="#555">{html.escape(value_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_heatmap(labels: list, values: list[list[float]], *, cell: int = 48) -> str:
    """Confusion matrix: rows are actual classes, columns predicted."""
    n = len(labels)
    if n == 0:
        return ""
    size = 120 + cell * n
    top = max(max(r) for r in values) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 20}" height="{size + 20}" role="img">']
    for i, row in enumerate(values):
        parts.append(f'<text x="115" y="{130 + i * cell + cell / 2:.0f}" text-anchor="end" font-size="11">'
                     f"{html.escape(str(labels[i])[:14])}</text>")
        for j, v in enumerate(row):
            shade = int(245 - 180 * (v / top))
            parts.append(f'<rect x="{120 + j * cell}" y="{120 + i * cell}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="rgb({shade},{shade + 5 if shade < 250 else 250},255)"/>')
            parts.append(f'<text x="{120 + j * cell + cell / 2 - 1:.0f}" y="{125 + i * cell + cell / 2:.0f}" '
                         f'text-anchor="middle" font-size="11">{_fmt(v)}</text>')
    for j, label in enumerate(labels):
        x = 120 + j * cell + cell / 2
        parts.append(f'<text x="{x:.0f}" y="112" text-anchor="start" font-size="11" transform="rotate(-40 {x:.0f} 112)">'
                     f"{html.escape(str(label)[:14])}</text>")
    parts.append('<text x="10" y="20" font-size="11">rows: actual · columns: predicted</text></svg>')
    return "".join(parts)


# --------------------------------------------------------------------------- HTML
def _table(rows: list[dict], columns: list[str] | None = None, limit: int = 50) -> str:
    if not rows:
        return "<p class='muted'>none</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows[:limit]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _curve(records: list[dict], x: str, y: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.get(x) is None or r.get(y) is None:
            continue
        out.setdefault(str(r.get("class", "")), []).append((float(r[x]), float(r[y])))
    return out


def _charts(assessment: dict) -> str:
    task = assessment.get("task")
    blocks = []
    if task in ("binary", "multiclass"):
        cm = assessment.get("confusion_matrix") or {}
        blocks.append(("Confusion matrix", svg_heatmap(cm.get("labels", []), cm.get("values", []))))
        blocks.append(("ROC curve", svg_lines(_curve(assessment.get("roc_curve", []), "fpr", "tpr"),
                                              x_label="false positive rate", y_label="true positive rate",
                                              diagonal=True)))
        blocks.append(("Precision–recall", svg_lines(_curve(assessment.get("pr_curve", []), "recall", "precision"),
                                                     x_label="recall", y_label="precision")))
        blocks.append(("Calibration", svg_lines(_curve(assessment.get("calibration", []), "mean_predicted",
                                                       "fraction_positive"),
                                                x_label="predicted probability", y_label="observed share",
                                                diagonal=True)))
    elif task in ("regression", "timeseries"):
        points = [(r["prediction"], r["residual"]) for r in assessment.get("residuals", [])
                  if r.get("prediction") is not None and r.get("residual") is not None]
        blocks.append(("Residuals against predictions", svg_scatter(points, x_label="prediction",
                                                                    y_label="actual − prediction")))
        actual = [(r["prediction"], r["actual"]) for r in assessment.get("residuals", [])
                  if r.get("prediction") is not None and r.get("actual") is not None]
        blocks.append(("Actual against predicted", svg_scatter(actual, x_label="prediction", y_label="actual",
                                                               zero_line=False)))
        hist = assessment.get("residual_histogram", [])
        blocks.append(("Residual distribution", svg_bars([f"{_fmt(h['bin_left'])}…" for h in hist],
                                                         [h["count"] for h in hist], value_label="rows")))
    elif task == "clustering":
        sizes = assessment.get("clusters", [])
        blocks.append(("Cluster sizes", svg_bars([f"cluster {c['cluster']}" for c in sizes],
                                                 [c["size"] for c in sizes], value_label="rows")))
    return "".join(f"<figure><figcaption>{t}</figcaption>{svg}</figure>" for t, svg in blocks if svg)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f3f3f3}.muted{color:#777}.caveat{padding:.5em .8em;margin:.4em 0;border-left:4px solid #f58518;background:#fff7ee}
.caveat.danger{border-color:#e45756;background:#fdeeee}.caveat.info{border-color:#4c78a8;background:#eef4fb}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}figcaption{font-weight:600;margin-bottom:.3em}
.kpi{display:inline-block;margin-right:2em}.kpi b{font-size:1.4em;display:block}
"""


def render_html(report: dict) -> str:
    """One self-contained HTML page (inline CSS and SVG, no scripts, no external files)."""
    model, data, assessment = report["model"], report["data"], report.get("assessment") or {}
    metrics = assessment.get("metrics") or {}
    kpis = "".join(
        f"<div class='kpi'><span class='muted'>{html.escape(k)}</span><b>{_fmt(v)}</b></div>"
        for k, v in [("task", model["task"]), (model["metric"] or "score", model["cv_score"]),
                     ("rows", data.get("rows")), ("chosen", model.get("chosen"))]
    )
    caveats = "".join(
        f"<div class='caveat {html.escape(c.get('severity', 'warning'))}'>{html.escape(c['message'])}</div>"
        for c in report.get("caveats", [])
    ) or "<p class='muted'>no caveats found</p>"
    metric_rows = [{"metric": k, "value": v} for k, v in metrics.items()]
    importance = report.get("importance") or []
    importance_svg = ""
    if importance:
        key = "permutation_mean" if "permutation_mean" in importance[0] else list(importance[0])[1]
        top = sorted(importance, key=lambda r: -(r.get(key) or 0))[:20]
        importance_svg = svg_bars([r["column"] for r in top], [r.get(key) or 0.0 for r in top],
                                  value_label=f"{key.replace('_', ' ')} (drop in score when the column is shuffled)")
    intervals = assessment.get("intervals")
    interval_text = ""
    if intervals:
        interval_text = (
            f"<p>Prediction intervals: ± {_fmt(intervals['half_width'])} for {100 * (1 - intervals['alpha']):.0f}% "
            f"target coverage; measured coverage {_fmt(intervals['coverage'])} ({html.escape(intervals['measured_on'])}).</p>"
        )
    columns = [{k: c.get(k) for k in ("name", "kind", "role", "missing_share", "n_unique", "reason")}
               for c in data.get("columns", [])]
    lineage = report.get("lineage") or {}
    libs = ", ".join(f"{k} {v}" for k, v in (lineage.get("libraries") or {}).items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report['title'])}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(report['title'])}</h1>
<p class="muted">generated {html.escape(report['generated_at'])} · {html.escape(str(data.get('task_reason') or ''))}</p>
{kpis}
<h2>Caveats</h2>{caveats}
<h2>Metrics</h2><p class="muted">{html.escape(str(assessment.get('scored_on', '')))}</p>
{_table(metric_rows, ["metric", "value"], limit=60)}{interval_text}
<h2>Charts</h2>{_charts(assessment)}
<h2>Feature importance</h2>{importance_svg or "<p class='muted'>not computed</p>"}
<h2>Leaderboard</h2>{_table(report.get('leaderboard', []), ['model', 'family', 'score', 'std', 'fit_time', 'predict_ms_per_row', 'size_kb'])}
<h2>Data</h2><p>File <b>{html.escape(str(data.get('file')))}</b>, {_fmt(data.get('rows'))} rows, target
<b>{html.escape(str(data.get('target')))}</b>, SHA-256 <code>{html.escape(str(data.get('fingerprint')))}</code></p>
{_table(columns)}
<ul>{''.join(f'<li>{html.escape(w)}</li>' for w in data.get('warnings', []))}</ul>
<h2>Lineage</h2><p>Validation: {html.escape(str((lineage.get('cv_plan') or {}).get('reason')))}; seed {_fmt(lineage.get('seed'))};
budget {_fmt(lineage.get('time_budget'))} s; parent {html.escape(str(lineage.get('parent')))};
git {html.escape(str(lineage.get('git_commit')))}</p><p class="muted">{html.escape(libs)}</p>
</body></html>"""
