"""The budgeted model search: a short loop with a budget, a strategy and one evaluator.

1. Portfolio: each family's known-good configurations, cheapest families first, round by round.
2. Optimisation: Optuna's TPE sampler (warm-started with the portfolio results) on the families
   that are winning, with median pruning after each fold.
Every trial is scored on the same folds; its out-of-fold predictions are kept for ensembling and
honest scores. Progress goes out as `SearchEvent`s through the `on_event` callback.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .errors import Cancelled
from .models import FamilyModel, ModelFamily, TrialTimeout
from .scoring import Metric

logger = logging.getLogger(__name__)
_MIN_TRIAL_SECONDS = 0.05
_MAX_TRIAL_SHARE = 0.25


PER_CLASS_FAMILIES = frozenset({"lightgbm", "xgboost", "hist_gb"})  # one tree per class and round


class Budget:
    """Wall-clock budget: answers 'how long is left' and 'can I afford this'."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, start: float | None = None):
        self.seconds = float(seconds)
        self.clock = clock
        self.start = clock() if start is None else start
        self.deadline = self.start + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def fraction(self) -> float:
        return min(1.0, max(0.0, self.elapsed() / self.seconds)) if self.seconds > 0 else 1.0


@dataclass
class Trial:
    """One configuration scored on every fold; flat and JSON-able apart from `oof`."""

    trial_id: int
    family: str
    params: dict
    source: str
    status: str = "running"
    score: float | None = None
    std: float | None = None
    fold_scores: list[float] = field(default_factory=list)
    fit_time: float = 0.0
    predict_time_per_row: float = 0.0
    size_bytes: int | None = None
    best_iterations: list[int] = field(default_factory=list)
    error: str | None = None
    elapsed: float = 0.0
    oof: np.ndarray | None = field(default=None, repr=False)
    search_score: float | None = None  # the score on the search's folds, kept when re-validation replaces `score`
    revalidated: int = 0  # how many fresh splits scored it (see `revalidation`)

    @property
    def name(self) -> str:
        return f"{self.family}_{self.trial_id}"

    def final_params(self) -> dict:
        """Hyperparameters for the refit on all rows: early-stopped rounds become a fixed count."""
        params = dict(self.params)
        if self.best_iterations:
            params["n_estimators"] = max(10, int(round(np.mean(self.best_iterations) * 1.1)))
        return params

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "oof"}
        out["name"] = self.name
        out["params"] = _jsonable(self.params)
        return out


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class SearchEvent:
    """A progress report: what happens, how far, the best so far and the time left."""

    type: str
    stage: str
    percent: float
    elapsed: float
    time_left: float
    message: str = ""
    best_score: float | None = None
    best_model: str | None = None
    trial: dict | None = None
    metric: str | None = None
    greater_is_better: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FoldData:
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    val_index: np.ndarray
    categorical: tuple


class FoldCache:
    """Preprocessed folds per style, fitted inside each training fold once and reused by every trial."""

    def __init__(self, X: pd.DataFrame, y: np.ndarray, splits, build_prep: Callable):
        self.X = X
        self.y = y
        self.splits = splits
        self.build_prep = build_prep
        self._cache: dict[str, list[FoldData]] = {}
        self.prep_seconds: dict[str, float] = {}

    def get(self, style: str) -> list[FoldData]:
        if style not in self._cache:
            start = time.perf_counter()
            folds = []
            for train, val in self.splits:
                prep, categorical = self.build_prep(style, self.X.iloc[train])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    X_train = prep.fit_transform(self.X.iloc[train], self.y[train])
                    X_val = prep.transform(self.X.iloc[val])
                folds.append(
                    FoldData(
                        np.asarray(X_train, dtype=np.float64),
                        self.y[train],
                        np.asarray(X_val, dtype=np.float64),
                        self.y[val],
                        val,
                        tuple(categorical),
                    )
                )
            self._cache[style] = folds
            self.prep_seconds[style] = time.perf_counter() - start
        return self._cache[style]


class _Pruned(Exception):
    pass


class _OutOfTime(Exception):
    pass


class _CountingWriter(io.RawIOBase):
    def __init__(self):
        self.size = 0

    def writable(self):
        return True

    def write(self, b):
        n = memoryview(b).nbytes
        self.size += n
        return n


