"""Evaluation: metrics, curve points, prediction intervals and model comparison.

Every page that asks "how good is this model?" (leaderboard, model detail, comparison, monitoring) needs the
same numbers under the same names, so they are computed once, here, from predictions the caller already holds
(out-of-fold or test). Nothing here fits a model or draws a chart: results are dicts of floats, DataFrames of
curve points and small frozen dataclasses.

Conventions
- Metric names are snake_case. A metric dict holds only defined values: a metric that needs probabilities is
  left out when `proba` is None, and one that is undefined on the data (ROC AUC with one class present, R² of a
  constant target) is left out instead of raising or returning NaN.
- Precision, recall, F1 (and specificity) follow scikit-learn's `zero_division=0` convention.
- Percentage-style errors (mape, smape, within_10pct) are fractions, as in scikit-learn, not percents.
- residual = y_true - y_pred; mean_error and bias = mean(y_pred - y_true), so positive means over-prediction.
- Bad input (misaligned lengths, a `proba` of the wrong shape, missing targets) raises ValueError naming the
  argument and what was expected.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm
from sklearn.base import BaseEstimator
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "THRESHOLD_METRICS",
    "ClassificationDetails",
    "ConformalIntervals",
    "ResidualAnalysis",
    "TestResult",
    "ThresholdAnalysis",
    "classification_details",
    "classification_metrics",
    "cluster_sizes",
    "clustering_metrics",
    "corrected_resampled_ttest",
    "forecast_metrics",
    "paired_bootstrap_test",
    "regression_metrics",
    "residual_analysis",
    "threshold_analysis",
]

MAX_CURVE_POINTS = 200
MAX_RESIDUAL_POINTS = 2000
CALIBRATION_BINS = 10
# Probabilities from float32 models do not sum to exactly 1; anything further off is not a probability.
PROBA_SUM_TOLERANCE = 1e-3
THRESHOLD_METRICS = ("f1", "precision", "recall", "specificity", "accuracy", "balanced_accuracy", "youden_j")


# --------------------------------------------------------------------------------------------------- input


def _as_1d(name: str, values: Any) -> np.ndarray:
    if values is None:
        raise ValueError(f"{name} is required, got None")
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per sample), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; need at least one sample")
    return arr


def _as_float_1d(name: str, values: Any) -> np.ndarray:
    arr = _as_1d(name, values)
    try:
        out = pd.Series(arr).to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got values like {arr[:3].tolist()}") from None
    bad = ~np.isfinite(out)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} missing or infinite values (first at position "
            f"{int(np.flatnonzero(bad)[0])}); drop or impute them before evaluating"
        )
    return out


def _as_labels(name: str, values: Any) -> np.ndarray:
    arr = _as_1d(name, values)
    missing = pd.isna(arr)
    if missing.any():
        raise ValueError(
            f"{name} has {int(missing.sum())} missing labels (first at position "
            f"{int(np.flatnonzero(missing)[0])}); drop those rows before evaluating"
        )
    return arr


def _check_lengths(**arrays: np.ndarray) -> None:
    (first_name, first), *rest = arrays.items()
    for name, arr in rest:
        if len(arr) != len(first):
            raise ValueError(
                f"{first_name} has {len(first)} values but {name} has {len(arr)}; they must be aligned row by row"
            )


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _defined(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float | None:
    """Call a metric; None where it is undefined on this data (scikit-learn raises, warns or gives NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", UndefinedMetricWarning)
        try:
            value = float(fn(*args, **kwargs))
        except (ValueError, ZeroDivisionError, UndefinedMetricWarning):
            return None
    return value if math.isfinite(value) else None


def _put(out: dict[str, float], name: str, value: float | None) -> None:
    if value is not None:
        out[name] = float(value)


def _thin(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Evenly spaced rows, first and last kept: curves stay small enough to chart and to cache."""
    if len(frame) > max_points:
        frame = frame.iloc[np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))]
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class _Encoded:
    """Labels as codes 0..k-1 in `classes` order, so proba columns and metrics line up whatever the labels are."""

    classes: list[Any]
    true: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    positive: int | None  # index of the positive class, binary only

    @property
    def k(self) -> int:
        return len(self.classes)


def _encode(y_true: Any, y_pred: Any, proba: Any, classes: Any, positive_class: Any) -> _Encoded:
    true, pred = _as_labels("y_true", y_true), _as_labels("y_pred", y_pred)
    _check_lengths(y_true=true, y_pred=pred)
    if classes is not None:
        index = pd.Index(_as_labels("classes", classes))
        if index.has_duplicates:
            raise ValueError(f"classes has duplicates: {index[index.duplicated()].tolist()}")
    else:
        index = pd.Index(true).append(pd.Index(pred)).unique()
        try:
            index = index.sort_values()
        except TypeError:  # mixed label types have no order; keep first appearance
            pass
    class_list = index.tolist()
    codes = {}
    for name, labels in (("y_true", true), ("y_pred", pred)):
        codes[name] = index.get_indexer(labels)
        if (codes[name] < 0).any():
            unknown = pd.unique(labels[codes[name] < 0])[:5].tolist()
            raise ValueError(f"{name} has labels {unknown} that are not in classes {class_list}")

    if positive_class is not None:
        if len(class_list) != 2:
            raise ValueError(
                f"positive_class is only used for binary problems, but there are {len(class_list)} classes"
            )
        if positive_class not in class_list:
            raise ValueError(f"positive_class {positive_class!r} is not one of the classes {class_list}")
        positive = class_list.index(positive_class)
    else:
        positive = 1 if len(class_list) == 2 else None

    probabilities = None
    if proba is not None:
        probabilities = _check_proba(proba, len(true), class_list, inferred=classes is None)
    return _Encoded(class_list, codes["y_true"], codes["y_pred"], probabilities, positive)


def _check_proba(proba: Any, n: int, classes: list[Any], *, inferred: bool) -> np.ndarray:
    try:
        arr = np.asarray(proba, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("proba must be a numeric (n_samples, n_classes) array of probabilities") from None
    expected = (n, len(classes))
    if arr.shape != expected:
        hint = (
            " (classes were inferred from y_true and y_pred; pass classes= in proba column order)"
            if inferred
            else ""
        )
        raise ValueError(
            f"proba has shape {arr.shape} but expected {expected}: one row per sample and one column per "
            f"class in {classes}{hint}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("proba has missing or infinite values")
    if arr.min() < -PROBA_SUM_TOLERANCE or arr.max() > 1 + PROBA_SUM_TOLERANCE:
        raise ValueError(
            f"proba must hold probabilities in [0, 1], got values from {arr.min():.4g} to {arr.max():.4g}"
        )
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1) > PROBA_SUM_TOLERANCE
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"proba rows must sum to 1, but row {row} sums to {sums[row]:.4g}")
    arr = np.clip(arr, 0.0, 1.0)
    return arr / arr.sum(axis=1, keepdims=True)


def _ovr_classes(enc: _Encoded) -> list[int]:
    """Classes whose one-vs-rest curves exist: both positives and negatives present in y_true."""
    counts = np.bincount(enc.true, minlength=enc.k)
    return [j for j in range(enc.k) if 0 < counts[j] < len(enc.true)]


def classification_metrics(
    y_true: Any, y_pred: Any, proba: Any = None, classes: Any = None, positive_class: Any = None
) -> dict[str, float]:
    """Standard classification scores under fixed names, so every page and report shows the same numbers.

    Always: accuracy, balanced_accuracy, precision_macro, recall_macro, f1_macro, precision_weighted,
    recall_weighted, f1_weighted, jaccard_macro, matthews_corrcoef, cohen_kappa. Binary adds the positive
    class's precision, recall, f1 and specificity. With `proba` ((n, k), columns in `classes` order; by default
    the sorted labels, as `classes_` in scikit-learn): roc_auc, pr_auc (average precision), log_loss, brier;
    multiclass adds roc_auc_weighted and roc_auc_ovo. Multiclass roc_auc and pr_auc are one-vs-rest macro
    averages over the classes present in y_true; multiclass brier is the sum over classes (range 0 to 2).
    """
    enc = _encode(y_true, y_pred, proba, classes, positive_class)
    t, y = enc.true, enc.pred
    present = np.union1d(t, y)  # macro averages over labels seen, as scikit-learn does by default
    out: dict[str, float] = {
        "accuracy": float(skm.accuracy_score(t, y)),
    }
    _put(out, "balanced_accuracy", _defined(skm.balanced_accuracy_score, t, y))
    if enc.positive is not None:
        p, r, f, _ = skm.precision_recall_fscore_support(t, y, labels=[0, 1], average=None, zero_division=0)
        pos, neg = enc.positive, 1 - enc.positive
        out.update(precision=float(p[pos]), recall=float(r[pos]), f1=float(f[pos]), specificity=float(r[neg]))
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            t, y, labels=present, average=average, zero_division=0
        )
        out.update(
            {f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)}
        )
    out["jaccard_macro"] = float(skm.jaccard_score(t, y, labels=present, average="macro", zero_division=0))
    _put(out, "matthews_corrcoef", _defined(skm.matthews_corrcoef, t, y))
    _put(out, "cohen_kappa", _defined(skm.cohen_kappa_score, t, y))
    if enc.proba is not None:
        out.update(_probability_metrics(enc, enc.proba))
    return out


def _probability_metrics(enc: _Encoded, proba: np.ndarray) -> dict[str, float]:
    t, out = enc.true, {}
    ovr = _ovr_classes(enc)
    if enc.positive is not None:
        is_pos, score = t == enc.positive, proba[:, enc.positive]
        if enc.positive in ovr:
            out["roc_auc"] = float(skm.roc_auc_score(is_pos, score))
            out["pr_auc"] = float(skm.average_precision_score(is_pos, score))
        brier = float(np.mean((is_pos - score) ** 2))
    else:
        if ovr:
            aucs = [skm.roc_auc_score(t == j, proba[:, j]) for j in ovr]
            out["roc_auc"] = float(np.mean(aucs))
            out["roc_auc_weighted"] = float(np.average(aucs, weights=np.bincount(t, minlength=enc.k)[ovr]))
            _put(
                out,
                "roc_auc_ovo",
                _defined(skm.roc_auc_score, t, proba, multi_class="ovo", labels=range(enc.k)),
            )
            out["pr_auc"] = float(np.mean([skm.average_precision_score(t == j, proba[:, j]) for j in ovr]))
        brier = float(skm.brier_score_loss(t, proba, labels=range(enc.k)))
    _put(out, "log_loss", _defined(skm.log_loss, t, proba, labels=range(enc.k)))
    out["brier"] = brier
    return out


@dataclass(frozen=True)
class ThresholdAnalysis:
    """Binary scores at each cut-off, so a user can pick the threshold their costs prefer instead of 0.5.

    `table` has one row per threshold (ascending; a row predicts the positive class when its probability is
    >= threshold) with precision, recall, f1, specificity, accuracy, balanced_accuracy, youden_j and
    predicted_positive_share. It is thinned to about `max_points` rows, but always keeps each metric's best row.
    """

    positive_class: Any
    table: pd.DataFrame

    def best_threshold(self, metric: str = "f1") -> float:
        """The threshold that maximises `metric` (one of THRESHOLD_METRICS); ties go to the lowest threshold."""
        if metric not in THRESHOLD_METRICS:
            raise ValueError(f"metric must be one of {list(THRESHOLD_METRICS)}, got {metric!r}")
        return float(self.table["threshold"].iloc[int(self.table[metric].to_numpy().argmax())])


def threshold_analysis(
    y_true: Any, scores: Any, positive_class: Any, *, max_points: int = MAX_CURVE_POINTS
) -> ThresholdAnalysis:
    """Precision, recall, F1 and friends at every distinct score of the positive class, thinned for charts.

    Needs both classes in y_true; every distinct score is evaluated, so best_threshold is exact.
    """
    labels = _as_labels("y_true", y_true)
    score = _as_float_1d("scores", scores)
    _check_lengths(y_true=labels, scores=score)
    max_points = _check_positive_int("max_points", max_points)
    is_pos = labels == positive_class
    n_pos = int(is_pos.sum())
    if n_pos in (0, len(is_pos)):
        raise ValueError(
            f"threshold analysis needs both classes in y_true; positive_class {positive_class!r} has {n_pos} of "
            f"{len(is_pos)} rows"
        )
    return ThresholdAnalysis(positive_class=positive_class, table=_threshold_table(is_pos, score, max_points))


def _threshold_table(is_pos: np.ndarray, score: np.ndarray, max_points: int) -> pd.DataFrame:
    tns, fps, fns, tps, thresholds = skm.confusion_matrix_at_thresholds(
        is_pos.astype(int), score, pos_label=1
    )
    recall, specificity = tps / (tps + fns), tns / (tns + fps)
    table = pd.DataFrame(
        {
            "threshold": thresholds,
            "precision": tps / (tps + fps),  # tps + fps >= 1: the top threshold predicts its own row positive
            "recall": recall,
            "f1": 2 * tps / (2 * tps + fps + fns),
            "specificity": specificity,
            "accuracy": (tps + tns) / len(is_pos),
            "balanced_accuracy": (recall + specificity) / 2,
            "youden_j": recall + specificity - 1,
            "predicted_positive_share": (tps + fps) / len(is_pos),
        }
    )
    table = table.iloc[::-1].reset_index(drop=True)  # ascending thresholds read left to right on a chart
    if len(table) > max_points:
        keep = set(np.linspace(0, len(table) - 1, max_points).round().astype(int).tolist())
        keep |= {int(table[m].to_numpy().argmax()) for m in THRESHOLD_METRICS}
        table = table.iloc[sorted(keep)].reset_index(drop=True)
    return table


@dataclass(frozen=True)
class ClassificationDetails:
    """Tables and curve points behind the classification metrics, ready for a page to chart.

    per_class: class, precision, recall, f1, support. confusion_matrix: counts, index = actual class,
    columns = predicted class. class_balance: class, count, share, predicted_count, predicted_share.
    roc_curve (class, fpr, tpr, threshold), pr_curve (class, recall, precision, threshold) and calibration
    (class, mean_predicted, fraction_positive, count) are None without `proba`; the binary case has one
    `class` (the positive one), multiclass one-vs-rest curves per class. A NaN threshold marks the curve
    end-point that no threshold reaches (nothing predicted positive on ROC, recall 0 on PR).
    thresholds is a ThresholdAnalysis for binary problems with `proba`, else None.
    """

    classes: list[Any]
    positive_class: Any
    per_class: pd.DataFrame
    confusion_matrix: pd.DataFrame
    class_balance: pd.DataFrame
    roc_curve: pd.DataFrame | None
    pr_curve: pd.DataFrame | None
    calibration: pd.DataFrame | None
    thresholds: ThresholdAnalysis | None


def classification_details(
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    classes: Any = None,
    positive_class: Any = None,
    *,
    max_curve_points: int = MAX_CURVE_POINTS,
    calibration_bins: int = CALIBRATION_BINS,
) -> ClassificationDetails:
    """Per-class table, confusion matrix, class balance and curve points, with the same inputs as the metrics."""
    max_curve_points = _check_positive_int("max_curve_points", max_curve_points)
    calibration_bins = _check_positive_int("calibration_bins", calibration_bins)
    enc = _encode(y_true, y_pred, proba, classes, positive_class)
    k, classes_ = enc.k, enc.classes
    p, r, f, s = skm.precision_recall_fscore_support(
        enc.true, enc.pred, labels=range(k), average=None, zero_division=0
    )
    per_class = pd.DataFrame({"class": classes_, "precision": p, "recall": r, "f1": f, "support": s})
    confusion = pd.DataFrame(
        skm.confusion_matrix(enc.true, enc.pred, labels=range(k)),
        index=pd.Index(classes_, name="actual"),
        columns=pd.Index(classes_, name="predicted"),
    )
    counts = np.bincount(enc.true, minlength=k)
    predicted = np.bincount(enc.pred, minlength=k)
    balance = pd.DataFrame(
        {
            "class": classes_,
            "count": counts,
            "share": counts / counts.sum(),
            "predicted_count": predicted,
            "predicted_share": predicted / predicted.sum(),
        }
    )
    roc = pr = calibration = thresholds = None
    if enc.proba is not None:
        curve_classes = [enc.positive] if enc.positive is not None else list(range(k))
        ovr = set(_ovr_classes(enc))
        roc_parts, pr_parts, cal_parts = [], [], []
        for j in curve_classes:
            is_j, score = enc.true == j, enc.proba[:, j]
            cal_parts.append(
                _calibration_points(is_j, score, calibration_bins).assign(**{"class": classes_[j]})
            )
            if j not in ovr:
                continue
            fpr, tpr, thr = skm.roc_curve(is_j, score)
            thr = np.where(np.isfinite(thr), thr, np.nan)  # the leading inf does not survive JSON
            roc_parts.append(
                _thin(
                    pd.DataFrame({"class": classes_[j], "fpr": fpr, "tpr": tpr, "threshold": thr}),
                    max_curve_points,
                )
            )
            prec, rec, thr = skm.precision_recall_curve(is_j, score, drop_intermediate=True)
            pr_parts.append(
                _thin(
                    pd.DataFrame(
                        {
                            "class": classes_[j],
                            "recall": rec,
                            "precision": prec,
                            "threshold": np.append(thr, np.nan),
                        }
                    ),
                    max_curve_points,
                )
            )
        roc = _concat(roc_parts, ["class", "fpr", "tpr", "threshold"])
        pr = _concat(pr_parts, ["class", "recall", "precision", "threshold"])
        calibration = _concat(cal_parts, ["class", "mean_predicted", "fraction_positive", "count"])
        if enc.positive is not None and enc.positive in ovr:
            table = _threshold_table(enc.true == enc.positive, enc.proba[:, enc.positive], max_curve_points)
            thresholds = ThresholdAnalysis(positive_class=classes_[enc.positive], table=table)
    return ClassificationDetails(
        classes=classes_,
        positive_class=None if enc.positive is None else classes_[enc.positive],
        per_class=per_class,
        confusion_matrix=confusion,
        class_balance=balance,
        roc_curve=roc,
        pr_curve=pr,
        calibration=calibration,
        thresholds=thresholds,
    )


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _calibration_points(is_positive: np.ndarray, score: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Uniform bins as in sklearn.calibration.calibration_curve, plus the count per bin it does not return."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_ids = np.searchsorted(edges[1:-1], score)
    count = np.bincount(bin_ids, minlength=n_bins)
    total = np.bincount(bin_ids, weights=score, minlength=n_bins)
    hits = np.bincount(bin_ids, weights=is_positive.astype(float), minlength=n_bins)
    used = count > 0
    return pd.DataFrame(
        {
            "mean_predicted": total[used] / count[used],
            "fraction_positive": hits[used] / count[used],
            "count": count[used],
        }
    )


# ------------------------------------------------------------------------------------------- regression


def _point_metrics(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Error metrics shared by regression and forecasting."""
    err = p - t
    out = {
        "mae": float(np.mean(np.abs(err))),
        "mse": float(np.mean(err**2)),
        "rmse": float(np.sqrt(np.mean(err**2))),
    }
    _put(out, "r2", _defined(skm.r2_score, t, p, force_finite=False))
    nonzero = t != 0
    if nonzero.any():  # MAPE ignores zero targets rather than dividing by zero
        out["mape"] = float(np.mean(np.abs(err[nonzero]) / np.abs(t[nonzero])))
    denominator = np.abs(t) + np.abs(p)
    safe = np.where(denominator > 0, denominator, 1.0)
    out["smape"] = float(np.mean(np.where(denominator > 0, 2 * np.abs(err) / safe, 0.0)))
    return out


def regression_metrics(y_true: Any, y_pred: Any, n_features: int | None = None) -> dict[str, float]:
    """Standard regression scores and residual summaries under fixed names.

    mae, mse, rmse, r2, adjusted_r2 (with n_features, when n > n_features + 1), mape (zero targets ignored;
    omitted if all are zero), smape (0 to 2), median_absolute_error, max_error, explained_variance,
    d2_absolute_error, mean_error (mean of y_pred - y_true), rmsle (when all values are >= 0), residual_std,
    residual_skew, within_10pct and within_20pct (share of rows with |error| <= 10% / 20% of |y_true|).
    """
    t, p = _as_float_1d("y_true", y_true), _as_float_1d("y_pred", y_pred)
    _check_lengths(y_true=t, y_pred=p)
    n = len(t)
    out = _point_metrics(t, p)
    if n_features is not None:
        if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer) or n_features < 0:
            raise ValueError(f"n_features must be a non-negative integer, got {n_features!r}")
        if "r2" in out and n > n_features + 1:
            out["adjusted_r2"] = 1 - (1 - out["r2"]) * (n - 1) / (n - n_features - 1)
    out["median_absolute_error"] = float(skm.median_absolute_error(t, p))
    out["max_error"] = float(skm.max_error(t, p))
    _put(out, "explained_variance", _defined(skm.explained_variance_score, t, p, force_finite=False))
    _put(out, "d2_absolute_error", _defined(skm.d2_absolute_error_score, t, p))
    out["mean_error"] = float(np.mean(p - t))
    if (t >= 0).all() and (p >= 0).all():
        out["rmsle"] = float(skm.root_mean_squared_log_error(t, p))
    residual = t - p
    if n >= 2:
        out["residual_std"] = float(np.std(residual, ddof=1))
    if n >= 3:
        _put(out, "residual_skew", _defined(stats.skew, residual))
    for pct in (10, 20):
        out[f"within_{pct}pct"] = float(np.mean(np.abs(residual) <= pct / 100 * np.abs(t)))
    return out


