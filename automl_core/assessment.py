"""Assessing a trained model: every metric, the data behind each chart, intervals and caveats.

`assess(automl)` scores the chosen model on its out-of-fold predictions (honest: no row is
scored by a model that saw it); `assess_on_data(pipeline, meta, frame)` does the same on a
labelled file. Results are plain JSON-able dicts, stored with the version and drawn by the
dashboard and the HTML report. `find_caveats` lists what a careful analyst would want to know
before trusting the model: imbalance, a feature that nearly equals the target, a large gap
between training and validation scores, too little data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from . import evaluation as ev

CLASSIFICATION = ("binary", "multiclass")
INTERVAL_ALPHA = 0.1


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return str(value)
    return value


def _records(frame: pd.DataFrame | None) -> list[dict]:
    if frame is None:
        return []
    return _plain(frame.reset_index(drop=True).to_dict(orient="records"))


def evaluate_predictions(
    task: str,
    y_true,
    output,
    *,
    classes=None,
    positive_class=None,
    n_features: int | None = None,
    y_train=None,
    intervals: ev.ConformalIntervals | None = None,
) -> dict:
    """All metrics and chart data for one set of predictions (probabilities for classification)."""
    y_true = np.asarray(y_true)
    if task in CLASSIFICATION:
        proba = np.asarray(output, dtype=float)
        labels = np.asarray(classes, dtype=object)
        y_pred = labels[np.argmax(proba, axis=1)]
        y_obj = y_true.astype(object)
        metrics = ev.classification_metrics(y_obj, y_pred, proba, list(classes), positive_class)
        details = ev.classification_details(y_obj, y_pred, proba, list(classes), positive_class)
        cm = details.confusion_matrix
        out = {
            "task": task,
            "n_rows": int(len(y_true)),
            "metrics": _plain(metrics),
            "per_class": _records(details.per_class),
            "confusion_matrix": {"labels": _plain(list(cm.index)), "values": _plain(cm.to_numpy())},
            "class_balance": _records(details.class_balance),
            "roc_curve": _records(details.roc_curve),
            "pr_curve": _records(details.pr_curve),
            "calibration": _records(details.calibration),
        }
        if details.thresholds is not None:
            out["thresholds"] = {
                "table": _records(details.thresholds.table),
                "best": {m: _plain(details.thresholds.best_threshold(m)) for m in ("f1", "balanced_accuracy", "youden_j")},
                "positive_class": _plain(positive_class),
            }
        return out
    y_pred = np.asarray(output, dtype=float)
    y_float = y_true.astype(float)
    metrics = ev.regression_metrics(y_float, y_pred, n_features=n_features)
    if task == "timeseries":
        forecast = ev.forecast_metrics(y_float, y_pred, y_train=y_train)
        metrics.update({f"{k}" if k not in metrics else f"forecast_{k}": v for k, v in forecast.items()})
    residuals = ev.residual_analysis(y_float, y_pred)
    out = {
        "task": task,
        "n_rows": int(len(y_true)),
        "metrics": _plain(metrics),
        "residuals": _records(residuals.points),
        "residual_histogram": _records(residuals.histogram),
    }
    out["intervals"] = _interval_summary(y_float, y_pred, intervals)
    return out


def _interval_summary(y: np.ndarray, pred: np.ndarray, intervals: ev.ConformalIntervals | None) -> dict | None:
    """Conformal intervals: fitted on out-of-fold residuals; coverage measured on rows not used to fit them."""
    if intervals is not None:
        return {
            "alpha": intervals.alpha,
            "half_width": _plain(intervals.quantile_),
            "coverage": _plain(intervals.coverage(y, pred)),
            "measured_on": "this data",
        }
    if len(y) < 40:
        return None
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    halves = (order[: len(y) // 2], order[len(y) // 2 :])
    coverages = []
    for fit_rows, check_rows in (halves, halves[::-1]):
        fitted = ev.ConformalIntervals(alpha=INTERVAL_ALPHA).fit(y[fit_rows], pred[fit_rows])
        coverages.append(fitted.coverage(y[check_rows], pred[check_rows]))
    full = ev.ConformalIntervals(alpha=INTERVAL_ALPHA).fit(y, pred)
    return {
        "alpha": INTERVAL_ALPHA,
        "half_width": _plain(full.quantile_),
        "coverage": _plain(float(np.mean(coverages))),
        "measured_on": "out-of-fold rows, cross-fitted in two halves",
    }


def conformal_from(automl) -> ev.ConformalIntervals | None:
    """Intervals learned from a regression model's out-of-fold residuals (None for other tasks)."""
    if automl.task_ not in ("regression", "timeseries") or automl.oof_ is None:
        return None
    y, oof = _covered(automl)
    if len(y) < 10:
        return None
    return ev.ConformalIntervals(alpha=INTERVAL_ALPHA).fit(y, oof)


