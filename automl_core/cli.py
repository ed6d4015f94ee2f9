"""The `automl` command: train, predict, and (in other modules) manage, explain and serve models.

The train/predict contract is used to measure the product, so keep it stable:

    automl train DATA --target COL [--task auto|...] [--time-budget S] [--metric M] [--time-column C] [--out DIR] [--json]
    automl predict MODEL_DIR|REF DATA --out PRED.csv

`--time-budget` covers the whole command, from process start to the saved model, plus a small
overhead for Python's own start (about a second).
"""

from __future__ import annotations

import time

_PROCESS_START = time.monotonic()

import argparse  # noqa: E402 - the clock above must start before the heavy imports below
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70  # 70: EX_SOFTWARE


class ProgressBar:
    """A one-line progress bar on stderr, fed by search events."""

    def __init__(self, stream=None, width: int = 24):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __call__(self, event) -> None:
        now = time.monotonic()
        if event.type == "trial_finished" and now - self._last < 0.2 and self.tty:
            return
        self._last = now
        filled = int(self.width * event.percent / 100)
        bar = "#" * filled + "." * (self.width - filled)
        best = f" best {event.best_score:.4f} ({event.best_model})" if event.best_score is not None else ""
        line = f"[{bar}] {event.percent:5.1f}% {event.stage:<8} {event.time_left:5.1f}s left{best}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            if event.type == "done":
                self.stream.write("\n")
        elif event.type in ("stage", "done"):
            self.stream.write(line + f"  {event.message}\n")
        self.stream.flush()


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


_clock = {"start": _PROCESS_START}


def _start_clock(from_process_start: bool) -> None:
    """The budget counts from process start for the console script, from the call when called from Python."""
    _clock["start"] = _PROCESS_START if from_process_start else time.monotonic()


def _budget_left(total: float) -> float:
    """Seconds the fit may use: the budget minus what has passed and a margin for saving."""
    margin = min(3.0, 0.5 + 0.04 * total)
    return total - (time.monotonic() - _clock["start"]) - margin


def cmd_train(args) -> int:
    from .errors import AutoMLError
    from .modelfile import save_model_dir, train_summary

    try:
        from .automl import AutoML
        from .intake import read_table

        frame = read_table(args.data)
        target = args.target
        if target is None and args.task not in ("clustering", "auto"):
            return _fail(f"--target is needed for task {args.task}", EXIT_USAGE)
        if target is not None:
            from .intake import check_target_name

            check_target_name(frame, target, source=os.path.basename(args.data))
        left = _budget_left(args.time_budget)
        if left <= 0.5:
            return _fail(f"--time-budget {args.time_budget:g} s is too small: reading the data already took it")
        automl = AutoML(
            task="clustering" if target is None else args.task,
            time_budget=left,
            metric=args.metric,
            cv=args.cv,
            include=args.include.split(",") if args.include else None,
            exclude=args.exclude.split(",") if args.exclude else None,
            random_state=args.seed,
            time_column=args.time_column,
        )
        automl.fit(frame, target, on_event=None if args.quiet else ProgressBar())
    except AutoMLError as exc:
        return _fail(str(exc))
    summary = train_summary(automl, source=os.path.basename(args.data))
    if args.out:
        summary["out"] = save_model_dir(automl, args.out, summary)
    if not args.no_register:
        summary["reference"], summary["caveats"] = _register(automl, frame, args)
    summary["seconds"] = round(time.monotonic() - _clock["start"], 2)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        _print_summary(summary)
        print(json.dumps({k: summary[k] for k in ("task", "metric", "cv_score", "best") if k in summary}))
    return EXIT_OK


def _register(automl, frame, args) -> tuple[str | None, list[dict]]:
    """Add the trained model to the registry of AUTOML_HOME; a failure here does not lose the model.
    Returns its reference and the caveats found while registering (a leaking column, little data)."""
    from .registration import default_model_name, labelled_rows, register_automl

    try:
        from store import Store

        features, labels = labelled_rows(automl, frame)
        with open(args.data, "rb") as handle:
            raw = handle.read()
        store = Store()
        version = register_automl(
            store, automl, args.name or default_model_name(args.data), frame=features, target_values=labels,
            data_bytes=raw, source=os.path.basename(args.data), time_budget=args.time_budget,
        )
    except Exception as exc:  # noqa: BLE001 - the model folder (if any) is already written
        sys.stderr.write(f"warning: the model was not registered: {exc}\n")
        return None, []
    return version.ref, list(store.registry.get_document(version.ref, "caveats") or [])


