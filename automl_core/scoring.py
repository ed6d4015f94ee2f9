"""The metrics the search optimises, one definition each.

Every metric takes the true values and what the model produced: a probability matrix (columns
in `classes` order) for classification, predictions for regression. The search always maximises
`Metric.signed(...)`, so a lower-is-better loss is negated once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from sklearn import metrics as skm

from .errors import AutoMLError

_EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named score with its direction and what input it needs."""

    name: str
    greater_is_better: bool
    needs_proba: bool
    fn: Callable[..., float]
    positive: object | None = None

    def __call__(self, y_true, output, classes=None) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(output), classes, self.positive))

    def signed(self, y_true, output, classes=None) -> float:
        """The score to maximise: the metric itself, or minus a loss."""
        value = self(y_true, output, classes)
        return value if self.greater_is_better else -value

    def signed_score(self, score: float) -> float:
        """A score already computed, turned so that higher is better (for sorting)."""
        return score if self.greater_is_better else -score

    def better(self, a: float, b: float) -> bool:
        return a > b if self.greater_is_better else a < b


def _labels(proba: np.ndarray, classes) -> np.ndarray:
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)]


def _as_objects(y) -> np.ndarray:
    return np.asarray(y, dtype=object)


def _roc_auc(y, proba, classes, positive=None):
    if proba.shape[1] == 2:
        return skm.roc_auc_score(_as_objects(y) == classes[1], proba[:, 1])
    present = [i for i, c in enumerate(classes) if np.any(_as_objects(y) == c)]
    sub = proba[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), _EPS, None)
    if len(present) == 2:  # only two classes in this sample: a binary AUC between them
        return skm.roc_auc_score(_as_objects(y) == classes[present[1]], sub[:, 1])
    return skm.roc_auc_score(_as_objects(y), sub, multi_class="ovr", labels=[classes[i] for i in present])


def _label_index(y, classes) -> np.ndarray:
    """Column of each true label in `classes` (searches run this thousands of times: no validation)."""
    import pandas as pd

    index = pd.Index(list(classes)).get_indexer(_as_objects(y))
    if (index < 0).any():
        unknown = _as_objects(y)[index < 0][0]
        raise ValueError(f"label {unknown!r} is not one of the classes {list(classes)}")
    return index


def _log_loss(y, proba, classes, positive=None):
    """Multiclass log loss as scikit-learn computes it (clipped, rows renormalised), without its overhead."""
    proba = np.clip(np.asarray(proba, dtype=float), _EPS, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    rows = np.arange(len(proba))
    return float(-np.mean(np.log(proba[rows, _label_index(y, classes)])))


def _accuracy(y, proba, classes, positive=None):
    return float(np.mean(np.argmax(proba, axis=1) == _label_index(y, classes)))


def _balanced_accuracy(y, proba, classes, positive=None):
    return skm.balanced_accuracy_score(_as_objects(y), _labels(proba, classes))


def _positive_index(classes, positive) -> int:
    """The column of the positive class: the problem's positive class, else the second class."""
    for i, c in enumerate(classes):
        if positive is not None and c == positive:
            return i
    return 1


def _f1(y, proba, classes, positive=None):
    average = "binary" if len(classes) == 2 else "macro"
    kwargs = {"pos_label": classes[_positive_index(classes, positive)]} if average == "binary" else {}
    return skm.f1_score(_as_objects(y), _labels(proba, classes), average=average, **kwargs)


def _pr_auc(y, proba, classes, positive=None):
    if proba.shape[1] == 2:
        j = _positive_index(classes, positive)
        return skm.average_precision_score(_as_objects(y) == classes[j], proba[:, j])
    onehot = np.column_stack([_as_objects(y) == c for c in classes])
    return skm.average_precision_score(onehot, proba, average="macro")


def _rmse(y, pred, classes=None, positive=None):
    return float(np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)) ** 2)))


def _mae(y, pred, classes=None, positive=None):
    return skm.mean_absolute_error(y, pred)


def _r2(y, pred, classes=None, positive=None):
    return skm.r2_score(y, pred)


def _mape(y, pred, classes=None, positive=None):
    y = np.asarray(y, dtype=float)
    nonzero = np.abs(y) > 1e-12
    return float(np.mean(np.abs((y[nonzero] - np.asarray(pred)[nonzero]) / y[nonzero])))


CLASSIFICATION_METRICS = {
    m.name: m
    for m in (
        Metric("roc_auc", True, True, _roc_auc),
        Metric("log_loss", False, True, _log_loss),
        Metric("accuracy", True, True, _accuracy),
        Metric("balanced_accuracy", True, True, _balanced_accuracy),
        Metric("f1", True, True, _f1),
        Metric("pr_auc", True, True, _pr_auc),
    )
}
REGRESSION_METRICS = {
    m.name: m
    for m in (
        Metric("rmse", False, False, _rmse),
        Metric("mae", False, False, _mae),
        Metric("r2", True, False, _r2),
        Metric("mape", False, False, _mape),
    )
}
CLUSTERING_METRICS = {
    "silhouette": Metric("silhouette", True, False, lambda X, labels, *_: skm.silhouette_score(X, labels)),
}
METRICS_BY_TASK = {
    "binary": CLASSIFICATION_METRICS,
    "multiclass": {k: v for k, v in CLASSIFICATION_METRICS.items()},
    "regression": REGRESSION_METRICS,
    "timeseries": REGRESSION_METRICS,
    "clustering": CLUSTERING_METRICS,
}
DEFAULT_METRIC = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
    "timeseries": "rmse",
    "clustering": "silhouette",
}


def check_metric(task: str, metric: str | None) -> str:
    """The metric name to use for a task; 'auto' or None gives the default."""
    if metric in (None, "auto", ""):
        return DEFAULT_METRIC[task]
    allowed = METRICS_BY_TASK[task]
    if metric not in allowed:
        raise AutoMLError(f"metric '{metric}' does not fit a {task} task; choose one of {', '.join(allowed)}")
    return metric


def get_metric(task: str, name: str, positive_class: object | None = None) -> Metric:
    """The metric object; for binary tasks F1 and PR AUC are about `positive_class`."""
    metric = METRICS_BY_TASK[task][check_metric(task, name)]
    return replace(metric, positive=positive_class) if positive_class is not None else metric