def _covered(automl) -> tuple[np.ndarray, np.ndarray]:
    oof = np.asarray(automl.oof_, dtype=float)
    y = np.asarray(automl.oof_y_)
    mask = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
    return y[mask], oof[mask]


def assess(automl) -> dict:
    """Out-of-fold assessment of the chosen model (for clustering: quality of the clusters)."""
    task = automl.task_
    if task == "clustering":
        return {"task": task, "clusters": _records(ev.cluster_sizes(automl.labels_)), "metrics": {}}
    y, output = _covered(automl)
    n_features = len(automl.input_schema_)
    result = evaluate_predictions(
        task,
        y,
        output,
        classes=None if automl.classes_ is None else list(automl.classes_),
        positive_class=automl.problem_.positive_class,
        n_features=n_features,
        y_train=np.asarray(automl.oof_y_, dtype=float) if task == "timeseries" else None,
    )
    result["scored_on"] = f"out-of-fold predictions ({automl.cv_plan_.reason})"
    return result


def assess_clustering(automl, frame: pd.DataFrame) -> dict:
    """Silhouette, Calinski–Harabasz, Davies–Bouldin and sizes, on the prepared training rows."""
    pipeline = automl.best_estimator_
    Xt = pipeline.named_steps["prep"].transform(pipeline.named_steps["clean"].transform(frame))
    labels = pipeline.named_steps["model"].labels_
    return {
        "task": "clustering",
        "metrics": _plain(ev.clustering_metrics(np.asarray(Xt, dtype=float), labels)),
        "clusters": _records(ev.cluster_sizes(labels)),
        "scored_on": "the training rows",
    }


def assess_on_data(pipeline, meta: dict, frame: pd.DataFrame, target: str, intervals=None) -> dict:
    """All metrics of a registered model on a labelled file (the target column must be present)."""
    from .errors import TargetError
    from .intake import check_target_name, profile_table
    from .problem import target_values

    task = meta["task"]
    check_target_name(frame, target, source=frame.attrs.get("source", "the data"))
    profile = profile_table(frame[[target]], target)
    y = target_values(frame, target, profile, task)
    keep = y.notna().to_numpy()
    if keep.sum() == 0:
        raise TargetError(f"the target '{target}' has no values in the data to evaluate")
    rows = frame.loc[keep].reset_index(drop=True)
    y = y[keep].reset_index(drop=True)
    if task in CLASSIFICATION:
        classes = list(meta["classes"])
        y = y.map(lambda v: _match_label(v, classes))
        output = pipeline.predict_proba(rows)
        return evaluate_predictions(
            task, y.to_numpy(), output, classes=classes, positive_class=meta.get("positive_class"),
            n_features=len(meta.get("input_columns", [])) or None,
        )
    output = pipeline.predict(rows)
    return evaluate_predictions(
        task, y.to_numpy(dtype=float), output, n_features=len(meta.get("input_columns", [])) or None,
        intervals=intervals,
    )


def _match_label(value, classes: list):
    """A label read from a new file, matched to the model's class (1 vs '1', 'yes' vs 'Yes')."""
    if value in classes:
        return value
    text = str(value).strip()
    for cls in classes:
        if str(cls) == text or str(cls).lower() == text.lower():
            return cls
    return value