def _print_summary(summary: dict) -> None:
    print(f"task: {summary['task']} ({summary['problem']['reason']})")
    if summary.get("unlabeled_rows_dropped"):
        print(f"{summary['unlabeled_rows_dropped']:,} rows without a target value were left out of training")
    print(f"metric: {summary['metric']}  cv score: {summary['cv_score']:.5g}  chosen: {summary['best']}")
    revalidation = summary.get("revalidation")
    if revalidation:
        print(f"the {len(revalidation['models'])} finalists were re-validated on {revalidation['repeats']} fresh "
              "shuffles of the folds; the search's own score is in brackets")
    print("leaderboard:")
    for row in summary["leaderboard"][:10]:
        score = row.get("score")
        shown = f"{score:.5g}" if isinstance(score, (int, float)) else "-"
        search = row.get("search_score")
        searched = f" ({search:.5g})" if isinstance(search, (int, float)) else ""
        print(f"  {row['model']:<28} {shown:>10}{searched}  fit {row.get('fit_time', 0):.3f}s")
    if summary.get("out"):
        print(f"saved to {summary['out']}")
    if summary.get("reference"):
        print(f"registered as {summary['reference']}")
    for caveat in summary.get("caveats") or []:
        print(f"caveat ({caveat.get('severity', 'warning')}): {caveat.get('message')}")


def cmd_predict(args) -> int:
    from .errors import AutoMLError
    from .modelfile import input_warnings, predictions_frame

    try:
        from .intake import read_table

        model, meta = _load_for_prediction(args.model)
        frame = read_table(args.data, drop_empty_rows=False)
        for warning in input_warnings(model, frame):
            sys.stderr.write(f"warning: {warning}\n")
        result = predictions_frame(model, meta, frame)
    except AutoMLError as exc:
        return _fail(str(exc))
    if args.out:
        result.to_csv(args.out, index=False)
        sys.stderr.write(f"wrote {len(result)} predictions to {args.out}\n")
    else:
        result.to_csv(sys.stdout, index=False)
    return EXIT_OK


def _load_for_prediction(model: str):
    """A model folder, or a registry reference (NAME, NAME@1.2.0, NAME@alias)."""
    from .modelfile import load_model_dir

    if os.path.isdir(model):
        return load_model_dir(model)
    from store import Store

    store = Store()
    version = store.registry.get(model)
    meta = store.registry.get_document(version.ref, "meta") or {"task": version.task}
    return store.registry.load(version.ref), meta


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="automl", description="AutoML analyst workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train models on a CSV/Parquet file within a time budget")
    train.add_argument("data", help="CSV or Parquet file")
    train.add_argument("--target", help="column to predict (omit for clustering)")
    train.add_argument(
        "--task", default="auto", choices=["auto", "binary", "multiclass", "regression", "timeseries", "clustering"]
    )
    train.add_argument("--time-budget", type=float, default=60.0, help="seconds for the whole command (default 60)")
    train.add_argument("--metric", default="auto", help="metric to optimise (default: the task's usual one)")
    train.add_argument("--cv", default="auto", help="'auto', 'holdout' or a number of folds")
    train.add_argument("--time-column", help="the date column of a forecast (default: detected)")
    train.add_argument("--include", help="comma-separated model families to allow")
    train.add_argument("--exclude", help="comma-separated model families to skip")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="folder to write the model to (model.joblib + model.json)")
    train.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--name", help="registry name (default: the file's stem)")
    train.add_argument("--no-register", action="store_true", help="do not add the model to the registry")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="predict with a saved model folder or a registered model")
    predict.add_argument("model", help="model folder written by `automl train --out`, or NAME[@version|@alias]")
    predict.add_argument("data", help="CSV or Parquet file with the input columns")
    predict.add_argument("--out", help="CSV file to write (default: standard output)")
    predict.set_defaults(func=cmd_predict)

    from .cli_eval import add_parsers as add_eval_parsers
    from .cli_registry import add_parsers

    add_parsers(sub)
    add_eval_parsers(sub)
    try:
        from .serving.cli import add_parser as add_serve_parser
    except ImportError:  # the server package is optional for the training CLI
        add_serve_parser = None
    if add_serve_parser is not None:
        add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _start_clock(from_process_start=argv is None)
    parser = build_parser()
    args = parser.parse_args(argv)
    from store import StoreError

    from .errors import AutoMLError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader went away (for example `| head`); not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (AutoMLError, StoreError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug of ours: say so in one line, full trace on request
        if os.environ.get("AUTOML_DEBUG"):
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug in automl; run again with "
            "AUTOML_DEBUG=1 for the traceback and include it in a report)",
            EXIT_INTERNAL,
        )


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
