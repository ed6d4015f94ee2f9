"""Explanations in the file's own columns: importance, Shapley contributions, local surrogates.

Models see one-hot pieces, SVD components and missing-value flags; people think in the columns of
their file. Everything here reports per ORIGINAL column (the input columns of the pipeline's
`TableCleaner`), summing the pieces back, and works on whatever is deployed, ensembles included.

- `feature_importance`: the model's own importance (gain, impurity, |coef|) next to permutation
  importance of the whole pipeline over raw columns, the one measure every model has.
- `Explainer` and `shap_summary`: Shapley contributions. Exact fast paths where the model allows
  (TreeSHAP for boosted trees and forests, coefficients for linear models); otherwise Shapley values
  of the whole pipeline over the original columns against a background sample (exact for a few
  columns, antithetic permutation sampling above that), so ensembles and forecasts are explained too.
- `local_surrogate`: a LIME-style second opinion, a weighted ridge on kept/replaced indicators.

Output space, one convention for every path so explanations of different models compare:
regression and forecasts are explained in prediction units; classification in probabilities.
Tree and linear models add up in margin (log-odds) space; their margin contributions are carried to
probability space by the average slope of the link between the base margin and the row's margin
(for binary: contribution * (p - p0) / (m - m0); for softmax the path-averaged Jacobian). That keeps
signs and (binary) ranks and makes base value + contributions equal the predicted probability.
Binary explains the second entry of `classes_` (scikit-learn's positive class) unless told otherwise;
multiclass explains each row's predicted class and keeps every class in `class_contributions`.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .preprocess import TableCleaner, original_column_of

TASKS = ("binary", "multiclass", "regression", "timeseries", "clustering")
CLASSIFICATION = ("binary", "multiclass")
BACKGROUND_ROWS = 50
MAX_EVALS = 500  # model calls (coalitions) per explained row on the model-agnostic path
AGNOSTIC_SUMMARY_ROWS = 100  # a model-agnostic summary explains at most this many rows...
AGNOSTIC_SUMMARY_BACKGROUND = 25  # ...against this many background rows (global averages tolerate the noise)
_BATCH_ROWS = 200_000  # model rows per prediction call on the model-agnostic path
_LIME_WIDTH = 0.75  # LIME's default kernel width, as a share of sqrt(number of columns)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class Explanation:
    """Why the model gave each row its output: `base_value + contributions.sum(axis=1) == output`.

    `contributions` has one column per original input column and is indexed like the explained
    rows. `space` is "probability" (classification) or "prediction" (regression, forecasts).
    `explained_class` names, per row, the class whose probability is explained (None for
    regression); `class_contributions` and `class_base_values` hold every class.
    """

    contributions: pd.DataFrame
    base_value: pd.Series
    output: pd.Series
    prediction: pd.Series
    explained_class: pd.Series | None
    feature_values: pd.DataFrame
    method: str
    space: str
    class_contributions: Mapping[object, pd.DataFrame]
    class_base_values: Mapping[object, float]


@dataclass(frozen=True, eq=False)
class ShapSummary:
    """Global view of Shapley contributions: mean |contribution| per column and a long table per cell.

    `values` has one row per (row, column): `shap_value`, the cleaned `feature_value`, and
    `feature_scaled` (the value's rank within its column in [0, 1], NaN for labels and text) to colour
    a beeswarm chart.
    """

    importance: pd.DataFrame
    values: pd.DataFrame
    method: str
    space: str
    n_rows: int

    def to_dict(self) -> dict:
        """Plain columns (lists) for a JSON document: missing numbers become None."""

        def columns(frame: pd.DataFrame) -> dict[str, list]:
            out = {}
            for name in frame.columns:
                series = frame[name]
                if series.dtype.kind == "f":
                    out[name] = [None if math.isnan(v) else v for v in series.tolist()]
                else:
                    out[name] = [_plain_value(v) for v in series.tolist()]
            return out

        return {
            "importance": columns(self.importance),
            "values": columns(self.values),
            "method": self.method,
            "space": self.space,
            "n_rows": self.n_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ShapSummary:
        values = pd.DataFrame(data["values"])
        for name in ("shap_value", "feature_scaled"):
            values[name] = pd.to_numeric(values[name], errors="coerce").astype(float)
        values["feature_value"] = values["feature_value"].astype(object)
        return cls(
            importance=pd.DataFrame(data["importance"]),
            values=values,
            method=str(data["method"]),
            space=str(data["space"]),
            n_rows=int(data["n_rows"]),
        )


def _plain_value(value):
    """A JSON-safe scalar: numpy numbers as Python numbers, missing as None, anything else as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, np.generic):
        return _plain_value(value.item())
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)


