"""Re-validation: the search's finalists scored again on fresh folds before one is chosen.

After hundreds of trials on one set of folds, the best search score is optimistic (the winner's
curse): the tuner has partly fitted the noise of those folds. New random splits of the same rows
played no part in choosing the finalists, so their scores are honest, and the winner, the
leaderboard order and the ensemble weights are taken from them. Measured on titanic (981 rows,
167 trials in 57 s): the five tuned XGBoost models led the search at 0.849-0.851 AUC and scored
0.834-0.844 on fresh folds, while a LightGBM portfolio default ranked eleventh at 0.842 and
scored 0.840 and 0.836.

It runs only where it is cheap and useful: k-fold plans (a large holdout has little noise to
chase), with the search's number of folds (so that every model trains on as many rows as in the
search), and only over the best finalists whose pass fits in a quarter of the budget (at least
two thirds of them, and three). That is small data, where trials are cheap, the search runs
hundreds of them and the folds are noisy. Where they do not fit, trials are few and costly, and
the winner's curse is small.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .models import FAMILIES
from .scoring import Metric
from .search import Budget, FoldCache, Search, Trial
from .validation import CVPlan

FINALISTS = 12
PER_FAMILY = 3  # diversity: near-copies of one family overfit the out-of-fold predictions
# One shuffle, seeded from the run's seed: every version trained with that seed and plan is re-validated
# on the same folds, so versions stay comparable fold by fold. (Measured at 60 s on the small shared
# datasets, a second pass did not fit in the share anyway.)
REPEATS = 1
MIN_FINALISTS = 3
# Re-validate most of the finalists or none: after re-validation only re-validated models enter the
# ensemble, so a short prefix would shrink its choice. In one run at 60 s where only 4-5 of 12 fitted
# (credit_default, hpc_jobs, diamonds: thousands of rows, a few dozen costly trials), the smaller pool
# and the time taken from the search cost hpc_jobs 3 % of test log loss (0.403 -> 0.414) and gained nothing.
MIN_SHARE = 2 / 3
_SLACK = 1.5  # the search's last trial may overrun its estimate; the pass must still fit afterwards
BUDGET_SHARE = 0.25


def finalists(ranked: list[Trial], *, limit: int = FINALISTS, per_family: int = PER_FAMILY) -> list[Trial]:
    """The best distinct models (ranked best first), at most `per_family` from one family.

    They are the ones re-validated and the ensemble's candidates. Two trials whose out-of-fold
    predictions are identical (a small space repeating itself) count once.
    """
    chosen, seen, counts = [], set(), {}
    for t in ranked:
        if t.family == "baseline" or t.oof is None or counts.get(t.family, 0) >= per_family:
            continue
        values = np.asarray(t.oof, dtype=float).ravel()
        key = np.round(values[~np.isnan(values)][:200], 8).tobytes()  # holdouts and windows leave rows empty
        if key in seen:
            continue
        seen.add(key)
        counts[t.family] = counts.get(t.family, 0) + 1
        chosen.append(t)
        if len(chosen) >= limit:
            break
    return chosen


def applies_to(plan: CVPlan | None) -> bool:
    """Shuffled k-fold plans only: a holdout is used for large data, time has one order."""
    return plan is not None and plan.kind in ("kfold", "stratified_kfold")


def pass_seconds(trials: list[Trial], n_splits: int, n_rows: int, prep_seconds: dict[str, float]) -> float:
    """Estimated seconds to score `trials` once on new folds (fits, predictions and preprocessing)."""
    fits = sum(t.fit_time + t.predict_time_per_row * n_rows / max(1, n_splits) for t in trials) * n_splits
    styles = {FAMILIES[t.family].style for t in trials if t.family in FAMILIES}
    prep = sum(prep_seconds.get(style, 0.2 * n_splits) for style in styles)
    return fits + prep


def affordable(pool: list[Trial], seconds: float, n_splits: int, n_rows: int, prep_seconds: dict) -> list[Trial]:
    """The longest prefix of the ranked `pool` whose pass fits in `seconds`.

    A prefix, not the cheapest models: a finalist that is not re-validated ranks below all that
    are, so a slow model may only be left out after every better one is in.
    """
    for k in range(len(pool), 0, -1):
        if pass_seconds(pool[:k], n_splits, n_rows, prep_seconds) <= seconds:
            return pool[:k]
    return []


def enough(prefix: list[Trial], pool: list[Trial]) -> bool:
    """Whether `prefix` covers enough of the finalists `pool` to be worth re-validating."""
    return len(prefix) >= max(MIN_FINALISTS, int(np.ceil(MIN_SHARE * len(pool))))


def passes_that_fit(trials: list[Trial], seconds: float, n_splits: int, n_rows: int, prep_seconds: dict) -> int:
    """How many passes (up to `REPEATS`) over all of `trials` fit in `seconds`."""
    one_pass = pass_seconds(trials, n_splits, n_rows, prep_seconds)
    if one_pass <= 0:
        return REPEATS
    return int(min(REPEATS, seconds // one_pass))


class ReservePlanner:
    """How many seconds the search leaves for re-validation; recomputed only when a trial is added."""

    def __init__(self, budget_seconds: float, n_splits: int, n_rows: int, prep_seconds: dict[str, float]):
        self.cap = BUDGET_SHARE * budget_seconds
        self.n_splits = n_splits
        self.n_rows = n_rows
        self.prep_seconds = prep_seconds
        self._seen = -1
        self._value = 0.0

    def __call__(self, ok_trials: list[Trial], signed: Callable[[float], float]) -> float:
        if len(ok_trials) != self._seen:
            self._seen = len(ok_trials)
            pool = finalists(sorted(ok_trials, key=lambda t: -signed(t.score)))
            prefix = affordable(pool, self.cap / _SLACK, self.n_splits, self.n_rows, self.prep_seconds)
            one_pass = pass_seconds(prefix, self.n_splits, self.n_rows, self.prep_seconds)
            passes = passes_that_fit(prefix, self.cap / _SLACK, self.n_splits, self.n_rows, self.prep_seconds)
            self._value = _SLACK * passes * one_pass if enough(prefix, pool) else 0.0
        return self._value


@dataclass
class Revalidation:
    """Scores of the finalists on fresh folds: the mean of their out-of-fold predictions over the repeats."""

    repeats: int
    seeds: list[int | None]
    splits: list[list[tuple[np.ndarray, np.ndarray]]]
    scores: dict[str, float]
    oof: dict[str, np.ndarray]
    seconds: float

    def to_dict(self) -> dict:
        return {"repeats": self.repeats, "seeds": self.seeds, "models": list(self.scores),
                "seconds": round(self.seconds, 2)}

    def fold_scores(self, oof: np.ndarray, y: np.ndarray, metric: Metric, classes: tuple) -> list[float]:
        """Scores of one model's averaged predictions on every fold of every repeat (the same folds for all)."""
        oof = np.asarray(oof)
        return [float(metric(y[val], oof[val], classes)) for split in self.splits for _, val in split]

    def apply(self, ranked: list[Trial], y: np.ndarray, metric: Metric, classes: tuple) -> list[Trial]:
        """Re-validated trials first, ordered by their new scores; the search's score stays in `search_score`."""
        done = [t for t in ranked if t.name in self.scores]
        for t in done:
            t.search_score = t.score
            t.score = self.scores[t.name]
            t.oof = self.oof[t.name]
            t.fold_scores = self.fold_scores(t.oof, y, metric, classes)
            t.std = float(np.std(t.fold_scores))
            t.revalidated = self.repeats
        done.sort(key=lambda t: -metric.signed_score(t.score))
        return done + [t for t in ranked if t.name not in self.scores]


