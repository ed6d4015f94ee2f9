"""Comparing models and versions, and saying whether a difference is real.

Two models scored on the same folds are compared with the corrected resampled t-test (Nadeau &
Bengio 2003), which accounts for the overlap between training sets. Two versions trained on
different data cannot share folds: they are compared on one labelled file (an offline A/B test)
with a paired bootstrap of the metric.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from . import evaluation as ev
from .assessment import _plain, assess_on_data
from .errors import AutoMLError
from .scoring import get_metric


def _fold_sizes(cv_plan: dict | None, n_rows: int) -> tuple[int, int]:
    k = int((cv_plan or {}).get("n_splits") or 5)
    if (cv_plan or {}).get("kind") == "holdout" or k <= 1:
        test = int(round(n_rows * float((cv_plan or {}).get("test_size") or 0.2)))
        return n_rows - test, test
    return int(round(n_rows * (k - 1) / k)), int(round(n_rows / k))


def different_folds(a: str, b: str) -> str:
    """Why two models cannot be tested fold by fold."""
    return (f"{a} and {b} were scored on different folds: the finalists re-validated on fresh folds can only be "
            "compared fold by fold with each other, the other models with each other")


def compare_fold_scores(
    scores_a: list[float], scores_b: list[float], *, n_rows: int, cv_plan: dict | None,
    greater_is_better: bool, labels=("A", "B"),
) -> dict:
    """Corrected resampled t-test of two models' per-fold scores (same folds)."""
    if len(scores_a) < 2 or len(scores_b) < 2:
        raise AutoMLError("a fold-by-fold comparison needs at least 2 fold scores for both models")
    if len(scores_a) != len(scores_b):
        raise AutoMLError(different_folds(*labels))
    n_train, n_test = _fold_sizes(cv_plan, n_rows)
    a, b = np.asarray(scores_a, float), np.asarray(scores_b, float)
    if not greater_is_better:  # the test reports "A better than B" in the metric's own direction
        a, b = -a, -b
    result = ev.corrected_resampled_ttest(a, b, n_train, n_test, labels=labels)
    out = _plain(asdict(result))
    out["mean_difference"] = _plain(float(np.mean(scores_a) - np.mean(scores_b)))
    return out


def compare_versions(store, refs: list[str], data=None, target: str | None = None) -> dict:
    """Metric table, per-fold scores and significance for two or more registered versions.

    Without data, versions trained on the same data with the same folds are tested fold by fold;
    with a labelled file (path, bytes or DataFrame), every version is scored on it and each
    other version is compared with the first by a paired bootstrap.
    """
    if len(refs) < 2:
        raise AutoMLError("compare needs at least two model references")
    registry = store.registry
    versions = [registry.get(r) for r in refs]
    tasks = {v.task for v in versions}
    if len(tasks) > 1:
        raise AutoMLError(f"cannot compare models of different tasks: {', '.join(sorted(map(str, tasks)))}")
    metric_name = versions[0].metric_name
    metric = get_metric(versions[0].task, metric_name)
    rows, folds = [], {}
    for v in versions:
        board = registry.get_document(v.ref, "leaderboard") or []
        chosen = next((r for r in board if r.get("chosen")), board[0] if board else {})
        fold_scores = (registry.get_document(v.ref, "fold_scores") or {}).get(chosen.get("model"), []) or []
        folds[v.ref] = fold_scores
        rows.append({
            "model": v.ref,
            "cv_score": v.cv_score,
            "std": chosen.get("std"),
            "chosen": chosen.get("model"),
            "predict_ms_per_row": chosen.get("predict_ms_per_row"),
            "size_kb": round(v.artifact.size / 1024, 1),
            **{f"cv_{k}": val for k, val in (v.metrics.get("cv") or {}).items()
               if k in ("accuracy", "roc_auc", "log_loss", "f1", "rmse", "mae", "r2", "balanced_accuracy")},
        })
    result: dict = {"metric": metric_name, "greater_is_better": metric.greater_is_better, "table": rows,
                    "fold_scores": folds, "tests": []}
    base = versions[0]
    if data is None:
        for other in versions[1:]:
            result["tests"].append(_fold_test(base, other, folds, metric))
    else:
        result.update(_offline_ab(store, versions, data, target, metric))
    return _plain(result)


