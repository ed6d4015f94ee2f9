"""Ensembles built from out-of-fold predictions, kept only when they beat the best single model.

Three recipes are scored on the same out-of-fold predictions and the best one wins:
- greedy ensemble selection (Caruana et al. 2004): add, with replacement, the model that most
  improves the averaged prediction; the counts become weights;
- voting: the plain average of the top models;
- stacking: a regularised linear model learns how to combine the models (its own score is
  cross-validated on the out-of-fold predictions, so it is not judged on what it was fitted on).
The fitted ensembles are ordinary scikit-learn estimators over member pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .scoring import Metric

_CLASSIFICATION = ("binary", "multiclass")


@dataclass
class EnsemblePlan:
    """Which members, with which weights, and how the ensemble scored out of fold."""

    kind: str
    members: list[str]
    weights: list[float]
    score: float
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "members": self.members,
            "weights": [round(float(w), 4) for w in self.weights],
            "score": self.score,
            "details": self.details,
        }


def greedy_selection(
    predictions: list[np.ndarray], y, metric: Metric, classes=(), *, rounds: int = 40
) -> tuple[np.ndarray, float]:
    """Caruana's forward selection with replacement; returns (weights, out-of-fold score).

    Runs a fixed number of rounds and keeps the best mix seen on the way.
    """
    counts = np.zeros(len(predictions))
    current = None
    best_signed, best_counts = -np.inf, None
    for step in range(1, rounds + 1):
        if current is None:
            candidates = [metric.signed(y, p, classes) for p in predictions]
        else:
            candidates = [metric.signed(y, current + (p - current) / step, classes) for p in predictions]
        j = int(np.argmax(candidates))
        counts[j] += 1
        current = predictions[j].astype(float).copy() if current is None else current + (predictions[j] - current) / step
        if candidates[j] > best_signed + 1e-12:
            best_signed, best_counts = candidates[j], counts.copy()
    weights = best_counts / best_counts.sum()
    blended = sum(w * p for w, p in zip(weights, predictions))
    return weights, metric(y, blended, classes)


def voting(predictions: list[np.ndarray], y, metric: Metric, classes=()) -> tuple[np.ndarray, float]:
    weights = np.full(len(predictions), 1.0 / len(predictions))
    blended = sum(w * p for w, p in zip(weights, predictions))
    return weights, metric(y, blended, classes)


def _stack_features(predictions: list[np.ndarray], task: str) -> np.ndarray:
    if task in _CLASSIFICATION:
        clipped = [np.log(np.clip(p, 1e-6, 1.0)) for p in predictions]
        return np.hstack(clipped)
    return np.column_stack(predictions)


def make_stacker(task: str, random_state: int | None = 0):
    """A regularised linear combiner. Log-probabilities of near-certain models span many orders of
    magnitude, so the classifier's inputs are standardised (unscaled, L-BFGS took 19 s on 3,000 rows)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task in _CLASSIFICATION:
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=100, tol=1e-3, random_state=random_state))
    return Ridge(alpha=1.0, positive=True)