@dataclass(frozen=True)
class ResidualAnalysis:
    """Points for a predicted-vs-actual / residual plot and a residual histogram.

    points: row (position in the input), actual, prediction, residual (actual - prediction); a seeded random
    sample of at most `max_points` rows, in input order. histogram: bin_left, bin_right, count, share over all
    rows.
    """

    n_samples: int
    points: pd.DataFrame
    histogram: pd.DataFrame


def residual_analysis(
    y_true: Any, y_pred: Any, *, max_points: int = MAX_RESIDUAL_POINTS, bins: int = 30, random_state: int = 0
) -> ResidualAnalysis:
    """Residual points and histogram; the points are sampled so a chart of a million rows stays responsive."""
    t, p = _as_float_1d("y_true", y_true), _as_float_1d("y_pred", y_pred)
    _check_lengths(y_true=t, y_pred=p)
    max_points, bins = _check_positive_int("max_points", max_points), _check_positive_int("bins", bins)
    residual = t - p
    rows = np.arange(len(t))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(random_state).choice(len(t), size=max_points, replace=False))
    points = pd.DataFrame({"row": rows, "actual": t[rows], "prediction": p[rows], "residual": residual[rows]})
    counts, edges = np.histogram(residual, bins=bins)
    histogram = pd.DataFrame(
        {"bin_left": edges[:-1], "bin_right": edges[1:], "count": counts, "share": counts / len(residual)}
    )
    return ResidualAnalysis(n_samples=len(t), points=points, histogram=histogram)