# --------------------------------------------------------------------------- caveats
def find_caveats(automl, X: pd.DataFrame, y) -> list[dict]:
    """What could make the scores misleading: each caveat has a kind, a severity and a sentence."""
    caveats: list[dict] = []
    task = automl.task_
    if task == "clustering":
        return caveats
    y = pd.Series(np.asarray(y))
    n = len(y)
    n_features = len(automl.input_schema_)
    if n < 100 or n < 5 * n_features:
        caveats.append(
            {"kind": "little_data", "severity": "warning",
             "message": f"only {n} labelled rows for {n_features} features: scores vary a lot between samples"}
        )
    if task in CLASSIFICATION:
        shares = y.astype(str).value_counts(normalize=True)
        if shares.min() < 0.1:
            caveats.append(
                {"kind": "class_imbalance", "severity": "warning",
                 "message": f"class '{shares.idxmin()}' is only {shares.min():.1%} of the rows: accuracy is "
                 "misleading, read ROC AUC, PR AUC and balanced accuracy"}
            )
    caveats += _leak_caveats(automl, X, y)
    gap = _train_validation_gap(automl, X, y)
    if gap is not None:
        caveats.append(gap)
    return caveats


def _leak_caveats(automl, X: pd.DataFrame, y: pd.Series, max_rows: int = 5000) -> list[dict]:
    """Features that predict the target almost perfectly on their own are suspicious (leakage)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cleaner = automl.best_estimator_.named_steps["clean"]
    rows = np.random.default_rng(0).permutation(len(X))[:max_rows]
    typed = cleaner.transform(X.iloc[rows])
    target = y.iloc[rows].to_numpy()
    task = automl.task_
    out = []
    for column, kind in cleaner.kinds_.items():
        values = typed[column]
        if kind in ("numeric", "boolean"):
            feature = values.to_numpy(dtype=float)
        elif kind == "datetime":
            feature = (pd.to_datetime(values) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
            feature = np.asarray(feature, dtype=float)
        else:
            codes, _ = pd.factorize(values.astype(str))
            feature = codes.astype(float)
        feature = np.where(np.isnan(feature), -1e12, feature).reshape(-1, 1)
        if task in CLASSIFICATION:
            model = DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=0)
            scoring = "balanced_accuracy"
            score = cross_val_score(model, feature, target.astype(str), cv=3, scoring=scoring).mean()
            near_perfect = score >= 0.98
        else:
            model = DecisionTreeRegressor(max_depth=8, min_samples_leaf=5, random_state=0)
            score = cross_val_score(model, feature, target.astype(float), cv=3, scoring="r2").mean()
            near_perfect = score >= 0.98
        if near_perfect:
            measure = "balanced accuracy" if task in CLASSIFICATION else "R²"
            out.append(
                {"kind": "possible_leak", "severity": "danger", "column": column,
                 "message": f"'{column}' alone predicts the target with {measure} {score:.3f}: check that it is "
                 "known before the outcome, or it leaks the answer"}
            )
    return out


def _train_validation_gap(automl, X: pd.DataFrame, y: pd.Series, max_rows: int = 5000) -> dict | None:
    """A model much better on its training rows than out of fold is memorising."""
    from .scoring import get_metric

    metric = get_metric(automl.task_, automl.metric_)
    rows = np.random.default_rng(1).permutation(len(X))[:max_rows]
    sample, truth = X.iloc[rows], y.iloc[rows].to_numpy()
    try:
        if automl.classes_ is not None:
            train = metric(truth, automl.best_estimator_.predict_proba(sample), tuple(automl.classes_))
        else:
            train = metric(truth.astype(float), automl.best_estimator_.predict(sample))
    except Exception:  # noqa: BLE001 - the caveat is optional; a failing metric must not stop registration
        return None
    cv = automl.best_score_
    gap = (train - cv) if metric.greater_is_better else (cv - train)
    scale = max(abs(cv), 1e-12)
    if gap / scale > 0.25:
        return {
            "kind": "overfitting", "severity": "warning",
            "message": f"{automl.metric_} is {train:.4g} on the training rows but {cv:.4g} out of fold: "
            "the model memorises part of the training data; trust the out-of-fold score",
            "train_score": _plain(train), "cv_score": _plain(cv),
        }
    return None