def stacking(
    predictions: list[np.ndarray], y, metric: Metric, task: str, classes=(), *, random_state: int | None = 0
) -> tuple[object, float, np.ndarray]:
    """A linear stacker, its score and its predictions, both from 5-fold CV over the out-of-fold predictions."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    features = _stack_features(predictions, task)
    stacker = make_stacker(task, random_state)
    y = np.asarray(y)
    if task in _CLASSIFICATION:
        _, counts = np.unique(y.astype(str), return_counts=True)
        folds = StratifiedKFold(min(5, int(counts.min())), shuffle=True, random_state=random_state)
        output = cross_val_predict(stacker, features, y, cv=folds, method="predict_proba")
    else:
        folds = KFold(5, shuffle=True, random_state=random_state)
        output = cross_val_predict(stacker, features, y.astype(float), cv=folds)
    score = metric(y, output, classes)
    stacker.fit(features, y if task in _CLASSIFICATION else y.astype(float))
    return stacker, score, output


def choose_ensemble(
    names: list[str],
    predictions: list[np.ndarray],
    y,
    metric: Metric,
    task: str,
    classes=(),
    *,
    random_state: int | None = 0,
    min_gain: float = 1e-4,
    stacking_margin: float = 5e-3,
    noise: float = 0.0,
    allow_stacking: bool = True,
) -> EnsemblePlan | None:
    """The best of greedy selection, voting and stacking, or None when none beats the best single model
    by more than `noise` (and the relative margins)."""
    if len(predictions) < 2:
        return None
    single = [metric(y, p, classes) for p in predictions]
    best_single = max(single, key=lambda s: s if metric.greater_is_better else -s)
    plans = []
    weights, score = greedy_selection(predictions, y, metric, classes)
    used = weights > 0
    if used.sum() >= 2:
        plans.append(
            EnsemblePlan("greedy", [n for n, u in zip(names, used) if u], list(weights[used]), score)
        )
    top = min(5, len(predictions))
    w, score = voting(predictions[:top], y, metric, classes)
    plans.append(EnsemblePlan("voting", names[:top], list(w), score))
    try:
        if not allow_stacking:
            raise ValueError("stacking not allowed for this task")
        stacker, score, output = stacking(predictions[:top], y, metric, task, classes, random_state=random_state)
        plans.append(
            EnsemblePlan("stacking", names[:top], [1.0 / top] * top, score,
                         details={"stacker": stacker, "stacking_oof": output})
        )
    except ValueError:
        pass
    gain = lambda s: (s - best_single) if metric.greater_is_better else (best_single - s)  # noqa: E731
    scale = max(abs(best_single), 1e-12)
    # A stacker's cross-validated score is noisier than a fixed blend's, so it must win clearly.
    # `noise` (a fraction of the best model's standard error across folds) keeps ensembles that only
    # chase noise in the out-of-fold predictions from replacing a simpler model.
    required = {"greedy": max(min_gain * scale, noise), "voting": max(min_gain * scale, noise),
                "stacking": max(stacking_margin * scale, noise)}
    good = [p for p in plans if gain(p.score) > required[p.kind]]
    if not good:
        return None
    chosen = max(good, key=lambda p: gain(p.score))
    chosen.details.update(best_single_score=best_single, candidates={p.kind: p.score for p in plans})
    return chosen


class WeightedEnsemble(BaseEstimator):
    """A weighted average (or a linear stack) of member pipelines, as one scikit-learn estimator."""

    def __init__(self, estimators: list[tuple[str, object]], weights=None, task: str = "regression", stacker=None):
        self.estimators = estimators
        self.weights = weights
        self.task = task
        self.stacker = stacker

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.task in _CLASSIFICATION else "regressor"
        return tags

    def fit(self, X, y, fitted: bool = False):
        """Fit clones of the members (or adopt them as they are with `fitted=True`)."""
        members = [(name, est if fitted else clone(est).fit(X, y)) for name, est in self.estimators]
        self.estimators_ = members
        weights = np.ones(len(members)) if self.weights is None else np.asarray(self.weights, dtype=float)
        self.weights_ = weights / weights.sum()
        if self.task in _CLASSIFICATION:
            self.classes_ = np.asarray(members[0][1].classes_)
        return self

    def _member_outputs(self, X) -> list[np.ndarray]:
        if self.task in _CLASSIFICATION:
            return [est.predict_proba(X) for _, est in self.estimators_]
        return [np.asarray(est.predict(X), dtype=float) for _, est in self.estimators_]

    def _combine(self, outputs: list[np.ndarray]) -> np.ndarray:
        if self.stacker is not None:
            features = _stack_features(outputs, self.task)
            if self.task in _CLASSIFICATION:
                return self.stacker.predict_proba(features)
            return self.stacker.predict(features)
        return sum(w * o for w, o in zip(self.weights_, outputs))

    @available_if(lambda self: self.task in _CLASSIFICATION)
    def predict_proba(self, X):
        check_is_fitted(self, "estimators_")
        return self._combine(self._member_outputs(X))

    def predict(self, X):
        check_is_fitted(self, "estimators_")
        combined = self._combine(self._member_outputs(X))
        if self.task in _CLASSIFICATION:
            return self.classes_[np.argmax(combined, axis=1)]
        return combined