def pickled_size(obj) -> int | None:
    writer = _CountingWriter()
    try:
        pickle.dump(obj, writer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - size is informative only
        return None
    return writer.size


class Search:
    """Runs the portfolio and the optimisation phase within a budget; results are `trials_`."""

    def __init__(
        self,
        families: list[ModelFamily],
        folds: FoldCache,
        metric: Metric,
        task: str,
        classes: tuple = (),
        *,
        budget: Budget,
        reserve: Callable[[list[Trial]], float] | None = None,
        on_event: Callable[[SearchEvent], None] | None = None,
        n_jobs: int = 1,
        random_state: int | None = 0,
        replay: list[dict] | None = None,
        max_trials: int | None = None,
    ):
        self.families = {f.name: f for f in families}
        self.folds = folds
        self.metric = metric
        self.task = task
        self.classes = tuple(classes)
        self.budget = budget
        self.reserve = reserve or (lambda trials: 0.0)
        self.on_event = on_event
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.replay = replay
        self.max_trials = max_trials
        self.trials_: list[Trial] = []
        self._family_seconds: dict[str, list[float]] = {}
        self._reference_seconds: float | None = None

    # ------------------------------------------------------------------ events
    def emit(self, type_: str, stage: str, message: str = "", trial: Trial | None = None) -> None:
        if self.on_event is None:
            return
        best = self.best()
        fraction = self.budget.fraction()
        if self.replay:  # a replay runs every recorded trial: progress is trials done, not time
            fraction = min(1.0, len(self.trials_) / max(1, len(self.replay)))
        event = SearchEvent(
            type=type_,
            stage=stage,
            percent=round(100 * fraction, 1),
            elapsed=round(self.budget.elapsed(), 2),
            time_left=round(max(0.0, self.budget.remaining()), 2),
            message=message,
            best_score=None if best is None else best.score,
            best_model=None if best is None else best.name,
            trial=None if trial is None else trial.to_dict(),
            metric=self.metric.name,
            greater_is_better=self.metric.greater_is_better,
        )
        self.on_event(event)

    # ------------------------------------------------------------------ results
    def ok_trials(self) -> list[Trial]:
        return [t for t in self.trials_ if t.status == "ok"]

    def best(self) -> Trial | None:
        ok = self.ok_trials()
        if not ok:
            return None
        return max(ok, key=lambda t: self._signed(t.score))

    def _signed(self, score: float) -> float:
        return score if self.metric.greater_is_better else -score

    # ------------------------------------------------------------------ timing
    def search_time_left(self) -> float:
        return self.budget.remaining() - self.reserve(self.ok_trials())

    def estimate_seconds(self, family: ModelFamily) -> float:
        seen = self._family_seconds.get(family.name)
        if seen:
            return float(np.median(seen))
        reference = self._reference_seconds
        factor = self._class_factor(family.name)
        if reference is None:
            n = len(self.folds.y)
            reference = 0.3 + n * 2e-5 * len(self.folds.splits)
            if family.early_stopping:
                # Before any measurement, a booster that stops at its deadline (LightGBM, XGBoost) is tried
                # rather than skipped on a guess: underestimating it costs one cut trial, overestimating it the family.
                factor = 1.0
        prep = 0.0 if family.style in self.folds.prep_seconds else 0.2 * len(self.folds.splits)
        # Costs are relative to LightGBM around a few thousand rows; kernels grow faster with rows.
        growth = max(1.0, len(self.folds.y) / 2000) ** (family.row_exponent - 1.0)
        return family.cost * reference * growth * factor + prep

    def _class_factor(self, family: str) -> float:
        """Boosting grows one tree per class and round: 40 classes cost about 40 binary models."""
        k = len(self.classes)
        return float(k) if k > 2 and family in PER_CLASS_FAMILIES else 1.0

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self, family: ModelFamily, params: dict, source: str, optuna_trial=None, trial_id: int | None = None
    ) -> Trial:
        trial_id = trial_id if trial_id is not None else len(self.trials_) + 1
        trial = Trial(trial_id=trial_id, family=family.name, params=dict(params), source=source)
        trial.elapsed = round(self.budget.elapsed(), 2)
        self.trials_.append(trial)
        self.emit("trial_started", "search", f"{family.label}: trying {_short(params)}", trial)
        start = time.perf_counter()
        try:
            self._run_folds(trial, family, optuna_trial, start)
            trial.status = "ok"
        except Cancelled:
            trial.status = "cancelled"
            raise
        except _Pruned:
            trial.status = "pruned"
        except (_OutOfTime, TrialTimeout):
            trial.status = "timeout"
        except Exception as exc:  # noqa: BLE001 - a failing configuration must not stop the search
            trial.status = "failed"
            trial.error = f"{type(exc).__name__}: {exc}"[:500]
            logger.info("trial %s failed: %s", trial.name, trial.error)
        seconds = time.perf_counter() - start
        if trial.status in ("ok", "pruned", "timeout"):
            # A trial cut at its deadline cost at least what it ran: a lower bound, better than a guess.
            self._family_seconds.setdefault(family.name, []).append(seconds)
            if family.name == "lightgbm" and self._reference_seconds is None and trial.status != "pruned":
                self._reference_seconds = seconds / self._class_factor("lightgbm")
        if trial.status != "ok":
            trial.oof = None
        self.emit("trial_finished", "search", _finished_message(trial, family, self.metric), trial)
        return trial

    def _run_folds(self, trial: Trial, family: ModelFamily, optuna_trial, start: float) -> None:
        folds = self.folds.get(family.style)
        n = len(self.folds.y)
        k = len(self.classes)
        classification = self.task in ("binary", "multiclass")
        oof = np.full((n, k), np.nan) if classification else np.full(n, np.nan)
        fit_times, predict_times, scores = [], [], []
        model = None
        for i, fold in enumerate(folds):
            if i > 0:
                per_fold = (time.perf_counter() - start) / i
                if per_fold * (len(folds) - i) > max(self.search_time_left(), 0):
                    raise _OutOfTime()
            model = FamilyModel(
                family=family.name,
                params=trial.params,
                task=self.task,
                categorical_features=fold.categorical,
                n_jobs=self.n_jobs,
                random_state=self.random_state,
            )
            t0 = time.perf_counter()
            deadline = time.monotonic() + max(self.search_time_left(), _MIN_TRIAL_SECONDS)
            model.fit(fold.X_train, fold.y_train, fold.X_val, fold.y_val, deadline=deadline)
            t1 = time.perf_counter()
            if classification:
                proba = model.predict_proba(fold.X_val)
                output = _align_proba(proba, model.classes_, self.classes)
                oof[fold.val_index] = output
            else:
                output = model.predict(fold.X_val)
                oof[fold.val_index] = output
            t2 = time.perf_counter()
            fit_times.append(t1 - t0)
            predict_times.append((t2 - t1) / max(1, len(fold.val_index)))
            if model.best_iteration_ is not None:
                trial.best_iterations.append(model.best_iteration_)
            score = self.metric(fold.y_val, output, self.classes)
            if not math.isfinite(score):
                raise ValueError(f"score is {score} on fold {i + 1}")
            scores.append(score)
            if optuna_trial is not None:
                optuna_trial.report(self._signed(float(np.mean(scores))), i)
                if optuna_trial.should_prune():
                    trial.fold_scores = scores
                    raise _Pruned()
        trial.fold_scores = [float(s) for s in scores]
        covered = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
        trial.oof = oof
        trial.score = float(self.metric(self.folds.y[covered], oof[covered], self.classes))
        trial.std = float(np.std(scores)) if len(scores) > 1 else 0.0
        trial.fit_time = float(np.mean(fit_times))
        trial.predict_time_per_row = float(np.mean(predict_times))
        trial.size_bytes = pickled_size(model)

    # ------------------------------------------------------------------ strategy
    def run(self) -> list[Trial]:
        self.emit("stage", "search", f"searching {len(self.families)} model families")
        if self.replay is not None:
            for entry in self.replay:
                family = self.families.get(entry["family"])
                if family is not None:
                    self.evaluate(family, entry["params"], "replay", trial_id=entry.get("trial_id"))
            return self.trials_
        self._portfolio()
        self._optimise()
        return self.trials_

    def _room_for(self, family: ModelFamily) -> bool:
        """Start a trial only if it should finish in the time left, and, once a real model exists,
        only if it costs at most a quarter of the whole budget (cheap and strong first)."""
        if self.max_trials is not None and len(self.trials_) >= self.max_trials:
            return False
        left = self.search_time_left()
        estimate = self.estimate_seconds(family)
        if left <= _MIN_TRIAL_SECONDS or estimate > left:
            return False
        has_model = any(t.family != "baseline" for t in self.ok_trials())
        return not has_model or estimate <= _MAX_TRIAL_SHARE * self.budget.seconds

    def _portfolio(self) -> None:
        ordered = sorted(self.families.values(), key=lambda f: f.cost)
        rounds = max(len(f.portfolio) for f in ordered)
        for r in range(rounds):
            for family in ordered:
                if r >= len(family.portfolio):
                    continue
                if r > 0 and family.name == "baseline":
                    continue
                if r > 0 and not self._family_promising(family):
                    continue
                if not self._room_for(family):
                    continue
                self.evaluate(family, family.portfolio[r], "portfolio")

    def _family_promising(self, family: ModelFamily) -> bool:
        """After round one, spend portfolio time only on families within reach of the best."""
        ranked = self._family_ranking()
        if family.name not in ranked:
            return False
        return ranked.index(family.name) < max(4, len(ranked) // 2)

    def _family_ranking(self) -> list[str]:
        best: dict[str, float] = {}
        for t in self.ok_trials():
            s = self._signed(t.score)
            if t.family not in best or s > best[t.family]:
                best[t.family] = s
        return [f for f, _ in sorted(best.items(), key=lambda kv: -kv[1]) if f != "baseline"]

    def _optimise(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        ranking = [f for f in self._family_ranking() if self.families[f].space is not None]
        candidates = [f for f in ranking if _has_space(self.families[f], self.task)][:3]
        if not candidates:
            return
        self.emit("stage", "optimise", f"tuning {', '.join(candidates)} with Optuna TPE")
        studies = {name: self._study(self.families[name]) for name in candidates}
        seen: dict[tuple, float] = {}
        repeats: dict[str, int] = {}
        turn = 0
        stalled = 0
        while stalled < len(candidates):
            ranking = [f for f in self._family_ranking() if f in studies] or candidates
            # The leading family gets two turns out of three.
            name = ranking[0] if turn % 3 != 2 or len(ranking) == 1 else ranking[1 + (turn // 3) % (len(ranking) - 1)]
            turn += 1
            family = self.families[name]
            if not self._room_for(family):
                stalled += 1
                if self.search_time_left() < _MIN_TRIAL_SECONDS:
                    break
                continue
            stalled = 0
            study = studies[name]
            optuna_trial = study.ask()
            params = family.space(optuna_trial, self.task, len(self.folds.y))
            key = (name, repr(sorted(params.items())))
            if key in seen:
                # Small spaces repeat themselves: reuse the earlier result instead of refitting.
                study.tell(optuna_trial, seen[key])
                repeats[name] = repeats.get(name, 0) + 1
                if repeats[name] >= 25:
                    studies.pop(name)
                    candidates = [c for c in candidates if c != name]
                    if not studies:
                        break
                continue
            trial = self.evaluate(family, params, "optuna", optuna_trial)
            if trial.status == "ok":
                seen[key] = self._signed(trial.score)
            if trial.status == "ok":
                study.tell(optuna_trial, self._signed(trial.score))
            elif trial.status == "pruned":
                study.tell(optuna_trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)

    def _study(self, family: ModelFamily):
        import optuna

        seed = None if self.random_state is None else int(self.random_state) + len(family.name)
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, multivariate=True),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        )
        probe = study.ask()
        family.space(probe, self.task, len(self.folds.y))
        distributions = dict(probe.distributions)
        study.tell(probe, state=optuna.trial.TrialState.FAIL)
        for t in self.ok_trials():
            if t.family != family.name:
                continue
            params = _fit_into(t.params, distributions)
            if params is None:
                continue
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=distributions, value=self._signed(t.score))
            )
        return study


