"""Model families, declared once each as data.

A `ModelFamily` says which tasks it serves, which preprocessing style it wants, how to build
the estimator from hyperparameters, its Optuna search space, a small portfolio of known-good
configurations (tried first, cheapest first) and a cost hint relative to LightGBM. `FamilyModel`
is the one estimator class the search fits: it builds the family's estimator in `fit`, handles
early stopping, label encoding and categorical columns, so every pipeline ends the same way.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})
SUPERVISED = CLASSIFICATION | REGRESSION
TIMESERIES = frozenset({"timeseries"})
MAX_BOOSTING_ROUNDS = 3000
EARLY_STOPPING_ROUNDS = 50


@dataclass(frozen=True)
class ModelFamily:
    """One kind of model: how to build it, where to search, and what to try first."""

    name: str
    label: str
    tasks: frozenset
    style: str
    build: Callable[[dict, str, dict], object]
    space: Callable[[object, str, int], dict]
    portfolio: tuple[dict, ...]
    cost: float
    max_rows: int | None = None
    early_stopping: bool = False
    description: str = ""
    row_exponent: float = 1.0


# --------------------------------------------------------------------------- builders
def _lightgbm(params: dict, task: str, ctx: dict):
    import lightgbm as lgb

    cls = lgb.LGBMClassifier if task in CLASSIFICATION else lgb.LGBMRegressor
    p = {"n_estimators": MAX_BOOSTING_ROUNDS, "verbose": -1, "subsample_freq": 1, **params}
    return cls(random_state=ctx["random_state"], n_jobs=ctx["n_jobs"], **p)


def _xgboost(params: dict, task: str, ctx: dict):
    import xgboost as xgb

    cls = xgb.XGBClassifier if task in CLASSIFICATION else xgb.XGBRegressor
    p = {"n_estimators": MAX_BOOSTING_ROUNDS, "tree_method": "hist", "max_bin": 256, **params}
    return cls(random_state=ctx["random_state"], n_jobs=ctx["n_jobs"], verbosity=0, **p)


def _hist_gb(params: dict, task: str, ctx: dict):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task in CLASSIFICATION else HistGradientBoostingRegressor
    cats = list(ctx.get("categorical_features") or []) or None
    p = {"max_iter": 1000, "early_stopping": True, "n_iter_no_change": 20, "validation_fraction": 0.1, **params}
    return cls(random_state=ctx["random_state"], categorical_features=cats, **p)


def _random_forest(params: dict, task: str, ctx: dict):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if task in CLASSIFICATION else RandomForestRegressor
    return cls(random_state=ctx["random_state"], n_jobs=ctx["n_jobs"], **params)


def _extra_trees(params: dict, task: str, ctx: dict):
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    cls = ExtraTreesClassifier if task in CLASSIFICATION else ExtraTreesRegressor
    return cls(random_state=ctx["random_state"], n_jobs=ctx["n_jobs"], **params)


def _linear(params: dict, task: str, ctx: dict):
    from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge

    params = dict(params)
    penalty = params.pop("penalty", "l2")
    if task in CLASSIFICATION:
        C = params.pop("C", 1.0)
        if penalty == "l1":
            return LogisticRegression(C=C, l1_ratio=1.0, solver="saga", max_iter=2000, random_state=ctx["random_state"])
        return LogisticRegression(C=C, max_iter=2000, random_state=ctx["random_state"])
    alpha = params.pop("alpha", 1.0)
    if penalty == "l1":
        return Lasso(alpha=alpha, max_iter=5000, random_state=ctx["random_state"])
    if penalty == "elasticnet":
        return ElasticNet(alpha=alpha, l1_ratio=params.pop("l1_ratio", 0.5), max_iter=5000, random_state=ctx["random_state"])
    return Ridge(alpha=alpha)


def _scaled_target(regressor):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def _svm(params: dict, task: str, ctx: dict):
    from sklearn.svm import SVC, SVR

    if task in CLASSIFICATION:
        return SVC(probability=True, random_state=ctx["random_state"], cache_size=500, **params)
    return _scaled_target(SVR(cache_size=500, **params))


def _knn(params: dict, task: str, ctx: dict):
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsClassifier if task in CLASSIFICATION else KNeighborsRegressor
    return cls(n_jobs=ctx["n_jobs"], **params)


def _mlp(params: dict, task: str, ctx: dict):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    params = dict(params)
    layers = tuple(int(x) for x in str(params.pop("layers", "64")).split("-"))
    common = {
        "hidden_layer_sizes": layers,
        "early_stopping": True,
        "n_iter_no_change": 15,
        "max_iter": 400,
        "random_state": ctx["random_state"],
        **params,
    }
    if task in CLASSIFICATION:
        return MLPClassifier(**common)
    return _scaled_target(MLPRegressor(**common))


def _baseline(params: dict, task: str, ctx: dict):
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task in CLASSIFICATION:
        return DummyClassifier(strategy="prior")
    return DummyRegressor(strategy=params.get("strategy", "mean"))


# --------------------------------------------------------------------------- search spaces
def _space_lightgbm(trial, task: str, n_rows: int) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 128 if n_rows > 2000 else 48, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "min_split_gain": trial.suggest_float("min_split_gain", 0.0, 0.5),
    }


def _space_xgboost(trial, task: str, n_rows: int) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-2, 20.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 5.0, log=True),
    }


def _space_hist_gb(trial, task: str, n_rows: int) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 6, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.4, 1.0),
    }


def _space_forest(trial, task: str, n_rows: int) -> dict:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 500, step=50),
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
    }


def _space_linear(trial, task: str, n_rows: int) -> dict:
    if task in CLASSIFICATION:
        return {
            "C": trial.suggest_float("C", 1e-3, 100.0, log=True),
            "penalty": trial.suggest_categorical("penalty", ["l2", "l1"]),
        }
    return {
        "alpha": trial.suggest_float("alpha", 1e-4, 100.0, log=True),
        "penalty": trial.suggest_categorical("penalty", ["l2", "l1", "elasticnet"]),
    }


def _space_svm(trial, task: str, n_rows: int) -> dict:
    return {
        "C": trial.suggest_float("C", 0.01, 100.0, log=True),
        "gamma": trial.suggest_categorical("gamma", ["scale", 0.01, 0.1, 1.0]),
    }


def _space_knn(trial, task: str, n_rows: int) -> dict:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 2, 60, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
        "p": trial.suggest_categorical("p", [1, 2]),
    }


def _space_mlp(trial, task: str, n_rows: int) -> dict:
    return {
        "layers": trial.suggest_categorical("layers", ["32", "64", "128", "64-32", "128-64"]),
        "alpha": trial.suggest_float("alpha", 1e-5, 1e-1, log=True),
        "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
    }


def _no_space(trial, task: str, n_rows: int) -> dict:
    return {}


FAMILIES: dict[str, ModelFamily] = {
    f.name: f
    for f in (
        ModelFamily(
            "baseline", "Naive baseline", SUPERVISED | TIMESERIES, "linear", _baseline, _no_space, ({},), 0.01,
            description="predicts the class shares or the mean: the score any model must beat",
        ),
        ModelFamily(
            "linear", "Linear / logistic", SUPERVISED | TIMESERIES, "linear", _linear, _space_linear,
            ({"penalty": "l2", "C": 1.0, "alpha": 1.0}, {"penalty": "l2", "C": 0.1, "alpha": 10.0},
             {"penalty": "l1", "C": 1.0, "alpha": 0.01}),
            0.3,
            description="ridge / lasso / elastic net for numbers, regularised logistic regression for classes",
        ),
        ModelFamily(
            "lightgbm", "LightGBM", SUPERVISED | TIMESERIES, "tree", _lightgbm, _space_lightgbm,
            (
                # LightGBM's own defaults (with early stopping): cheap, and what a competent person tries first.
                {"learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20},
                {"learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20, "subsample": 0.9,
                 "colsample_bytree": 0.8},
                {"learning_rate": 0.03, "num_leaves": 12, "min_child_samples": 30, "subsample": 0.8,
                 "colsample_bytree": 0.6, "reg_lambda": 1.0},
                {"learning_rate": 0.05, "num_leaves": 96, "min_child_samples": 10, "subsample": 0.8,
                 "colsample_bytree": 0.7, "reg_lambda": 3.0},
                {"learning_rate": 0.04, "num_leaves": 24, "min_child_samples": 5, "subsample": 0.7,
                 "colsample_bytree": 0.5, "extra_trees": True},
            ),
            1.0, early_stopping=True,
            description="gradient-boosted trees, leaf-wise, with early stopping",
        ),
        ModelFamily(
            "hist_gb", "Histogram gradient boosting", SUPERVISED, "tree", _hist_gb, _space_hist_gb,
            ({"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 0.0},
             {"learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40, "l2_regularization": 1.0,
              "max_features": 0.7}),
            1.2,
            description="scikit-learn's gradient boosting on binned features, with native categories",
        ),
        ModelFamily(
            "xgboost", "XGBoost", SUPERVISED, "tree", _xgboost, _space_xgboost,
            ({"learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0, "subsample": 0.8,
              "colsample_bytree": 0.8},
             {"learning_rate": 0.03, "max_depth": 4, "min_child_weight": 3.0, "subsample": 0.8,
              "colsample_bytree": 0.6, "reg_lambda": 5.0}),
            1.5, early_stopping=True,
            description="depth-wise gradient-boosted trees with early stopping",
        ),
        ModelFamily(
            "extra_trees", "Extra trees", SUPERVISED, "tree", _extra_trees, _space_forest,
            ({"n_estimators": 300, "max_features": 0.6, "min_samples_leaf": 1},
             {"n_estimators": 300, "max_features": 0.3, "min_samples_leaf": 3}),
            8.0, max_rows=200_000,
            description="randomised trees averaged: robust, little tuning",
        ),
        ModelFamily(
            "random_forest", "Random forest", SUPERVISED, "tree", _random_forest, _space_forest,
            ({"n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 1},
             {"n_estimators": 300, "max_features": 0.25, "min_samples_leaf": 3}),
            10.0, max_rows=200_000,
            description="bootstrap-aggregated decision trees",
        ),
        ModelFamily(
            "knn", "k-nearest neighbours", SUPERVISED, "linear", _knn, _space_knn,
            ({"n_neighbors": 15, "weights": "distance"}, {"n_neighbors": 40, "weights": "uniform"}),
            0.5, max_rows=50_000,
            description="predicts from the most similar training rows",
        ),
        ModelFamily(
            "mlp", "Neural network (MLP)", SUPERVISED, "linear", _mlp, _space_mlp,
            ({"layers": "128-64", "alpha": 1e-3, "learning_rate_init": 1e-3, "batch_size": 128},
             {"layers": "64", "alpha": 1e-2, "learning_rate_init": 3e-3, "batch_size": 64}),
            4.0, max_rows=300_000,
            description="a small fully connected neural network with early stopping",
        ),
        ModelFamily(
            "svm", "Support vector machine", SUPERVISED, "linear", _svm, _space_svm,
            ({"C": 1.0, "gamma": "scale"}, {"C": 10.0, "gamma": "scale"}),
            5.0, max_rows=8_000, row_exponent=2.0,
            description="RBF-kernel SVM; cost grows with the square of the rows",
        ),
    )
}


def _register_forecasting() -> None:
    from .forecasting import build_last_value, build_naive, build_trend, space_none, space_trend

    FAMILIES["seasonal_naive"] = ModelFamily(
        "seasonal_naive", "Seasonal naive", TIMESERIES, "time", build_naive, space_none, ({},), 0.01,
        description="repeats the last season (a day, a week or a year, by the data's step): the forecast to beat",
    )
    FAMILIES["last_value"] = ModelFamily(
        "last_value", "Last value", TIMESERIES, "time", build_last_value, space_none, ({},), 0.01,
        description="repeats the last observed value: the best forecast of a random walk",
    )
    FAMILIES["trend"] = ModelFamily(
        "trend", "Trend + seasonality", TIMESERIES, "time", build_trend, space_trend,
        (
            {"yearly_terms": 3, "log_target": False},
            {"yearly_terms": 4, "log_target": True},
            {"yearly_terms": 4, "log_target": False, "half_life": 0.15},
            {"yearly_terms": 4, "log_target": True, "half_life": 0.15},
            {"yearly_terms": 4, "log_target": False, "half_life": 0.07},
            {"yearly_terms": 4, "log_target": True, "half_life": 0.07},
            {"yearly_terms": 3, "weekly_terms": 3, "log_target": True, "half_life": 0.15, "residual_trees": 200},
            {"yearly_terms": 0, "weekly_terms": 3, "half_life": 0.15},
        ),
        0.05,
        description="linear trend (global or recent) with Fourier seasonality, optionally with boosted residuals",
    )


_register_forecasting()


def families_for(
    task: str, n_rows: int, *, include: list[str] | None = None, exclude: list[str] | None = None
) -> tuple[list[ModelFamily], dict[str, str]]:
    """The families worth trying for this task and data size, and why each other one was skipped."""
    chosen, skipped = [], {}
    unknown = [n for n in (include or []) + (exclude or []) if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown model families: {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
    for family in FAMILIES.values():
        if task not in family.tasks:
            skipped[family.name] = f"does not handle {task}"
        elif include and family.name not in include and family.name != "baseline":
            skipped[family.name] = "not in the families you allowed"
        elif exclude and family.name in exclude:
            skipped[family.name] = "excluded by you"
        elif family.max_rows and n_rows > family.max_rows:
            skipped[family.name] = f"too slow for {n_rows:,} rows (limit {family.max_rows:,})"
        else:
            chosen.append(family)
    return chosen, skipped


# --------------------------------------------------------------------------- the estimator
class TrialTimeout(Exception):  # noqa: N818 - raised by a training callback, read as "the trial timed out"
    """A boosted model's training passed its deadline and was cut off."""


