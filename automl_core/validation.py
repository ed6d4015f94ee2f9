"""Validation plans: how the rows are split to score models honestly.

The plan is chosen from the task, the number of rows and the time budget, and recorded with
the result: stratified k-fold for classes, k-fold for numbers, expanding time-ordered windows
for forecasting, and a single holdout when the data is large enough that one split is reliable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from .errors import AutoMLError


@dataclass(frozen=True)
class CVPlan:
    """A validation plan and the reason it was chosen."""

    kind: str
    n_splits: int
    reason: str
    test_size: float | None = None
    random_state: int | None = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def splits(self, y, order: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train indices, validation indices) pairs. `order` sorts rows by time for forecasting."""
        n = len(y)
        index = np.arange(n)
        if self.kind == "time_series":
            ordered = index if order is None else np.asarray(order)
            return _time_splits(ordered, self.n_splits, self.test_size or 0.15)
        if self.kind == "holdout":
            stratify = y if _can_stratify(y, 2) else None
            train, val = train_test_split(
                index, test_size=self.test_size or 0.2, random_state=self.random_state, stratify=stratify
            )
            return [(np.sort(train), np.sort(val))]
        if self.kind == "stratified_kfold":
            import warnings

            splitter = StratifiedKFold(self.n_splits, shuffle=True, random_state=self.random_state)
            with warnings.catch_warnings():  # a class rarer than the folds is expected and explained
                warnings.simplefilter("ignore", UserWarning)
                return [(tr, va) for tr, va in splitter.split(index, y)]
        splitter = KFold(self.n_splits, shuffle=True, random_state=self.random_state)
        return [(tr, va) for tr, va in splitter.split(index)]


def _can_stratify(y, n_splits: int) -> bool:
    _, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    return len(counts) > 1 and counts.min() >= n_splits


def _time_splits(ordered: np.ndarray, n_splits: int, test_share: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window backtests: each fold trains on the past and validates on the next block."""
    n = len(ordered)
    test = max(1, int(n * test_share))
    splits = []
    for k in range(n_splits, 0, -1):
        end = n - (k - 1) * test
        start = end - test
        if start < max(10, test // 2):
            continue
        splits.append((np.sort(ordered[:start]), np.sort(ordered[start:end])))
    if not splits:
        raise AutoMLError(f"too few rows ({n}) for time-ordered validation; at least 20 are needed")
    return splits


def make_cv_plan(
    task: str, n_rows: int, time_budget: float, y=None, *, cv: str | int = "auto", random_state: int | None = 0
) -> CVPlan:
    """Choose the validation plan; `cv` may force a number of folds or 'holdout'."""
    if task == "timeseries":
        folds = 3 if n_rows >= 60 else 2
        return CVPlan(
            "time_series",
            folds,
            f"forecasting: {folds} expanding windows, each validated on the next 15% of the time line",
            test_size=0.15,
            random_state=random_state,
        )
    classification = task in ("binary", "multiclass")
    if cv == "holdout":
        return CVPlan("holdout", 1, "holdout requested: 20% of the rows kept aside", 0.2, random_state)
    if isinstance(cv, int) or (isinstance(cv, str) and cv.isdigit()):
        k = int(cv)
        if k < 2:
            raise AutoMLError(f"cv must be at least 2 folds or 'holdout', got {cv}")
        return _kfold(classification, k, f"{k}-fold requested", y, random_state)
    if cv != "auto":
        raise AutoMLError(f"cv must be 'auto', 'holdout' or a number of folds, got {cv!r}")
    if n_rows >= 100_000 or (n_rows >= 30_000 and time_budget < 20):
        return CVPlan(
            "holdout", 1, f"{n_rows:,} rows: one 20% holdout is reliable and leaves time to search", 0.2, random_state
        )
    if n_rows < 500 and time_budget >= 20:
        return _kfold(classification, 10, f"only {n_rows} rows: 10 folds keep 90% of them for training", y, random_state)
    if n_rows >= 20_000:
        return _kfold(classification, 3, f"{n_rows:,} rows: 3 folds balance reliability and search time", y, random_state)
    if time_budget < 15 and n_rows >= 500:
        return _kfold(classification, 3, f"a {time_budget:.0f} s budget: 3 folds leave time to try more models", y,
                      random_state)
    return _kfold(classification, 5, f"{n_rows:,} rows: 5-fold cross-validation", y, random_state)


def _kfold(classification: bool, k: int, reason: str, y, random_state) -> CVPlan:
    if classification and y is not None:
        labels, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        smallest = int(counts.min())
        if counts.max() < k:
            k = max(2, int(counts.max()))
            reason += f" (reduced to {k} folds: no class has more rows)"
        if smallest < k:
            # One rare class must not shrink the validation of all the others: keep k folds.
            reason += f"; class '{labels[counts.argmin()]}' has only {smallest} row(s), so some folds miss it"
        return CVPlan("stratified_kfold", k, reason, random_state=random_state)
    return CVPlan("kfold", k, reason, random_state=random_state)
