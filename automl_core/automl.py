"""`AutoML`: the one estimator a person uses. Profile, detect, search, ensemble, refit.

It follows scikit-learn's conventions: the constructor only stores settings, `fit` does the
work, and what was learned ends in `_`: `problem_`, `profile_`, `cv_plan_`, `leaderboard_`,
`best_estimator_` (one plain scikit-learn `Pipeline`: cleaner, preprocessing, model).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .clustering import ClusterModel, search_clusterings
from .ensemble import WeightedEnsemble, choose_ensemble
from .errors import AutoMLError, BudgetError, DataError, TargetError
from .forecasting import TimeFeatures
from .intake import TableProfile, profile_table
from .models import FAMILIES, FamilyModel, families_for
from .preprocess import TableCleaner, build_preprocessor
from .problem import ProblemSpec, detect_problem, split_target
from .revalidation import ReservePlanner, Revalidation, applies_to, finalists, revalidate
from .scoring import get_metric
from .search import Budget, FoldCache, Search, SearchEvent, Trial, pickled_size
from .validation import make_cv_plan

ENSEMBLE_NOISE_SHARE = 0.3  # an ensemble must beat the best model by this share of its standard error
MAX_STACKING_CLASSES = 10
_REFIT_FACTOR = 1.35  # a refit on all rows costs about this much more than one fold's fit


SMALL_DATA_CELLS = 1_000_000


def default_n_jobs(n_cells: int | None = None) -> int:
    """Threads for one training run: AUTOML_N_JOBS, else one for small data, else all cores.

    Boosting and histogram models parallelise every tree in short OpenMP regions. On small data that
    gains little, and as soon as another process holds a core it costs a lot: measured here, LightGBM
    on 2,165 rows took 4.4 s with two threads and 0.24 s with one while a second job was running.
    """
    env = os.environ.get("AUTOML_N_JOBS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    if n_cells is not None and n_cells < SMALL_DATA_CELLS:
        return 1
    return max(1, os.cpu_count() or 1)


class AutoML(BaseEstimator):
    """Automated machine learning under a wall-clock time budget.

    Parameters
    ----------
    task : "auto", "binary", "multiclass", "regression", "timeseries" or "clustering"
    time_budget : seconds for the whole `fit`, wall clock.
    metric : the metric to optimise; "auto" picks the task's default (ROC AUC, log loss, RMSE, silhouette).
    cv : "auto", "holdout" or a number of folds.
    include, exclude : model family names to allow or forbid (see `automl_core.models.FAMILIES`).
    ensemble : try ensembles of the best models (kept only if they beat the best single model).
    time_column : the date column for forecasting; detected when None.
    n_jobs : threads per model; None means all cores.
    max_search_rows : above this many rows the search runs on a sample; the winner is refit on all rows.
    max_search_cells : the same guard for wide tables: the sample keeps at most this many cells (rows x
        cleaned columns), and never fewer than 1,000 rows.
    replay : a recorded trial list (`recipe_["trials"]`) to re-run exactly instead of searching.
    ignore_columns : columns never used as features (for example a label kept aside for clustering).
    """

    def __init__(
        self,
        task: str = "auto",
        *,
        time_budget: float = 60.0,
        metric: str | None = "auto",
        cv: str | int = "auto",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        ensemble: bool = True,
        time_column: str | None = None,
        n_jobs: int | None = None,
        random_state: int | None = 0,
        max_search_rows: int = 150_000,
        max_search_cells: int = 30_000_000,
        replay: list[dict] | None = None,
        ignore_columns: list[str] | None = None,
    ):
        self.ignore_columns = ignore_columns
        self.task = task
        self.time_budget = time_budget
        self.metric = metric
        self.cv = cv
        self.include = include
        self.exclude = exclude
        self.ensemble = ensemble
        self.time_column = time_column
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.max_search_rows = max_search_rows
        self.max_search_cells = max_search_cells
        self.replay = replay

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | str | None = None,
        *,
        on_event: Callable[[SearchEvent], None] | None = None,
        profile: TableProfile | None = None,
        start_time: float | None = None,
    ) -> AutoML:
        """Search for the best model. `y` may be a Series or the name of a column of `X`.

        `on_event` receives `SearchEvent`s (and may raise `Cancelled` to stop); `start_time` is the
        `time.monotonic()` at which the budget started, when work before `fit` counts against it.
        """
        if self.time_budget is None or float(self.time_budget) <= 0:
            raise BudgetError(f"time_budget must be a positive number of seconds, got {self.time_budget!r}")
        budget = Budget(float(self.time_budget), start=start_time)
        self._on_event = on_event
        self._budget = budget
        self.task_ = self.metric_ = None
        frame, target = self._frame_and_target(X, y)
        if self.ignore_columns:
            unknown = [c for c in self.ignore_columns if c not in frame.columns]
            if unknown:
                raise DataError(f"columns to ignore are not in the data: {', '.join(map(repr, unknown))}")
            attrs = dict(frame.attrs)
            frame = frame.drop(columns=[c for c in self.ignore_columns if c != target])
            frame.attrs.update(attrs)
        self._emit("stage", "profile", "reading the columns")
        self.profile_ = profile or profile_table(frame, target, source=frame.attrs.get("source"))
        self.problem_ = detect_problem(
            frame, target, self.profile_, task=self.task, metric=self.metric, time_column=self.time_column
        )
        self.task_ = self.problem_.task
        self.metric_ = self.problem_.metric
        self._emit("stage", "profile", self.problem_.reason)
        self.n_jobs_ = self.n_jobs or default_n_jobs(frame.shape[0] * frame.shape[1])
        started = time.perf_counter()
        if self.task_ == "clustering":
            features = frame.drop(columns=[target]) if target else frame
            self._fit_clustering(features)
        else:
            X_train, y_train, dropped = split_target(frame, self.problem_, self.profile_)
            self.unlabeled_rows_dropped_ = dropped
            self._fit_supervised(X_train, y_train)
        self.fit_seconds_ = time.perf_counter() - started
        self._emit("done", "done", f"best: {self.best_model_name_} ({self.metric_} {self.best_score_:.4f})")
        self._on_event = None
        self._budget = None
        return self

    def _frame_and_target(self, X, y) -> tuple[pd.DataFrame, str | None]:
        if not isinstance(X, pd.DataFrame):
            raise DataError(f"X must be a pandas DataFrame with named columns, got {type(X).__name__}")
        if len(X) == 0:
            raise DataError("X has no rows")
        if y is None:
            return X, None
        if isinstance(y, str):
            if y not in X.columns:
                from .intake import check_target_name

                check_target_name(X, y)
            return X, y
        y = pd.Series(y)
        if len(y) != len(X):
            raise TargetError(f"X has {len(X)} rows but y has {len(y)}; they must match")
        name = str(y.name) if y.name is not None and y.name not in X.columns else "target"
        frame = X.reset_index(drop=True).copy()
        frame[name] = y.reset_index(drop=True).to_numpy()
        frame.attrs.update(X.attrs)
        return frame, name

    def _emit(self, type_: str, stage: str, message: str = "", trial=None) -> None:
        if self._on_event is None:
            return
        budget = self._budget
        best = getattr(self, "_search", None)
        best_trial = best.best() if best is not None else None
        self._on_event(
            SearchEvent(
                type=type_,
                stage=stage,
                percent=100.0 if type_ == "done" else round(100 * budget.fraction(), 1),
                elapsed=round(budget.elapsed(), 2),
                time_left=round(max(0.0, budget.remaining()), 2),
                message=message,
                best_score=getattr(best_trial, "score", None),
                best_model=getattr(best_trial, "name", None),
                trial=trial,
                metric=getattr(self, "metric_", None),
                greater_is_better=self._greater_is_better(),
            )
        )

    def _greater_is_better(self) -> bool | None:
        if getattr(self, "task_", None) is None or getattr(self, "metric_", None) is None:
            return None
        if self.task_ == "clustering":
            return True
        return get_metric(self.task_, self.metric_).greater_is_better

    # ------------------------------------------------------------------ supervised
    def _excluded_columns(self) -> list[str]:
        """Columns the profile leaves out (identifiers, constants, nearly empty): never features."""
        return [c.name for c in self.profile_.columns if c.role == "excluded"]

    def _prep_builder(self, kinds: dict[str, str]):
        task = self.task_
        time_column = self.problem_.time_column
        random_state = self.random_state

        def build(style: str, X_part: pd.DataFrame):
            if style == "time":
                others = tuple(c for c, k in kinds.items() if k in ("numeric", "boolean") and c != time_column)
                return TimeFeatures(time_column, others), ()
            prep = build_preprocessor(kinds, X_part, style, task=task, random_state=random_state)
            categorical = ()
            if style == "tree":
                cat = next((cols for name, _, cols in prep.transformers if name == "cat"), [])
                categorical = tuple(range(len(cat)))
            return prep, categorical

        return build

    def _fit_supervised(self, X: pd.DataFrame, y: pd.Series) -> None:
        problem = self.problem_
        cleaner = TableCleaner(specs=self.profile_.specs, exclude=[problem.target, *self._excluded_columns()]).fit(X)
        X_clean = cleaner.transform(X)
        y_values = y.to_numpy()
        self.classes_ = np.asarray(problem.classes, dtype=object) if problem.is_classification else None
        if problem.is_classification and all(isinstance(c, (int, np.integer)) for c in problem.classes):
            self.classes_ = np.asarray(problem.classes, dtype=np.int64)
            y_values = y_values.astype(np.int64)
        elif problem.is_classification:
            y_values = y_values.astype(object)
        else:
            y_values = y_values.astype(float)
        classes = tuple(self.classes_) if self.classes_ is not None else ()
        self.metric_object_ = metric = get_metric(self.task_, self.metric_, problem.positive_class)

        search_index = self._search_rows(y_values, X_clean.shape[1])
        X_search = X_clean.iloc[search_index].reset_index(drop=True)
        y_search = y_values[search_index]
        order = None
        if self.task_ == "timeseries":
            times = pd.to_datetime(X_search[problem.time_column], errors="coerce")
            order = np.argsort(times.to_numpy(), kind="stable")
        self.cv_plan_ = make_cv_plan(
            self.task_, len(y_search), self._budget.remaining(), y_search, cv=self.cv, random_state=self.random_state
        )
        splits = self.cv_plan_.splits(y_search, order)
        self._splits = splits
        self._emit("stage", "search", f"validation: {self.cv_plan_.reason}")

        families, skipped = families_for(self.task_, len(y_search), include=self.include, exclude=self.exclude)
        if self.task_ == "timeseries" and problem.time_column:
            families = [f for f in families if f.style == "time" or f.name in ("lightgbm", "linear", "baseline")]
        self.skipped_families_ = skipped
        kinds = cleaner.kinds_
        build_prep = self._prep_builder(kinds)
        folds = FoldCache(X_search, y_search, splits, build_prep)
        n_folds = len(splits)
        full_rows = len(y_values)

        def refit_reserve(trials: list[Trial]) -> float:
            return self._reserve_seconds(trials, n_folds, full_rows / max(1, len(y_search)), metric.signed_score)

        planner = None
        if applies_to(self.cv_plan_) and self.replay is None:
            planner = ReservePlanner(self._budget.seconds, n_folds, len(y_search), folds.prep_seconds)

        def reserve(trials: list[Trial]) -> float:
            extra = 0.0 if planner is None else planner(trials, metric.signed_score)
            return refit_reserve(trials) + extra

        self._search = Search(
            families,
            folds,
            metric,
            self.task_,
            classes,
            budget=self._budget,
            reserve=reserve,
            on_event=self._on_event,
            n_jobs=self.n_jobs_,
            random_state=self.random_state,
            replay=self.replay,
        )
        trials = self._search.run()
        ok = self._search.ok_trials()
        if not ok:
            failures = "; ".join(f"{t.name}: {t.error or t.status}" for t in trials[:5])
            raise BudgetError(
                f"no model could be trained within {self.time_budget:g} s"
                + (f" ({failures})" if failures else "; give a larger time budget")
            )
        ranked = sorted(ok, key=lambda t: -metric.signed_score(t.score))
        self.revalidation_ = self._revalidate(ranked, folds, classes, lambda: refit_reserve(ok))
        if self.revalidation_ is not None:
            ranked = self.revalidation_.apply(ranked, y_search, metric, classes)
        self._emit("stage", "ensemble", "combining the best models")
        plan = self._choose_ensemble(ranked, y_search, classes) if self.ensemble else None
        self._emit("stage", "refit", "refitting the chosen model on all rows")
        self.best_estimator_, members = self._refit(cleaner, X_clean, y_values, ranked, plan, build_prep)
        self._refit_context = (cleaner, X_clean, y_values, ranked, build_prep)
        self.ensemble_ = plan
        self.trials_ = trials
        self.recipe_ = self._recipe(trials)
        if plan is not None:
            self.best_model_name_ = f"ensemble ({plan.kind}: {', '.join(plan.members)})"
            self.best_score_ = float(plan.score)
            self.oof_ = plan.details.pop("oof")
        else:
            self.best_model_name_ = ranked[0].name
            self.best_score_ = float(ranked[0].score)
            self.oof_ = ranked[0].oof
        self.best_family_ = "ensemble" if plan is not None else ranked[0].family
        self.oof_y_ = y_search
        self.search_index_ = search_index
        self.leaderboard_ = self._leaderboard(ranked, plan, members)
        self.input_schema_ = cleaner.schema_

    def _search_rows(self, y: np.ndarray, n_columns: int) -> np.ndarray:
        """Rows the search uses: all of them, or a sample when the table is too long or too wide."""
        n = len(y)
        by_cells = max(1000, self.max_search_cells // max(1, n_columns))
        limit = min(self.max_search_rows, by_cells)
        if n <= limit:
            return np.arange(n)
        why = f"{n:,} rows" if limit == self.max_search_rows else f"{n:,} rows x {n_columns:,} columns"
        rng = np.random.default_rng(self.random_state)
        self._emit("stage", "search", f"{why}: searching on a sample of {limit:,} rows, refitting on all")
        if self.task_ in ("binary", "multiclass"):
            from sklearn.model_selection import train_test_split

            keep, _ = train_test_split(
                np.arange(n), train_size=limit, stratify=y.astype(str), random_state=self.random_state
            )
            return np.sort(keep)
        return np.sort(rng.choice(n, limit, replace=False))

    @staticmethod
    def _reserve_seconds(trials: list[Trial], n_folds: int, row_ratio: float, signed=lambda score: score) -> float:
        """Time to keep for the final refit, plus a margin: the refits of the three leading families
        (the winner's and an ensemble's likely members), each at its slowest measured fit.

        Only leading families count: on 100,000 rows a 17 s MLP, fourth by score, used to reserve
        36 s and stop the tuning of the boosted models, whose refit then took 6.5 s. An ensemble
        member whose refit does not fit in the time left is dropped when the ensemble is chosen.
        """
        if not trials:
            return 0.5
        slowest: dict[str, float] = {}
        best: dict[str, float] = {}
        for t in trials:
            slowest[t.family] = max(slowest.get(t.family, 0.0), t.fit_time)
            best[t.family] = max(best.get(t.family, -np.inf), signed(t.score))
        leading = sorted(best, key=lambda family: -best[family])[:3]
        scale = _REFIT_FACTOR * row_ratio * (n_folds / max(1, n_folds - 1) if n_folds > 1 else 1.25)
        return 0.5 + scale * sum(slowest[family] for family in leading)

    def _revalidate(self, ranked: list[Trial], folds: FoldCache, classes: tuple, refit_reserve) -> Revalidation | None:
        """Score the finalists again on fresh folds (k-fold plans, when it fits in the time left).

        A replay re-validates exactly the trials its recipe marks, as many times as recorded.
        """
        if not applies_to(self.cv_plan_):
            return None
        repeats = None
        candidates = finalists(ranked)
        if self.replay is not None:
            marked = {(e.get("trial_id"), e["family"]): int(e.get("revalidated") or 0) for e in self.replay}
            candidates = [t for t in ranked if marked.get((t.trial_id, t.family), 0) > 0]
            repeats = max((marked[(t.trial_id, t.family)] for t in candidates), default=0)
            if len(candidates) < 2 or repeats < 1:
                return None
        if len(candidates) < 2:
            return None
        self._emit("stage", "revalidate", "re-validating the best models on fresh folds")
        result = revalidate(
            candidates,
            self.cv_plan_,
            folds,
            self.metric_object_,
            self.task_,
            classes,
            budget=self._budget,
            refit_reserve=refit_reserve,
            n_jobs=self.n_jobs_,
            random_state=self.random_state,
            repeats=repeats,
            on_progress=lambda message: self._emit("stage", "revalidate", message),
        )
        if result is None:
            self._emit("stage", "revalidate", "no time to re-validate: the search's scores decide")
        return result

    def _choose_ensemble(self, ranked: list[Trial], y: np.ndarray, classes: tuple):
        """Greedy selection, voting or stacking over out-of-fold predictions, on the rows every model
        scored (all rows for k-fold; the validation rows of a holdout or of time-ordered windows).
        After re-validation only the re-validated models take part: their predictions come from the
        same fresh folds."""
        metric = self.metric_object_
        if not ranked or ranked[0].oof is None:
            return None
        covered = ~np.isnan(np.asarray(ranked[0].oof, dtype=float).reshape(len(y), -1)[:, 0])
        pool = [t for t in ranked if t.revalidated] if ranked[0].revalidated else ranked
        candidates = []
        for t in finalists(pool):
            oof = np.asarray(t.oof, dtype=float).reshape(len(y), -1)
            if np.array_equal(~np.isnan(oof[:, 0]), covered) and not np.isnan(oof[covered]).any():
                candidates.append(t)
        recorded = self._recorded_ensemble()
        if recorded is not None:  # a replay rebuilds the recorded ensemble, whatever time is left
            return self._replayed_ensemble(recorded, ranked, y, classes, covered)
        if len(candidates) < 2 or covered.sum() < 10:
            return None
        by_name = {t.name: t for t in candidates}

        def rows(name: str) -> np.ndarray:
            return np.asarray(by_name[name].oof, dtype=float)[covered]

        y_covered = y[covered]
        best = ranked[0]
        standard_error = (best.std or 0.0) / np.sqrt(max(1, len(best.fold_scores)))
        if best.revalidated:
            # Fresh-fold predictions played no part in choosing the finalists: only the blend's own
            # weights are fitted to them, so any out-of-fold gain counts.
            standard_error = 0.0
        plan = choose_ensemble(
            [t.name for t in candidates],
            [rows(t.name) for t in candidates],
            y_covered,
            metric,
            self.task_,
            classes,
            random_state=self.random_state,
            noise=ENSEMBLE_NOISE_SHARE * standard_error,
            # A stacker fitted on backtest windows extrapolates its intercept and weights: not for forecasts.
            # It refits a meta-model on every fold: only with time to spare, and not over dozens of classes
            # (40 classes x 6 models is 240 inputs per class: seconds per fit, and too many weights to trust).
            allow_stacking=(
                self.task_ != "timeseries"
                and len(classes) <= MAX_STACKING_CLASSES
                and self._budget.remaining() > max(2.0, 0.1 * self.time_budget)
            ),
        )
        if plan is None:
            return None
        # Keep the members whose refit fits in the time left (best-weighted first).
        order = sorted(zip(plan.members, plan.weights), key=lambda mw: -mw[1])
        remaining = self._budget.remaining() - 0.5
        kept, cost = [], 0.0
        for name, weight in order:
            refit = by_name[name].fit_time * _REFIT_FACTOR
            if cost + refit > remaining and kept:
                continue
            kept.append((name, weight))
            cost += refit
        if len(kept) < 2:
            return None
        if len(kept) < len(order):
            from .ensemble import greedy_selection

            names = [n for n, _ in kept]
            weights, score = greedy_selection([rows(n) for n in names], y_covered, metric, classes)
            if not metric.better(score, by_name[names[0]].score):
                return None
            plan.members, plan.weights, plan.kind, plan.score = names, list(weights), "greedy", score
            plan.details.pop("stacker", None)
            plan.details.pop("stacking_oof", None)
        return self._with_oof(plan, [rows(n) for n in plan.members], ranked[0].oof, covered)

    @staticmethod
    def _with_oof(plan, member_rows: list[np.ndarray], template, covered: np.ndarray):
        """The plan with its out-of-fold predictions (`details["oof"]`) in the shape of a trial's."""
        if plan.kind == "stacking":
            # The stacker's own cross-validated predictions: honest, unlike refitted in-sample ones.
            blended = np.asarray(plan.details.pop("stacking_oof"), dtype=float)
        else:
            plan.details.pop("stacking_oof", None)
            blended = sum(w * r for w, r in zip(plan.weights, member_rows))
        full = np.full(np.asarray(template).shape, np.nan)
        full[covered] = blended
        plan.details["oof"] = full
        return plan

    def _recorded_ensemble(self) -> list[dict] | None:
        """A replay's recorded ensemble members in order (empty: none was kept); None for recipes older than this
        record, whose ensemble is chosen again."""
        if self.replay is None or not all("ensemble" in e for e in self.replay):
            return None
        members = [dict(e["ensemble"], trial_id=e.get("trial_id"), family=e["family"]) for e in self.replay if e["ensemble"]]
        return sorted(members, key=lambda m: m["position"])

    def _replayed_ensemble(self, recorded: list[dict], ranked: list[Trial], y: np.ndarray, classes: tuple, covered):
        from .ensemble import EnsemblePlan, stacking

        if not recorded:
            return None
        by_id = {(t.trial_id, t.family): t for t in ranked}
        members = [by_id.get((m["trial_id"], m["family"])) for m in recorded]
        if any(t is None for t in members):
            raise AutoMLError("the recipe's ensemble names a model that the replay did not reproduce")
        metric = self.metric_object_
        member_rows = [np.asarray(t.oof, dtype=float)[covered] for t in members]
        kind, weights = recorded[0]["kind"], [float(m["weight"]) for m in recorded]
        if kind == "stacking":
            stacker, score, output = stacking(member_rows, y[covered], metric, self.task_, classes,
                                              random_state=self.random_state)
            details = {"stacker": stacker, "stacking_oof": output}
        else:
            score, details = metric(y[covered], sum(w * r for w, r in zip(weights, member_rows)), classes), {}
        plan = EnsemblePlan(kind, [t.name for t in members], weights, float(score), details)
        return self._with_oof(plan, member_rows, ranked[0].oof, covered)

    def _refit(self, cleaner, X_clean, y, ranked, plan, build_prep):
        by_name = {t.name: t for t in ranked}
        names = plan.members if plan is not None else [ranked[0].name]
        members = {}
        for name in names:
            trial = by_name[name]
            family = FAMILIES[trial.family]
            prep, categorical = build_prep(family.style, X_clean)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Xt = np.asarray(prep.fit_transform(X_clean, y), dtype=np.float64)
            model = FamilyModel(
                family=trial.family,
                params=trial.final_params(),
                task=self.task_,
                categorical_features=categorical,
                n_jobs=self.n_jobs_,
                random_state=self.random_state,
            ).fit(Xt, y)
            members[name] = {
                "pipeline": Pipeline([("prep", prep), ("model", model)]),
                "refit_seconds": time.perf_counter() - start,
            }
        if plan is None:
            member = members[names[0]]["pipeline"]
            pipeline = Pipeline([("clean", cleaner), ("prep", member.named_steps["prep"]), ("model", member.named_steps["model"])])
        else:
            stacker = plan.details.pop("stacker", None) if plan.kind == "stacking" else None
            ensemble = WeightedEnsemble(
                [(n, members[n]["pipeline"]) for n in names], weights=plan.weights, task=self.task_, stacker=stacker
            ).fit(X_clean, y, fitted=True)
            pipeline = Pipeline([("clean", cleaner), ("model", ensemble)])
        return pipeline, members

    def _leaderboard(self, ranked: list[Trial], plan, members: dict) -> pd.DataFrame:
        rows = []
        for t in ranked:
            rows.append(
                {
                    "model": t.name,
                    "family": t.family,
                    "score": t.score,
                    "std": t.std,
                    "search_score": t.search_score,
                    "folds": "fresh" if t.revalidated else "search",  # which folds its fold scores are on
                    "fit_time": round(t.fit_time, 4),
                    "predict_ms_per_row": round(1000 * t.predict_time_per_row, 5),
                    "size_kb": None if t.size_bytes is None else round(t.size_bytes / 1024, 1),
                    "source": t.source,
                    "params": t.to_dict()["params"],
                    "fold_scores": t.fold_scores,
                    "in_ensemble": plan is not None and t.name in plan.members,
                }
            )
        if plan is not None:
            member_rows = [r for r in rows if r["in_ensemble"]]
            fold_scores = self._fold_scores(self.oof_)
            rows.insert(
                0,
                {
                    "model": f"ensemble_{plan.kind}",
                    "family": "ensemble",
                    "score": plan.score,
                    "std": float(np.std(fold_scores)) if fold_scores else None,
                    "search_score": None,
                    "folds": "fresh" if self.revalidation_ is not None else "search",
                    "fit_time": round(sum(r["fit_time"] for r in member_rows), 4),
                    "predict_ms_per_row": round(sum(r["predict_ms_per_row"] for r in member_rows), 5),
                    "size_kb": round(sum(r["size_kb"] or 0 for r in member_rows), 1),
                    "source": "ensemble",
                    "params": {"members": plan.members, "weights": [round(w, 4) for w in plan.weights]},
                    "fold_scores": fold_scores,
                    "in_ensemble": False,
                },
            )
        frame = pd.DataFrame(rows)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        frame["chosen"] = frame["rank"] == 1
        return frame

    def _resolved_cv(self):
        """The validation plan as a `cv` setting, so a replay uses the same folds whatever its budget."""
        plan = getattr(self, "cv_plan_", None)
        if plan is None or plan.kind == "time_series":
            return "auto"
        return "holdout" if plan.kind == "holdout" else plan.n_splits

    def _fold_scores(self, oof) -> list[float]:
        """Per-fold scores of out-of-fold predictions, on the search's own folds (for significance tests)."""
        metric = self.metric_object_
        classes = tuple(self.classes_) if self.classes_ is not None else ()
        y = self._search.folds.y
        if getattr(self, "revalidation_", None) is not None:
            return self.revalidation_.fold_scores(oof, y, metric, classes)
        return [float(metric(y[val], np.asarray(oof)[val], classes)) for _, val in self._splits]

    def _recipe(self, trials: list[Trial]) -> dict:
        plan = getattr(self, "ensemble_", None)
        members = {}
        if plan is not None:  # a replay rebuilds this ensemble instead of choosing again (which depends on time)
            members = {name: {"kind": plan.kind, "weight": float(w), "position": i}
                       for i, (name, w) in enumerate(zip(plan.members, plan.weights))}
        return {
            "settings": {
                "task": self.task,
                "time_budget": self.time_budget,
                "metric": self.metric,
                "cv": self.cv,
                "include": self.include,
                "exclude": self.exclude,
                "ensemble": self.ensemble,
                "time_column": self.time_column,
                "random_state": self.random_state,
                "max_search_rows": self.max_search_rows,
                "max_search_cells": self.max_search_cells,
                "ignore_columns": self.ignore_columns,
                "cv_resolved": self._resolved_cv(),
            },
            # The trials that produced a score, in order, with their ids: replaying them reproduces the leaderboard.
            "trials": [
                {"trial_id": t.trial_id, "family": t.family, "params": t.to_dict()["params"],
                 "revalidated": t.revalidated, "ensemble": members.get(t.name)}
                for t in trials
                if t.status == "ok"
            ],
        }

    def refit_model(self, name: str) -> Pipeline:
        """Refit one leaderboard model (by its name, e.g. "lightgbm_4") on all rows, as a full pipeline.

        Lets a person deploy a faster or smaller model than the winner, and lets benchmarks check
        how well the search picked (the winner's test score against the others').
        """
        check_is_fitted(self, "best_estimator_")
        context = getattr(self, "_refit_context", None)
        if context is None:
            raise AutoMLError("refit_model needs a supervised model fitted in this process")
        cleaner, X_clean, y, ranked, build_prep = context
        names = [t.name for t in ranked]
        if name not in names:
            raise AutoMLError(f"no model named {name!r} in the leaderboard; choose one of {', '.join(names[:10])}")
        pipeline, _ = self._refit(cleaner, X_clean, y, [t for t in ranked if t.name == name], None, build_prep)
        return pipeline

    # ------------------------------------------------------------------ clustering
    def _fit_clustering(self, X: pd.DataFrame) -> None:
        cleaner = TableCleaner(specs=self.profile_.specs, exclude=self._excluded_columns()).fit(X)
        X_clean = cleaner.transform(X)
        prep = build_preprocessor(cleaner.kinds_, X_clean, "linear", task="clustering", random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Xt = np.asarray(prep.fit_transform(X_clean), dtype=np.float64)
        self._emit("stage", "search", "trying k-means, Gaussian mixtures, Ward and HDBSCAN")

        def on_trial(record: dict) -> None:
            self._emit("trial_finished", "search", f"{record['family']}: silhouette {record.get('score')}", record)

        records = search_clusterings(
            Xt, deadline=lambda: self._budget.remaining() - 1.0, random_state=self.random_state, on_trial=on_trial
        )
        ok = [r for r in records if r["status"] == "ok"]
        if not ok:
            raise BudgetError(f"no clustering could be fitted within {self.time_budget:g} s")
        best = ok[0]
        model = ClusterModel(random_state=self.random_state, **best["params"]).fit(Xt)
        self.best_estimator_ = Pipeline([("clean", cleaner), ("prep", prep), ("model", model)])
        self.labels_ = model.labels_
        self.best_model_name_ = f"{best['family']}_{best['trial_id']}"
        self.best_family_ = best["family"]
        self.best_score_ = float(best["score"])
        self.classes_ = None
        self.cv_plan_ = None
        self.revalidation_ = None
        self.ensemble_ = None
        self.skipped_families_ = {}
        self.oof_ = None
        self.oof_y_ = None
        self.trials_ = records
        self.recipe_ = self._recipe([])
        self.input_schema_ = cleaner.schema_
        self.unlabeled_rows_dropped_ = 0
        rows = [
            {
                "model": f"{r['family']}_{r['trial_id']}",
                "family": r["family"],
                "score": r.get("score"),
                "std": None,
                "fit_time": round(r["fit_time"], 4),
                "n_clusters": r.get("n_clusters"),
                "params": r["params"],
            }
            for r in ok
        ]
        frame = pd.DataFrame(rows)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        frame["chosen"] = frame["rank"] == 1
        self.leaderboard_ = frame

    # ------------------------------------------------------------------ predict
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        if self.classes_ is None:
            raise AttributeError(f"predict_proba needs a classification task, this one is {self.task_}")
        return self.best_estimator_.predict_proba(X)

    def score(self, X: pd.DataFrame, y) -> float:
        """The chosen metric on new labelled data (higher or lower is better as the metric says)."""
        check_is_fitted(self, "best_estimator_")
        metric = get_metric(self.task_, self.metric_)
        y = np.asarray(y)
        classes = tuple(self.classes_) if self.classes_ is not None else ()
        output = self.predict_proba(X) if self.classes_ is not None else self.predict(X)
        return metric(y, output, classes)

    @property
    def problem(self) -> ProblemSpec:
        check_is_fitted(self, "problem_")
        return self.problem_

    def summary(self) -> dict:
        """A JSON-able summary: task, metric, CV score, chosen model and the leaderboard."""
        check_is_fitted(self, "best_estimator_")
        board = self.leaderboard_
        return {
            "task": self.task_,
            "metric": self.metric_,
            "cv_score": self.best_score_,
            "best": self.best_model_name_,
            "model": self.best_model_name_,
            "problem": self.problem_.to_dict(),
            "cv_plan": None if self.cv_plan_ is None else self.cv_plan_.to_dict(),
            "revalidation": None if self.revalidation_ is None else self.revalidation_.to_dict(),
            "ensemble": None if self.ensemble_ is None else self.ensemble_.to_dict(),
            "leaderboard": [
                {k: _plain(v) for k, v in row.items() if k in ("model", "family", "score", "std", "search_score", "fit_time",
                                                             "predict_ms_per_row", "size_kb", "params", "n_clusters")}
                for row in board.to_dict(orient="records")
            ],
            "skipped_families": self.skipped_families_,
            "fit_seconds": round(self.fit_seconds_, 2),
        }


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


__all__ = ["AutoML", "default_n_jobs", "pickled_size"]