def _fold_test(a, b, folds: dict, metric) -> dict:
    same_data = (a.lineage.get("data") or {}).get("fingerprint_sha256") == (b.lineage.get("data") or {}).get(
        "fingerprint_sha256"
    )
    plan_a, plan_b = a.lineage.get("cv_plan"), b.lineage.get("cv_plan")
    # A re-validated winner was scored on the fresh shuffles, the others on the search's folds.
    shuffles_a, shuffles_b = ((v.lineage.get("revalidation") or {}).get("seeds") for v in (a, b))
    same_folds = (same_data and plan_a == plan_b and shuffles_a == shuffles_b
                  and len(folds[a.ref]) == len(folds[b.ref]) >= 2)
    if not same_folds:
        return {
            "a": a.ref, "b": b.ref, "method": None, "significant": None,
            "summary": "not comparable fold by fold (different data or folds): compare them on a labelled file",
        }
    rows = (a.lineage.get("data") or {}).get("rows_used") or (a.lineage.get("data") or {}).get("rows") or 100
    test = compare_fold_scores(
        folds[a.ref], folds[b.ref], n_rows=int(rows), cv_plan=plan_a,
        greater_is_better=metric.greater_is_better, labels=(a.ref, b.ref),
    )
    return {"a": a.ref, "b": b.ref, **test}


def _offline_ab(store, versions, data, target, metric) -> dict:
    """Every version scored on one labelled file; each compared with the first by a paired bootstrap."""
    from .assessment import _match_label
    from .intake import check_target_name, profile_table, read_table
    from .problem import target_values

    frame = data if isinstance(data, pd.DataFrame) else read_table(data)
    meta = store.registry.get_document(versions[0].ref, "meta") or {}
    target = target or meta.get("target")
    if not target:
        raise AutoMLError("give the target column of the comparison data")
    check_target_name(frame, target, source=frame.attrs.get("source", "the comparison data"))
    classes = tuple(meta.get("classes") or ())
    task = meta.get("task") or versions[0].task
    parsed = target_values(frame, target, profile_table(frame[[target]], target), task)
    keep = parsed.notna().to_numpy()
    if not keep.any():
        raise AutoMLError(f"the target '{target}' has no values in the comparison data")
    rows = frame.loc[keep].reset_index(drop=True)
    truth = parsed[keep].reset_index(drop=True)
    y = (truth.map(lambda v: _match_label(v, list(classes))) if classes else truth.astype(float)).to_numpy()
    evaluations, outputs = {}, {}
    for v in versions:
        pipeline = store.registry.load(v.ref)
        version_meta = store.registry.get_document(v.ref, "meta") or {"task": v.task}
        evaluations[v.ref] = assess_on_data(pipeline, version_meta, frame, target)
        outputs[v.ref] = pipeline.predict_proba(rows) if v.task in ("binary", "multiclass") else pipeline.predict(rows)
    sign = 1.0 if metric.greater_is_better else -1.0

    def signed(y_true, output) -> float:
        value = metric(y_true, output, classes) if classes else metric(y_true.astype(float), output)
        return sign * value

    tests = []
    base = versions[0].ref
    for other in versions[1:]:
        test = ev.paired_bootstrap_test(y, outputs[base], outputs[other.ref], signed, n_boot=500,
                                        labels=(base, other.ref))
        entry = {"a": base, "b": other.ref, **_plain(asdict(test))}
        entry["mean_difference"] = _plain(sign * entry["mean_difference"])
        tests.append(entry)
    table = [{"model": ref, **e["metrics"]} for ref, e in evaluations.items()]
    return {"data_rows": int(keep.sum()), "data_table": table, "tests": tests}