# --------------------------------------------------------------------------- pipeline anatomy
@dataclass(frozen=True)
class _Anatomy:
    cleaner: TableCleaner
    rest: Pipeline  # every step after the cleaner: takes cleaned frames
    prep: object | None  # the preprocessor of a single-model pipeline (None for ensembles)
    model: object
    columns: tuple[str, ...]


def _anatomy(pipeline) -> _Anatomy:
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        raise TypeError(
            "expected a fitted scikit-learn Pipeline that starts with a TableCleaner (AutoML.best_estimator_), "
            f"got {type(pipeline).__name__}"
        )
    cleaner, model = pipeline.steps[0][1], pipeline.steps[-1][1]
    if not isinstance(cleaner, TableCleaner):
        raise TypeError(f"the pipeline's first step must be a TableCleaner, got {type(cleaner).__name__}")
    try:
        check_is_fitted(cleaner, "specs_")
        check_is_fitted(model)
    except NotFittedError as exc:
        raise NotFittedError(
            f"the pipeline is not fitted ({type(model).__name__} has learned nothing yet); fit it before explaining it"
        ) from exc
    prep = pipeline.steps[1][1] if len(pipeline.steps) == 3 else None
    return _Anatomy(cleaner, pipeline[1:], prep, model, tuple(cleaner.input_columns_))


def _check_task(task: str, pipeline: Pipeline, *, allow_clustering: bool = False) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if task == "clustering" and not allow_clustering:
        raise ValueError(
            "clustering assigns groups rather than predicting a value; explain it with feature_importance"
        )
    has_proba = hasattr(pipeline, "predict_proba")
    if task in CLASSIFICATION:
        if not has_proba:
            raise ValueError(f"task {task!r} needs a classifier with predict_proba; this pipeline is not one")
        if task == "binary" and len(pipeline.classes_) != 2:
            raise ValueError(
                f"task 'binary' but the pipeline knows {len(pipeline.classes_)} classes; use 'multiclass'"
            )
    elif has_proba:
        raise ValueError(f"task {task!r} does not fit a classifier pipeline; use 'binary' or 'multiclass'")


def _outputs(estimator, X, task: str) -> np.ndarray:
    """What gets explained: class probabilities, or the prediction as one column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task in CLASSIFICATION:
            return np.asarray(estimator.predict_proba(X), dtype=float)
        return np.asarray(estimator.predict(X), dtype=float).reshape(-1, 1)


def _transform(prep, clean: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(prep.transform(clean), dtype=np.float64)


def _sample_index(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= limit else np.sort(rng.choice(n, size=limit, replace=False))


def _tree_kind(est) -> bool:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import BaseDecisionTree

    forests = (
        RandomForestClassifier,
        RandomForestRegressor,
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        BaseDecisionTree,
    )
    return type(est).__module__.startswith(("lightgbm", "xgboost")) or isinstance(est, forests)


def _linear_kind(est) -> bool:
    return (
        type(est).__module__.startswith("sklearn.linear_model")
        and hasattr(est, "coef_")
        and hasattr(est, "intercept_")
    )


def _owner_matrix(prep, columns: tuple[str, ...], width: int) -> np.ndarray | None:
    """A (features out) x (original columns) 0/1 matrix, or None when the pieces cannot be traced."""
    try:
        owners = original_column_of(prep)
    except Exception:  # noqa: BLE001 - not a ColumnTransformer (e.g. TimeFeatures): no fast path
        return None
    index = {c: i for i, c in enumerate(columns)}
    if len(owners) != width or any(o not in index for o in owners):
        return None
    matrix = np.zeros((width, len(columns)))
    matrix[np.arange(width), [index[o] for o in owners]] = 1.0
    return matrix


# --------------------------------------------------------------------------- importance
def _own_importance(est) -> np.ndarray | None:
    """The estimator's own importance per transformed feature: gain, impurity or |coef|."""
    module = type(est).__module__
    if module.startswith("lightgbm"):
        return np.asarray(est.booster_.feature_importance(importance_type="gain"), dtype=float)
    if module.startswith("xgboost"):
        booster = est.get_booster()
        scores = booster.get_score(importance_type="total_gain")
        names = booster.feature_names or [f"f{i}" for i in range(est.n_features_in_)]
        return np.array([scores.get(name, 0.0) for name in names], dtype=float)
    if _tree_kind(est) and hasattr(est, "feature_importances_"):
        return np.asarray(est.feature_importances_, dtype=float)
    if _linear_kind(est):
        return np.abs(np.atleast_2d(est.coef_)).sum(axis=0)
    return None