def _has_space(family: ModelFamily, task: str) -> bool:
    import optuna

    probe = optuna.trial.FixedTrial({})
    try:
        family.space(probe, task, 1000)
    except ValueError:
        return True  # FixedTrial raises for any suggested parameter: the family has a space
    return False


def _fit_into(params: dict, distributions: dict) -> dict | None:
    """Portfolio parameters as a point of an Optuna space (clipped into range), or None if impossible."""
    from optuna.distributions import CategoricalDistribution

    out = {}
    for name, dist in distributions.items():
        if name not in params:
            if isinstance(dist, CategoricalDistribution):
                return None
            value = dist.low
        else:
            value = params[name]
        if isinstance(dist, CategoricalDistribution):
            if value not in dist.choices:
                return None
            out[name] = value
            continue
        value = min(max(value, dist.low), dist.high)
        if getattr(dist, "step", None) and not getattr(dist, "log", False):
            value = dist.low + round((value - dist.low) / dist.step) * dist.step
        out[name] = int(value) if isinstance(dist.low, int) and not isinstance(dist.low, bool) else float(value)
    return out


def _align_proba(proba: np.ndarray, model_classes, classes: tuple) -> np.ndarray:
    if len(model_classes) == len(classes) and all(a == b for a, b in zip(model_classes, classes)):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    index = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        out[:, index[c]] = proba[:, j]
    return out


def _short(params: dict) -> str:
    if not params:
        return "defaults"
    items = []
    for k, v in list(params.items())[:4]:
        items.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(items)


def _finished_message(trial: Trial, family: ModelFamily, metric: Metric) -> str:
    if trial.status == "ok":
        return f"{family.label}: {metric.name} {trial.score:.4f} ± {trial.std:.4f} ({trial.fit_time:.2f}s per fold)"
    if trial.status == "failed":
        return f"{family.label}: failed ({trial.error})"
    return f"{family.label}: {trial.status}"