def _lightgbm_deadline(deadline: float):
    def callback(env) -> None:
        if time.monotonic() > deadline:
            raise TrialTimeout(f"stopped after {env.iteration} rounds: out of time")

    callback.order = 5
    return callback


def _xgboost_deadline(deadline: float):
    import xgboost as xgb

    class Deadline(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            if time.monotonic() > deadline:
                raise TrialTimeout(f"stopped after {epoch} rounds: out of time")
            return False

    return Deadline()



class FamilyModel(BaseEstimator):
    """The estimator at the end of every pipeline: one family with its hyperparameters.

    Building happens in `fit` (scikit-learn convention), so `clone` and `get_params` work.
    Boosted families stop early when validation data is given and remember the round count;
    classifiers that need integer labels get them here and answer with the original labels.
    """

    def __init__(
        self,
        family: str = "lightgbm",
        params: dict | None = None,
        task: str = "regression",
        categorical_features: tuple = (),
        n_jobs: int = 1,
        random_state: int | None = 0,
    ):
        self.family = family
        self.params = params
        self.task = task
        self.categorical_features = categorical_features
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.task in CLASSIFICATION else "regressor"
        return tags

    @property
    def _is_classifier(self) -> bool:
        return self.task in CLASSIFICATION

    def fit(self, X, y, X_val=None, y_val=None, deadline: float | None = None):
        """Fit on (X, y); boosted families stop early on (X_val, y_val) and stop at `deadline`
        (a `time.monotonic()` value) by raising `TrialTimeout`."""
        family = FAMILIES[self.family]
        ctx = {
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
            "categorical_features": self.categorical_features,
        }
        params = dict(self.params or {})
        estimator = family.build(params, self.task, ctx)
        y = np.asarray(y)
        fit_kwargs: dict = {}
        if self._is_classifier:
            self.classes_ = np.unique(y)
            codes = np.searchsorted(self.classes_, y)
            target = codes if self.family == "xgboost" else y
        else:
            target = y.astype(float)
        if self.family == "lightgbm" and self.categorical_features:
            fit_kwargs["categorical_feature"] = list(self.categorical_features)
        use_val = family.early_stopping and X_val is not None and "n_estimators" not in (self.params or {})
        if use_val:
            val_target = np.asarray(y_val)
            if self._is_classifier and self.family == "xgboost":
                val_target = np.searchsorted(self.classes_, val_target)
            elif not self._is_classifier:
                val_target = val_target.astype(float)
            if self.family == "lightgbm":
                import lightgbm as lgb

                fit_kwargs["eval_set"] = [(X_val, val_target)]
                fit_kwargs["callbacks"] = [lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
            else:
                estimator.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
                fit_kwargs["eval_set"] = [(X_val, val_target)]
                fit_kwargs["verbose"] = False
        elif family.early_stopping and "n_estimators" not in (self.params or {}):
            # No validation data and no learned round count: a safe fixed number of rounds.
            estimator.set_params(n_estimators=_default_rounds(params))
        if deadline is not None and self.family == "lightgbm":
            fit_kwargs["callbacks"] = fit_kwargs.get("callbacks", []) + [_lightgbm_deadline(deadline)]
        if deadline is not None and self.family == "xgboost":
            estimator.set_params(callbacks=[_xgboost_deadline(deadline)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if deadline is not None and self.family in ("random_forest", "extra_trees"):
                _fit_forest_in_chunks(estimator, X, target, deadline)
            elif deadline is not None and self.family == "linear" and "warm_start" in estimator.get_params():
                _fit_solver_in_chunks(estimator, X, target, deadline)
            elif self.family == "hist_gb":
                # HistGradientBoosting takes every core through OpenMP; keep it to this model's share.
                from threadpoolctl import threadpool_limits

                with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
                    estimator.fit(X, target, **fit_kwargs)
            else:
                estimator.fit(X, target, **fit_kwargs)
        if self.family == "xgboost":
            estimator.set_params(callbacks=None)
        self.best_iteration_ = _best_iteration(estimator) if use_val else None
        # Prices, counts and amounts are never negative: neither are their predictions (a linear
        # model or a network can otherwise extrapolate below zero on a heavy-tailed target).
        self.target_floor_ = 0.0 if not self._is_classifier and np.nanmin(target) >= 0 else None
        self.estimator_ = estimator
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        if self._is_classifier:
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        predicted = np.asarray(self.estimator_.predict(X), dtype=float)
        floor = getattr(self, "target_floor_", None)
        return predicted if floor is None else np.maximum(predicted, floor)

    @available_if(lambda self: self.task in CLASSIFICATION)
    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=float)
        if proba.ndim == 1:
            proba = np.column_stack([1 - proba, proba])
        return proba

    def score(self, X, y):
        from sklearn.metrics import accuracy_score, r2_score

        if self._is_classifier:
            return accuracy_score(y, self.predict(X))
        return r2_score(y, self.predict(X))


def _fit_forest_in_chunks(forest, X, y, deadline: float, chunk: int = 50) -> None:
    """Grow a forest a few dozen trees at a time so a trial can stop at its deadline."""
    total = forest.n_estimators
    grown = min(chunk, total)
    forest.set_params(n_estimators=grown, warm_start=True)
    forest.fit(X, y)
    while grown < total:
        if time.monotonic() > deadline:
            raise TrialTimeout(f"stopped after {grown} trees: out of time")
        grown = min(total, grown + chunk)
        forest.set_params(n_estimators=grown)
        forest.fit(X, y)
    forest.set_params(warm_start=False)


def _fit_solver_in_chunks(model, X, y, deadline: float, chunk: int = 50) -> None:
    """Run an iterative solver (logistic regression, lasso) a few dozen iterations at a time from
    its last solution, so a slow one (saga with 40 classes) stops at its deadline; a convex
    problem reaches the same optimum."""
    total = int(model.max_iter)
    model.set_params(max_iter=min(chunk, total), warm_start=True)
    done = 0
    while True:
        model.fit(X, y)
        ran = int(np.max(model.n_iter_))
        done += ran
        if ran < model.max_iter or done >= total:
            break
        if time.monotonic() > deadline:
            raise TrialTimeout(f"stopped after {done} solver iterations: out of time")
    model.set_params(max_iter=total, warm_start=False)


def _default_rounds(params: dict) -> int:
    lr = float(params.get("learning_rate", 0.1))
    return int(min(2000, max(100, round(10 / lr))))


def _best_iteration(estimator) -> int | None:
    for attr in ("best_iteration_", "best_iteration"):
        value = getattr(estimator, attr, None)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return int(value) + (1 if attr == "best_iteration" else 0)
    return None