def revalidate(
    candidates: list[Trial],
    plan: CVPlan,
    folds: FoldCache,
    metric: Metric,
    task: str,
    classes: tuple,
    *,
    budget: Budget,
    refit_reserve: Callable[[], float],
    n_jobs: int = 1,
    random_state: int | None = 0,
    repeats: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Revalidation | None:
    """Score the finalists again on new shuffles of the same rows, within the time left.

    In a normal fit the best `candidates` whose pass fits before the refit's reserve are scored on
    `REPEATS` shuffles (fewer if only fewer passes fit); None when fewer than two thirds of them,
    or fewer than three, fit (too small a pool for the ensemble's choice). A replay passes
    `repeats` and scores exactly `candidates`, that many times.
    """
    start = time.perf_counter()
    n_rows = len(folds.y)
    forced = repeats is not None
    wanted = repeats if forced else REPEATS
    if not forced:
        available = budget.remaining() - refit_reserve()
        prefix = affordable(candidates, available, plan.n_splits, n_rows, folds.prep_seconds)
        wanted = passes_that_fit(prefix, available, plan.n_splits, n_rows, folds.prep_seconds)
        if wanted < 1 or not enough(prefix, candidates):
            return None
        candidates = prefix
    seeds, splits, per_repeat = [], [], []
    kept = list(candidates)
    for r in range(1, wanted + 1):
        seed = None if random_state is None else int(random_state) + r
        fresh = dataclasses.replace(plan, random_state=seed)
        split = fresh.splits(folds.y)
        cache = FoldCache(folds.X, folds.y, split, folds.build_prep)
        for style in dict.fromkeys(FAMILIES[t.family].style for t in kept):
            cache.get(style)  # prepared up front, so a trial's time-left check counts only its own fits
        search = Search(
            [FAMILIES[t.family] for t in kept],
            cache,
            metric,
            task,
            classes,
            budget=budget,
            reserve=lambda _trials: refit_reserve(),
            n_jobs=n_jobs,
            random_state=random_state,
        )
        results, timed_out = {}, False
        for i, t in enumerate(kept):
            if on_progress is not None:
                on_progress(f"re-validating on fresh folds ({r} of {wanted}): {t.name}, {i + 1} of {len(kept)}")
            trial = search.evaluate(FAMILIES[t.family], t.params, "revalidation", trial_id=t.trial_id)
            if trial.status == "timeout":
                timed_out = True
                break
            if trial.status == "ok":  # a configuration that fails on new folds drops out
                results[t.name] = trial.oof
        if timed_out and r == 1:
            return None
        if r > 1 and len(results) < len(kept):
            break  # a second repeat counts only when every finalist has it
        kept = [t for t in kept if t.name in results]
        if len(kept) < 2:
            return None
        seeds.append(seed)
        splits.append(split)
        per_repeat.append(results)
    done = len(per_repeat)
    oof = {t.name: sum(p[t.name] for p in per_repeat) / done for t in kept}
    scores = {name: float(metric(folds.y, values, classes)) for name, values in oof.items()}
    return Revalidation(done, seeds, splits, scores, oof, time.perf_counter() - start)