class ConformalIntervals(BaseEstimator):
    """Split-conformal prediction intervals from out-of-fold residuals: y_pred ± a learned quantile.

    fit() takes the absolute out-of-fold residuals |y - ŷ| of n rows and keeps their
    ceil((n + 1)(1 - alpha))-th smallest value (the finite-sample corrected quantile), so on exchangeable
    new data the interval covers the truth at least 1 - alpha of the time. We wrote this rather than use
    MAPIE because the search already holds out-of-fold predictions for every model, while MAPIE would refit
    the model to produce them again. Intervals have the same width everywhere (no difficulty scaling).

    Learned: quantile_ (the half-width), n_calibration_ (number of residuals).
    """

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha

    def fit(self, y_true_oof: Any, y_pred_oof: Any) -> ConformalIntervals:
        """Learn the half-width from out-of-fold targets and predictions."""
        alpha = _check_probability("alpha", self.alpha)
        t, p = _as_float_1d("y_true_oof", y_true_oof), _as_float_1d("y_pred_oof", y_pred_oof)
        _check_lengths(y_true_oof=t, y_pred_oof=p)
        scores = np.sort(np.abs(t - p))
        n = len(scores)
        rank = math.ceil((n + 1) * (1 - alpha) - 1e-9)  # the tolerance keeps 10 * 0.9 at 9, not 10
        if rank > n:
            needed = math.ceil((1 - alpha) / alpha - 1e-9)
            raise ValueError(
                f"alpha={alpha} needs at least {needed} out-of-fold residuals for a finite interval, got {n}"
            )
        self.quantile_ = float(scores[rank - 1])
        self.n_calibration_ = n
        return self

    def predict_interval(self, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around new point predictions."""
        check_is_fitted(self)
        p = _as_float_1d("y_pred", y_pred)
        return p - self.quantile_, p + self.quantile_

    def coverage(self, y_true: Any, y_pred: Any) -> float:
        """Share of y_true inside its interval: should be close to (at least) 1 - alpha on new data."""
        lower, upper = self.predict_interval(y_pred)
        t = _as_float_1d("y_true", y_true)
        _check_lengths(y_true=t, y_pred=lower)
        return float(np.mean((t >= lower) & (t <= upper)))


# ------------------------------------------------------------------------------------------- clustering


def _as_matrix(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("X must be numeric (encode categorical columns before clustering metrics)") from None
    if arr.ndim != 2:
        raise ValueError(f"X must be two-dimensional (samples x features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("X has missing or infinite values; impute them before clustering metrics")
    return arr


def clustering_metrics(
    X: Any, labels: Any, sample_size: int = 5000, random_state: int = 0
) -> dict[str, float]:
    """Internal cluster-quality scores: silhouette, calinski_harabasz, davies_bouldin, n_clusters, noise_share.

    Noise points (label -1, as from DBSCAN) are counted in noise_share and left out of the scores, which
    describe the clusters found. The three scores need 2 <= clusters < points and are omitted otherwise.
    Silhouette is quadratic in rows, so above `sample_size` rows it is computed on a seeded sample.
    """
    X_ = _as_matrix(X)
    labels_ = _as_labels("labels", labels)
    _check_lengths(X=X_, labels=labels_)
    _check_positive_int("sample_size", sample_size)
    noise = pd.Series(labels_).isin([-1]).to_numpy()
    X_, labels_ = X_[~noise], labels_[~noise]
    n_clusters = len(pd.unique(labels_))
    out: dict[str, float] = {"n_clusters": n_clusters, "noise_share": float(noise.mean())}
    if 2 <= n_clusters < len(labels_):
        sample = sample_size if len(labels_) > sample_size else None
        _put(
            out,
            "silhouette",
            _defined(skm.silhouette_score, X_, labels_, sample_size=sample, random_state=random_state),
        )
        out["calinski_harabasz"] = float(skm.calinski_harabasz_score(X_, labels_))
        out["davies_bouldin"] = float(skm.davies_bouldin_score(X_, labels_))
    return out


def cluster_sizes(labels: Any) -> pd.DataFrame:
    """Rows per cluster (cluster, size, share), largest first; noise keeps its label -1."""
    counts = pd.Series(_as_labels("labels", labels)).value_counts()
    table = counts.rename_axis("cluster").reset_index(name="size")
    table = table.sort_values(["size", "cluster"], ascending=[False, True], kind="stable")  # ties by label
    table["share"] = table["size"] / table["size"].sum()
    return table.reset_index(drop=True)


# ------------------------------------------------------------------------------------------ forecasting


def forecast_metrics(y_true: Any, y_pred: Any, y_train: Any = None, season: int = 1) -> dict[str, float]:
    """Forecast accuracy: mae, rmse, mape, smape, mase, r2, bias (mean of y_pred - y_true).

    mase divides the MAE by the in-sample MAE of the naive forecast y[t - season] on y_train, so 1.0 means
    "as good as repeating the last season"; it is omitted without y_train or when that naive MAE is zero.
    """
    t, p = _as_float_1d("y_true", y_true), _as_float_1d("y_pred", y_pred)
    _check_lengths(y_true=t, y_pred=p)
    season = _check_positive_int("season", season)
    point = _point_metrics(t, p)
    out = {name: point[name] for name in ("mae", "rmse", "mape", "smape", "r2") if name in point}
    if y_train is not None:
        train = _as_float_1d("y_train", y_train)
        if len(train) <= season:
            raise ValueError(
                f"y_train needs more than season={season} values for the naive forecast, got {len(train)}"
            )
        scale = float(np.mean(np.abs(train[season:] - train[:-season])))
        if scale > 0:
            out["mase"] = out["mae"] / scale
    out["bias"] = float(np.mean(p - t))
    return out


# ------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class TestResult:
    """Outcome of comparing two models: difference A - B, its confidence interval and a verdict in words.

    t_statistic is None for the bootstrap test. ci_low/ci_high bound the difference at level 1 - alpha.
    """

    __test__ = False  # a result, not a pytest test class

    method: str
    mean_difference: float
    t_statistic: float | None
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    significant: bool
    summary: str


def _summary(
    labels: tuple[str, str], diff: float, ci: tuple[float, float], p: float, alpha: float, detail: str
) -> str:
    a, b = labels
    direction = "higher" if diff > 0 else "lower" if diff < 0 else "the same as"
    amount = f"{abs(diff):.4g} {direction} than" if diff else direction
    verdict = (
        f"the difference is significant at alpha={alpha:g}"
        if p < alpha
        else f"the difference is not significant at alpha={alpha:g}, so treat the two as equally good on this data"
    )
    return (
        f"{a} scores {amount} {b} ({1 - alpha:.0%} CI of the difference {ci[0]:.4g} to {ci[1]:.4g}); "
        f"{verdict} ({detail}, p={p:.3g})."
    )


def corrected_resampled_ttest(
    scores_a: Any,
    scores_b: Any,
    n_train: int,
    n_test: int,
    alpha: float = 0.05,
    *,
    labels: tuple[str, str] = ("model A", "model B"),
) -> TestResult:
    """Compare two models' per-fold CV scores with the Nadeau & Bengio (2003) corrected resampled t-test.

    Folds share training rows, so their scores are correlated and a plain paired t-test is far too eager;
    the correction inflates the variance to var(d) * (1/k + n_test/n_train), with k - 1 degrees of freedom.
    scores_a[i] and scores_b[i] must come from the same split i; n_train and n_test are rows per split.
    """
    a, b = _as_float_1d("scores_a", scores_a), _as_float_1d("scores_b", scores_b)
    _check_lengths(scores_a=a, scores_b=b)
    n_train, n_test = _check_positive_int("n_train", n_train), _check_positive_int("n_test", n_test)
    alpha = _check_probability("alpha", alpha)
    k = len(a)
    if k < 2:
        raise ValueError(f"scores_a and scores_b need at least 2 paired fold scores, got {k}")
    d = a - b
    mean = float(d.mean())
    # Differences equal up to float rounding (0.9 - 0.7 vs 0.8 - 0.6) count as constant, not as tiny noise.
    constant = float(np.ptp(d)) <= 1e-12 * max(1.0, float(np.abs(d).max()))
    se = 0.0 if constant else math.sqrt(float(d.var(ddof=1)) * (1 / k + n_test / n_train))
    if se > 0:
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), k - 1))
    else:  # identical differences on every fold: no doubt about the sign, or no difference at all
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0 else 0.0
    half = float(stats.t.ppf(1 - alpha / 2, k - 1)) * se
    ci = (mean - half, mean + half)
    detail = f"corrected resampled t-test over {k} folds"
    return TestResult(
        method="corrected_resampled_ttest",
        mean_difference=mean,
        t_statistic=float(t),
        p_value=p,
        ci_low=ci[0],
        ci_high=ci[1],
        alpha=alpha,
        significant=p < alpha,
        summary=_summary(labels, mean, ci, p, alpha, detail),
    )


def paired_bootstrap_test(
    y_true: Any,
    pred_a: Any,
    pred_b: Any,
    metric_fn: Callable[[Any, Any], float],
    n_boot: int = 1000,
    random_state: int = 0,
    alpha: float = 0.05,
    *,
    labels: tuple[str, str] = ("model A", "model B"),
) -> TestResult:
    """Compare two models on one held-out set by resampling its rows (the same rows for both models).

    mean_difference is metric_fn(y, a) - metric_fn(y, b) on the full set; the CI is the percentile interval
    of the resampled differences and the two-sided p-value is twice the smaller share of resampled
    differences on either side of zero. pred_a / pred_b may be labels, values or (n, k) probabilities.
    Resamples on which the metric is undefined (it raises ValueError) are skipped; if more than half are,
    the test raises.
    """
    t = _as_1d("y_true", y_true)
    a, b = np.asarray(pred_a), np.asarray(pred_b)
    _check_lengths(y_true=t, pred_a=a, pred_b=b)
    n_boot = _check_positive_int("n_boot", n_boot)
    alpha = _check_probability("alpha", alpha)
    observed = float(metric_fn(t, a)) - float(metric_fn(t, b))
    rng = np.random.default_rng(random_state)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        try:
            diffs.append(float(metric_fn(t[idx], a[idx])) - float(metric_fn(t[idx], b[idx])))
        except ValueError:
            continue
    if len(diffs) < n_boot / 2:
        raise ValueError(
            f"metric_fn failed on {n_boot - len(diffs)} of {n_boot} bootstrap resamples; the held-out set is "
            "too small or too unbalanced for this metric"
        )
    d = np.asarray(diffs)
    tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
    p = min(1.0, 2 * (tail + 1) / (len(d) + 1))
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    detail = f"paired bootstrap over {len(t)} rows, {len(d)} resamples"
    return TestResult(
        method="paired_bootstrap",
        mean_difference=observed,
        t_statistic=None,
        p_value=p,
        ci_low=float(low),
        ci_high=float(high),
        alpha=alpha,
        significant=p < alpha,
        summary=_summary(labels, observed, (float(low), float(high)), p, alpha, detail),
    )