def _member_importance(prep, model, columns: tuple[str, ...]) -> np.ndarray | None:
    """One model's importance summed back to original columns and normalised to sum to 1."""
    raw = _own_importance(getattr(model, "estimator_", model))
    if raw is None or prep is None:
        return None
    owners = _owner_matrix(prep, columns, len(raw))
    if owners is None:
        return None
    per_column = raw @ owners
    total = per_column.sum()
    return per_column / total if total > 0 else per_column


def _model_importance(anatomy: _Anatomy) -> np.ndarray | None:
    if anatomy.prep is not None:
        return _member_importance(anatomy.prep, anatomy.model, anatomy.columns)
    members, weights = getattr(anatomy.model, "estimators_", None), getattr(anatomy.model, "weights_", None)
    if members is None or weights is None:
        return None
    total, weight = np.zeros(len(anatomy.columns)), 0.0
    for (_, member), w in zip(members, weights, strict=True):
        steps = member.steps if isinstance(member, Pipeline) else [("model", member)]
        prep = steps[0][1] if len(steps) > 1 else None
        importance = _member_importance(prep, steps[-1][1], anatomy.columns)
        if importance is not None:
            total, weight = total + w * importance, weight + w
    return total / weight if weight > 0 else None


def feature_importance(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y=None,
    *,
    task: str,
    metric: str | None = "auto",
    n_repeats: int = 5,
    max_rows: int = 2000,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Importance per original column: the model's own view next to permutation importance.

    Permutation importance runs on the whole pipeline over raw columns, so it means the same for
    every model, ensembles included: how much the score (the task's metric, higher is better)
    drops when a column's values are shuffled. The raw rows are cleaned once and the cleaned values
    shuffled: the same result as shuffling raw values (the cleaner reads each cell on its own),
    without re-parsing every column for every shuffle. `importance_model` is the model's own importance
    (gain, impurity, |coef|) summed over a column's pieces and normalised to sum to 1, NaN where the
    model has none; for ensembles the weight-averaged importances of the members that have one.
    `y` is the target (values aligned with X, or the name of a column of X); for clustering it is
    not needed and the score is the agreement (adjusted Rand) with the unshuffled assignment.
    """
    from sklearn.inspection import permutation_importance

    anatomy = _anatomy(pipeline)
    _check_task(task, pipeline, allow_clustering=True)
    if n_repeats < 1 or max_rows < 1:
        raise ValueError(f"n_repeats and max_rows must be at least 1, got {n_repeats} and {max_rows}")
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame of raw rows, got {type(X).__name__}")
    if task != "clustering":
        if y is None:
            raise ValueError(f"feature_importance needs the target y for a {task} task")
        if isinstance(y, str):
            if y not in X.columns:
                raise ValueError(f"target column {y!r} is not in X")
            y = X[y]
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must match")
        labelled = ~pd.isna(y)
        X, y = X[labelled], y[labelled]
    rng = np.random.default_rng(random_state)
    index = _sample_index(len(X), max_rows, rng)
    X_sample = anatomy.cleaner.transform(X.iloc[index]).reset_index(drop=True)  # SchemaError if columns miss
    if len(X_sample) == 0:
        raise ValueError("X has no rows with a target value")

    if task == "clustering":
        from sklearn.metrics import adjusted_rand_score

        y_sample = np.asarray(anatomy.rest.predict(X_sample))

        def scorer(estimator, X_part, y_part):
            return adjusted_rand_score(y_part, estimator.predict(X_part))

    else:
        from .scoring import get_metric

        y_sample = y[index]
        chosen = get_metric(task, metric or "auto")
        classes = tuple(pipeline.classes_) if task in CLASSIFICATION else ()

        def scorer(estimator, X_part, y_part):
            output = estimator.predict_proba(X_part) if chosen.needs_proba else estimator.predict(X_part)
            return chosen.signed(y_part, output, classes)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = permutation_importance(
            anatomy.rest, X_sample, y_sample, scoring=scorer, n_repeats=n_repeats, random_state=random_state
        )
    own = _model_importance(anatomy)
    frame = pd.DataFrame(
        {
            "column": list(anatomy.columns),
            "importance_model": own if own is not None else np.nan,
            "permutation_mean": result.importances_mean,
            "permutation_std": result.importances_std,
        }
    )
    return frame.sort_values("permutation_mean", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- links: margin to output space
def _sigmoid(m: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-m))


def _softmax(m: np.ndarray) -> np.ndarray:
    z = np.exp(m - m.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _detect_link(margin: np.ndarray, expected: np.ndarray) -> str | None:
    """How margins (n, K) become the model's output (n, C): identity, logistic or softmax; None if none fits."""
    tol = 1e-4 * max(1.0, float(np.abs(expected).max(initial=0.0)))
    k, c = margin.shape[1], expected.shape[1]
    if k == c and np.allclose(margin, expected, rtol=0, atol=tol):
        return "identity"
    if k == 1 and c == 2 and np.allclose(_sigmoid(margin[:, 0]), expected[:, 1], rtol=0, atol=tol):
        return "logistic"
    if k == c > 1 and np.allclose(_softmax(margin), expected, rtol=0, atol=tol):
        return "softmax"
    return None


def _average_softmax_jacobian(m0: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Integral over t in [0, 1] of the softmax Jacobian at m0 + t * delta, per row: (n, K, K).

    Composite 16-point Gauss-Legendre with segments no longer than 2 margin units, which puts the
    quadrature error near machine precision (the remainder is put back by the caller).
    """
    length = float((delta.max(axis=1) - delta.min(axis=1)).max(initial=0.0))
    segments = int(np.clip(np.ceil(length / 2.0), 1, 256))
    nodes, weights = np.polynomial.legendre.leggauss(16)
    t = (((nodes + 1) / 2)[None, :] + np.arange(segments)[:, None]).ravel() / segments
    w = np.tile(weights / 2, segments) / segments
    k = delta.shape[1]
    jacobian = np.zeros((delta.shape[0], k, k))
    eye = np.eye(k)
    for ti, wi in zip(t, w, strict=True):
        p = _softmax(m0[None, :] + ti * delta)
        jacobian += wi * (p[:, :, None] * eye - p[:, :, None] * p[:, None, :])
    return jacobian


def _to_output_space(phi: np.ndarray, base: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray]:
    """Margin contributions (n, M, K) and base (K,) to output-space contributions (n, M, C) and base (C,)."""
    if link == "identity":
        return phi, base
    margin = base[None, :] + phi.sum(axis=1)
    if link == "logistic":
        m0, m = base[0], margin[:, 0]
        p0, p = _sigmoid(m0), _sigmoid(m)
        delta = m - m0
        small = np.abs(delta) < 1e-12
        slope = np.where(small, p0 * (1 - p0), (p - p0) / np.where(small, 1.0, delta))
        positive = phi[:, :, 0] * slope[:, None]
        return np.stack([-positive, positive], axis=-1), np.array([1 - p0, p0])
    p0 = _softmax(base)
    jacobian = _average_softmax_jacobian(base, margin - base[None, :])
    values = np.einsum("nij,nmj->nmi", jacobian, phi)
    residual = (_softmax(margin) - p0[None, :]) - values.sum(axis=1)
    spread = np.abs(values)
    total = spread.sum(axis=1, keepdims=True)
    values = (
        values
        + np.divide(spread, total, out=np.full_like(spread, 1.0 / phi.shape[1]), where=total > 0)
        * residual[:, None, :]
    )
    return values, p0


# --------------------------------------------------------------------------- fast paths
@dataclass(frozen=True)
class _FastPath:
    method: str  # "tree" or "linear"
    margins: Callable[[np.ndarray], np.ndarray]  # transformed rows -> contributions (n, F, K)
    base: np.ndarray  # (K,)
    owners: np.ndarray  # (F, M)
    link: str


def _as_3d(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[:, :, None] if values.ndim == 2 else values


def _tree_margins(est) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], np.ndarray]]:
    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.TreeExplainer(est)
    lock = threading.Lock()  # shap's explainer writes `expected_value` during calls

    def margins(Xt: np.ndarray) -> np.ndarray:
        with lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _as_3d(explainer.shap_values(Xt, check_additivity=False))

    def base() -> np.ndarray:
        with lock:
            return np.atleast_1d(np.asarray(explainer.expected_value, dtype=float)).ravel()

    return margins, base


def _linear_margins(
    est, Xt_background: np.ndarray
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], np.ndarray]]:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=float))  # (K, F)
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=float))
    mean = Xt_background.mean(axis=0)
    base = coef @ mean + intercept

    def margins(Xt: np.ndarray) -> np.ndarray:
        return (Xt - mean)[:, :, None] * coef.T[None, :, :]

    return margins, lambda: base


def _fast_path(anatomy: _Anatomy, clean_background: pd.DataFrame, task: str) -> _FastPath | None:
    """TreeSHAP or exact linear contributions on the transformed features, checked to add up on the background."""
    if anatomy.prep is None:
        return None
    est = getattr(anatomy.model, "estimator_", anatomy.model)
    method = "tree" if _tree_kind(est) else "linear" if _linear_kind(est) else None
    if method is None:
        return None
    Xt = _transform(anatomy.prep, clean_background)
    owners = _owner_matrix(anatomy.prep, anatomy.columns, Xt.shape[1])
    if owners is None:
        return None
    try:
        margins, base_of = _tree_margins(est) if method == "tree" else _linear_margins(est, Xt)
        phi = margins(Xt)
        base = base_of()
    except Exception:  # noqa: BLE001 - a model shap cannot read is explained by the model-agnostic path
        return None
    if base.shape[0] != phi.shape[2]:
        return None
    link = _detect_link(base[None, :] + phi.sum(axis=1), _outputs(anatomy.model, Xt, task))
    if link is None:
        # e.g. shap misreads a model's categorical splits: never report numbers that do not add up
        return None
    return _FastPath(method, margins, base, owners, link)


# --------------------------------------------------------------------------- model-agnostic Shapley values
def _encode(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> tuple[list[np.ndarray], list]:
    """Integer codes per column over several cleaned frames, so masking is array arithmetic on any dtype."""
    sizes = np.cumsum([0] + [len(f) for f in frames])
    codes = np.empty((sizes[-1], len(columns)), dtype=np.int64)
    uniques = []
    for j, column in enumerate(columns):
        joined = pd.concat([f[column] for f in frames], ignore_index=True)
        codes[:, j], found = pd.factorize(joined, use_na_sentinel=False)
        uniques.append(found)
    return [codes[sizes[i] : sizes[i + 1]] for i in range(len(frames))], uniques


def _decode(codes: np.ndarray, uniques: list, columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: uniques[j].take(codes[:, j]) for j, c in enumerate(columns)})


def _coalition_values(
    rest: Pipeline, task: str, rows: np.ndarray, background: np.ndarray, masks: np.ndarray, uniques, columns
) -> np.ndarray:
    """v(S) per row and coalition: the mean output when columns outside S come from the background (n, Q, C)."""
    n, q, b = len(rows), len(masks), len(background)
    chunk = max(1, _BATCH_ROWS // (q * b))
    out = []
    for start in range(0, n, chunk):
        part = rows[start : start + chunk]
        coded = np.where(masks[None, :, None, :], part[:, None, None, :], background[None, None, :, :])
        # Where the row and a background row agree, different coalitions give the same input: predict it once.
        distinct, inverse = np.unique(coded.reshape(-1, len(columns)), axis=0, return_inverse=True)
        output = _outputs(rest, _decode(distinct, uniques, columns), task)[inverse.ravel()]
        out.append(output.reshape(len(part), q, b, -1).mean(axis=2))
    return np.concatenate(out)


def _exact_shapley(values: np.ndarray, m: int) -> np.ndarray:
    """Shapley values from v over all 2^M coalitions (bit j of the coalition index = column j kept)."""
    coalitions = np.arange(2**m)
    sizes = np.array([bin(c).count("1") for c in coalitions])
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])
    phi = np.zeros((values.shape[0], m, values.shape[2]))
    for j in range(m):
        without = coalitions[(coalitions >> j) & 1 == 0]
        gain = values[:, without | (1 << j)] - values[:, without]
        phi[:, j] = np.einsum("nqc,q->nc", gain, weight[sizes[without]])
    return phi


def _permutation_plan(m: int, pairs: int, rng: np.random.Generator):
    """Coalitions along random column orders and their reverses (antithetic sampling)."""
    orders = rng.permuted(np.tile(np.arange(m), (pairs, 1)), axis=1)
    ranks = np.argsort(orders, axis=1)  # ranks[p, j]: position of column j in order p
    forward = ranks[:, None, :] < np.arange(m + 1)[None, :, None]  # (P, M+1, M): first k columns kept
    masks, inverse = np.unique(
        np.concatenate([forward.reshape(-1, m), ~forward.reshape(-1, m)]), axis=0, return_inverse=True
    )
    inverse = inverse.reshape(2, pairs, m + 1)
    return masks, inverse[0], inverse[1], ranks


def _permutation_shapley(values: np.ndarray, inv_forward, inv_backward, ranks) -> np.ndarray:
    m = ranks.shape[1]
    forward = np.diff(values[:, inv_forward], axis=2)  # (n, P, M, C): step k adds column order[p, k]
    # The reverse order's k-th prefix is the complement of the forward (M-k)-th prefix.
    backward = np.diff(values[:, inv_backward][:, :, ::-1], axis=2)
    phi = np.take_along_axis(forward, ranks[None, :, :, None], axis=2).sum(axis=1)
    phi += np.take_along_axis(backward, (m - 1 - ranks)[None, :, :, None], axis=2).sum(axis=1)
    return phi / (2 * ranks.shape[0])


# --------------------------------------------------------------------------- the explainer
class Explainer:
    """Shapley contributions per original column for one fitted pipeline.

    Built once per pipeline: the background is cleaned and sampled, the fast path is chosen and
    checked to add up here. Afterwards it is only read (the shap tree explainer sits behind a
    lock, random draws use a generator per call), so one instance can be cached and shared by
    threads, and the same rows always get the same explanation.

    Parameters
    ----------
    pipeline : the fitted pipeline (`AutoML.best_estimator_`), single model or ensemble.
    background : raw rows standing for "typical" input (a sample of the training data).
    task : "binary", "multiclass", "regression" or "timeseries".
    classes : names for the probability columns, in the pipeline's `classes_` order (default: `classes_`).
    target_class : the class whose probability to explain (default: binary the second class,
        multiclass each row's predicted class).
    background_rows, max_evals : sample size and model calls per row of the model-agnostic path
        (exact Shapley values when 2 ** columns <= max_evals, permutation sampling otherwise).

    Attributes
    ----------
    method : "tree", "linear" (fast paths), "exact" or "permutation" (model-agnostic).
    space : "probability" or "prediction", the units of every contribution.
    columns : the original input columns, in the order contributions are reported.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        background: pd.DataFrame,
        task: str,
        classes=None,
        *,
        target_class=None,
        background_rows: int = BACKGROUND_ROWS,
        max_evals: int = MAX_EVALS,
        random_state: int | None = 0,
    ):
        anatomy = _anatomy(pipeline)
        _check_task(task, pipeline)
        if background_rows < 1:
            raise ValueError(f"background_rows must be at least 1, got {background_rows}")
        if not isinstance(background, pd.DataFrame):
            raise TypeError(
                f"background must be a pandas DataFrame of raw rows, got {type(background).__name__}"
            )
        # Only the sampled rows are cleaned; missing columns raise SchemaError here.
        sample = _sample_index(len(background), background_rows, np.random.default_rng(random_state))
        self._background = anatomy.cleaner.transform(background.iloc[sample])
        if len(self._background) == 0:
            raise ValueError("background has no rows; pass a sample of the training data")
        self._anatomy = anatomy
        self._task = task
        self._random_state = random_state
        self._labels, self._target = self._resolve_classes(pipeline, classes, target_class)
        m = len(anatomy.columns)
        self._fast = _fast_path(anatomy, self._background, task)
        self._exact = 2**m <= max_evals
        self._pairs = max(1, max_evals // (2 * m + 1))
        self.method = self._fast.method if self._fast else ("exact" if self._exact else "permutation")
        self.space = "probability" if task in CLASSIFICATION else "prediction"

    def _resolve_classes(self, pipeline, classes, target_class):
        if self._task not in CLASSIFICATION:
            if target_class is not None or (classes is not None and len(classes) > 0):
                raise ValueError(
                    f"classes and target_class apply to classification, not to a {self._task} task"
                )
            return None, None
        known = np.asarray(pipeline.classes_, dtype=object)
        labels = known if classes is None else np.asarray(list(classes), dtype=object)
        if len(labels) != len(known):
            raise ValueError(f"classes has {len(labels)} names but the pipeline has {len(known)} classes")
        if target_class is None:
            return labels, 1 if self._task == "binary" else None
        matches = [i for i, label in enumerate(labels) if label == target_class]
        if not matches:
            raise ValueError(f"target_class {target_class!r} is not one of the classes {list(labels)}")
        return labels, matches[0]

    @property
    def columns(self) -> tuple[str, ...]:
        """The original input columns, in the order contributions are reported."""
        return self._anatomy.columns

    def explain(self, rows: pd.DataFrame) -> Explanation:
        """Contributions of each original column for each raw row; they add up to the explained output."""
        clean = self._anatomy.cleaner.transform(rows)
        if len(clean) == 0:
            raise ValueError("rows has no rows to explain")
        if self._fast is not None:
            values, base, outputs = self._fast_values(clean)
        else:
            values, base, outputs = self._agnostic_values(clean)
        return self._explanation(clean, values, base, outputs)

    def _fast_values(self, clean: pd.DataFrame):
        fast = self._fast
        Xt = _transform(self._anatomy.prep, clean)
        phi = np.einsum("nfk,fm->nmk", fast.margins(Xt), fast.owners)
        values, base = _to_output_space(phi, fast.base, fast.link)
        outputs = _outputs(self._anatomy.model, Xt, self._task)
        return values, base, outputs

    def _agnostic_values(self, clean: pd.DataFrame):
        columns = self._anatomy.columns
        m = len(columns)
        (rows, background), uniques = _encode([clean, self._background], columns)
        if self._exact:
            masks = ((np.arange(2**m)[:, None] >> np.arange(m)) & 1).astype(bool)
            v = _coalition_values(self._anatomy.rest, self._task, rows, background, masks, uniques, columns)
            return _exact_shapley(v, m), v[0, 0], v[:, -1]
        rng = np.random.default_rng(self._random_state)
        masks, inv_forward, inv_backward, ranks = _permutation_plan(m, self._pairs, rng)
        v = _coalition_values(self._anatomy.rest, self._task, rows, background, masks, uniques, columns)
        empty, full = inv_forward[0, 0], inv_forward[0, -1]
        return _permutation_shapley(v, inv_forward, inv_backward, ranks), v[0, empty], v[:, full]

    def _explanation(self, clean: pd.DataFrame, values, base, outputs) -> Explanation:
        n, index, columns = len(clean), clean.index, list(self.columns)
        at = np.arange(n)
        if self._task in CLASSIFICATION:
            predicted = outputs.argmax(axis=1)
            k = predicted if self._target is None else np.full(n, self._target)
            prediction = pd.Series(self._labels[predicted], index=index, name="prediction")
            explained = pd.Series(self._labels[k], index=index, name="explained_class")
            by_class = {
                label: pd.DataFrame(values[:, :, i], index=index, columns=columns)
                for i, label in enumerate(self._labels)
            }
            class_base = {label: float(base[i]) for i, label in enumerate(self._labels)}
        else:
            k = np.zeros(n, dtype=int)
            prediction = pd.Series(outputs[:, 0], index=index, name="prediction")
            explained, by_class, class_base = None, {}, {}
        return Explanation(
            contributions=pd.DataFrame(values[at, :, k], index=index, columns=columns),
            base_value=pd.Series(base[k], index=index, name="base_value"),
            output=pd.Series(outputs[at, k], index=index, name="output"),
            prediction=prediction,
            explained_class=explained,
            feature_values=clean[columns],
            method=self.method,
            space=self.space,
            class_contributions=MappingProxyType(by_class),
            class_base_values=MappingProxyType(class_base),
        )


def shap_summary(
    pipeline: Pipeline, X: pd.DataFrame, task: str, max_rows: int = 1000, *, random_state: int | None = 0
) -> ShapSummary:
    """Mean |contribution| per original column and the per-cell values for a beeswarm chart.

    Uses the fast tree or linear path where the model allows (up to `max_rows` rows). The
    model-agnostic path costs hundreds of model calls per row, so there it explains at most
    `AGNOSTIC_SUMMARY_ROWS` rows against `AGNOSTIC_SUMMARY_BACKGROUND` background rows: a global
    average tolerates the extra noise. The background is a sample of X itself.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    explainer = Explainer(pipeline, X, task, random_state=random_state)
    limit = max_rows
    if explainer.method not in ("tree", "linear"):
        limit = min(max_rows, AGNOSTIC_SUMMARY_ROWS)
        explainer = Explainer(
            pipeline, X, task, background_rows=AGNOSTIC_SUMMARY_BACKGROUND, random_state=random_state
        )
    rows = X.iloc[_sample_index(len(X), limit, np.random.default_rng(random_state))]
    explanation = explainer.explain(rows)
    contributions, features = explanation.contributions, explanation.feature_values
    n, m = contributions.shape
    scaled = pd.DataFrame({c: _scaled(features[c]) for c in features.columns}, index=features.index)
    values = pd.DataFrame(
        {
            "row": np.repeat(contributions.index.to_numpy(), m),
            "column": np.tile(np.asarray(contributions.columns, dtype=object), n),
            "shap_value": contributions.to_numpy().ravel(),
            "feature_value": features.to_numpy(dtype=object).ravel(),
            "feature_scaled": scaled.to_numpy(dtype=float).ravel(),
        }
    )
    importance = (
        contributions.abs()
        .mean()
        .rename("mean_abs_shap")
        .rename_axis("column")
        .reset_index()
        .sort_values("mean_abs_shap", ascending=False, kind="stable")
        .reset_index(drop=True)
    )
    return ShapSummary(importance, values, explanation.method, explanation.space, n)


def _scaled(values: pd.Series) -> pd.Series:
    """A value's rank within its column in [0, 1] (for colour); NaN for labels and text."""
    if (
        pd.api.types.is_bool_dtype(values)
        or pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_datetime64_any_dtype(values)
    ):
        ranked = values.rank(pct=True)
        low = ranked.min()
        return (ranked - low) / (1 - low) if low < 1 else ranked * 0 + 0.5
    return pd.Series(np.nan, index=values.index)


# --------------------------------------------------------------------------- local surrogate
def local_surrogate(
    pipeline: Pipeline,
    row: pd.DataFrame,
    background: pd.DataFrame,
    task: str,
    n_samples: int = 500,
    random_state: int | None = 0,
    *,
    target_class=None,
) -> pd.DataFrame:
    """A LIME-style second opinion on one row: a weighted linear model of kept/replaced columns.

    Each sample keeps a random subset of the row's original columns and takes the others from one
    background row; the pipeline predicts every sample, and a ridge on the 0/1 "kept" indicators,
    weighted by LIME's kernel on the share of columns kept, gives each column's local weight: how
    much the explained output (same space as `Explainer`) moves because the row has its own value
    there. `surrogate_r2` (repeated on every line) says how well the linear surrogate fits; trust
    the weights less when it is low. `attrs` also hold r2, intercept, output (the row's own explained
    output) and explained_class. Deterministic given `random_state`.
    """
    from sklearn.linear_model import Ridge

    anatomy = _anatomy(pipeline)
    _check_task(task, pipeline)
    if n_samples < 10:
        raise ValueError(f"n_samples must be at least 10, got {n_samples}")
    clean_row = anatomy.cleaner.transform(row)
    if len(clean_row) != 1:
        raise ValueError(f"row must hold exactly one row, got {len(clean_row)}")
    if not isinstance(background, pd.DataFrame):
        raise TypeError(f"background must be a pandas DataFrame of raw rows, got {type(background).__name__}")
    anatomy.cleaner.transform(background.iloc[:0])  # missing columns raise SchemaError here
    if len(background) == 0:
        raise ValueError("background has no rows; pass a sample of the training data")
    columns = anatomy.columns
    m = len(columns)
    rng = np.random.default_rng(random_state)
    kept = rng.integers(0, m + 1, size=n_samples)
    kept[0] = m  # the row itself anchors the fit
    keep = rng.random((n_samples, m)).argsort(axis=1) < kept[:, None]
    donors, donor_of = np.unique(rng.integers(0, len(background), size=n_samples), return_inverse=True)
    clean_donors = anatomy.cleaner.transform(background.iloc[donors])  # only the rows drawn are cleaned
    (own, pool), uniques = _encode([clean_row, clean_donors], columns)
    samples = np.where(keep, own, pool[donor_of])
    indicators = (samples == own).astype(float)  # a donor value equal to the row's own counts as kept
    outputs = _outputs(anatomy.rest, _decode(samples, uniques, columns), task)
    if task in CLASSIFICATION:
        classes = np.asarray(pipeline.classes_, dtype=object)
        if target_class is None:
            k = 1 if task == "binary" else int(outputs[0].argmax())
        elif target_class in list(classes):
            k = list(classes).index(target_class)
        else:
            raise ValueError(f"target_class {target_class!r} is not one of the classes {list(classes)}")
        explained = classes[k]
    else:
        k, explained = 0, None
    target = outputs[:, k]
    removed = 1.0 - indicators.mean(axis=1)
    weights = np.sqrt(np.exp(-removed / _LIME_WIDTH**2))
    ridge = Ridge(alpha=1.0).fit(indicators, target, sample_weight=weights)
    r2 = float(ridge.score(indicators, target, sample_weight=weights))
    frame = pd.DataFrame(
        {
            "column": list(columns),
            "weight": ridge.coef_,
            "value": clean_row.iloc[0][list(columns)].to_numpy(dtype=object),
            "surrogate_r2": r2,
        }
    )
    order = np.argsort(-np.abs(frame["weight"].to_numpy()), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    frame.attrs.update(
        r2=r2, intercept=float(ridge.intercept_), output=float(target[0]), explained_class=explained
    )
    return frame


__all__ = [
    "AGNOSTIC_SUMMARY_BACKGROUND",
    "AGNOSTIC_SUMMARY_ROWS",
    "Explainer",
    "Explanation",
    "ShapSummary",
    "feature_importance",
    "local_surrogate",
    "shap_summary",
]
