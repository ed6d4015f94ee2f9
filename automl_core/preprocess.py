"""Preprocessing as plain scikit-learn steps, chosen by the kind of model that follows.

Every trained model is one `Pipeline`: `TableCleaner` (reads raw columns the way they were
profiled, so files and JSON rows are treated like the training data), a `ColumnTransformer` built
by `build_preprocessor` for a model style, then the estimator. Trees get ordinal codes and keep
missing values; linear, kernel and neural models get imputation with missing-value flags,
one-hot codes and scaling. High-cardinality labels are target-encoded (cross-fitted by
scikit-learn), free text becomes TF-IDF word features reduced by SVD, dates become their parts.
All of it is fitted inside each training fold only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)
from sklearn.utils.validation import check_is_fitted

from .errors import SchemaError
from .intake import FEATURE_KINDS, ColumnSpec, infer_column_spec, typed_column
from .parsing import clean_text

STYLES = ("tree", "linear")
ONE_HOT_MAX_LEVELS = 20
ORDINAL_MAX_LEVELS = 250
DATE_PARTS = ("year", "month", "day", "weekday", "dayofyear", "hour", "elapsed_days")


class TableCleaner(TransformerMixin, BaseEstimator):
    """Reads raw columns by their profiled kind and keeps only the feature columns.

    Parameters
    ----------
    specs : dict of column name to ColumnSpec, optional
        Decisions from the profile (they may carry the user's overrides). Inferred in `fit` when None.
    exclude : list of str, optional
        Columns never used as features (the target, columns the user switched off).
    """

    def __init__(self, specs: dict[str, ColumnSpec] | None = None, exclude: list[str] | None = None):
        self.specs = specs
        self.exclude = exclude

    def fit(self, X: pd.DataFrame, y=None):
        if not isinstance(X, pd.DataFrame):
            raise SchemaError(f"expected a table (pandas DataFrame), got {type(X).__name__}")
        exclude = set(self.exclude or [])
        specs = self.specs or {}
        chosen: dict[str, ColumnSpec] = {}
        for name in X.columns:
            if name in exclude:
                continue
            spec = specs.get(name) or infer_column_spec(X[name], name)
            if spec.kind in FEATURE_KINDS:
                chosen[name] = spec
        if not chosen:
            raise SchemaError("no usable feature columns: every column is an identifier, constant, empty or excluded")
        self.specs_ = chosen
        self.kinds_ = {name: spec.kind for name, spec in chosen.items()}
        self.input_columns_ = list(chosen)
        typed = self._typed(X)
        self.schema_ = {name: _column_schema(typed[name], chosen[name]) for name in chosen}
        return self

    def _typed(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for name, spec in self.specs_.items():
            values = typed_column(X[name], spec)
            if spec.kind in ("categorical", "text"):
                values = values.astype("str")
            out[name] = values
        return pd.DataFrame(out, index=X.index)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "specs_")
        if not isinstance(X, pd.DataFrame):
            raise SchemaError(f"expected a table (pandas DataFrame), got {type(X).__name__}")
        missing = [c for c in self.input_columns_ if c not in X.columns]
        if missing:
            raise SchemaError(
                f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}",
                details=[{"column": c, "problem": "missing"} for c in missing],
            )
        return self._typed(X)

    def reading_warnings(self, X: pd.DataFrame) -> list[str]:
        """Sentences about what in `X` the model cannot use as written (it still predicts every row).

        Cells that cannot be read as numbers or dates become missing values, labels never seen in
        training are unknown labels, and columns that are not inputs are ignored: each is said once
        per column with a count and an example, so a batch is never silently mispredicted."""
        check_is_fitted(self, "specs_")
        out = []
        present_columns = [name for name in self.specs_ if name in X.columns]
        typed_frame = self._typed(X.reindex(columns=list(self.specs_)))
        for name in present_columns:
            spec, raw, typed = self.specs_[name], X[name], typed_frame[name]
            if spec.kind in ("numeric", "datetime", "boolean") and not pd.api.types.is_numeric_dtype(raw):
                present = clean_text(raw).notna() if not pd.api.types.is_datetime64_any_dtype(raw) else raw.notna()
                lost = present & typed.isna()
                if lost.any():
                    what = {"numeric": "numbers", "datetime": "dates", "boolean": "yes/no values"}[spec.kind]
                    example = raw[lost].iloc[0]
                    out.append(f"column {name!r}: {int(lost.sum())} of {len(raw)} values could not be read as {what} "
                               f"(for example {str(example)!r}) and were treated as missing")
            elif spec.kind == "categorical":
                info = self.schema_.get(name, {})
                known = info.get("categories") or []
                if int(info.get("n_categories", 0)) > len(known):
                    continue  # only the most frequent labels were kept: cannot tell what is new
                # Compared as the encoders see them: the cleaner's text of each label.
                unseen = clean_text(raw.astype("string")).notna() & ~typed.isin(set(known))
                if unseen.any():
                    out.append(f"column {name!r}: {int(unseen.sum())} rows hold labels not seen in training "
                               f"(for example {str(typed[unseen].iloc[0])!r}); the model treats them as unknown")
        ignored = [str(c) for c in X.columns if c not in self.specs_]
        if ignored:
            shown = ", ".join(map(repr, ignored[:10])) + (" ..." if len(ignored) > 10 else "")
            out.append(f"not inputs of the model, ignored: {shown}")
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "specs_")
        return np.asarray(self.input_columns_, dtype=object)


def _column_schema(values: pd.Series, spec: ColumnSpec) -> dict:
    """What the model saw for a column: range for numbers, labels for categories (for forms and checks)."""
    present = values.dropna()
    info: dict = {"kind": spec.kind, "missing_share": float(values.isna().mean()) if len(values) else 0.0}
    if spec.number_rule is not None:
        info["written_as_text"] = True
    if spec.kind == "numeric" and len(present):
        info.update(
            min=float(present.min()),
            max=float(present.max()),
            median=float(present.median()),
            integer=bool(np.all(np.mod(present.to_numpy(), 1) == 0)),
        )
    elif spec.kind == "categorical":
        counts = present.value_counts()
        info.update(categories=[str(c) for c in counts.index[:500]], n_categories=int(len(counts)))
        info["most_frequent"] = str(counts.index[0]) if len(counts) else None
    elif spec.kind == "boolean":
        info.update(true_share=float(present.mean()) if len(present) else 0.0)
    elif spec.kind == "datetime" and len(present):
        info.update(min=str(present.min()), max=str(present.max()), median=str(present.sort_values().iloc[len(present) // 2]))
    elif spec.kind == "text":
        counts = present.value_counts()
        info.update(examples=[str(c) for c in counts.index[:20]])
    return info


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Dates to numbers: year, month, day, weekday, day of year, hour and days since 1970.

    Parts that do not vary in the training data (for example the hour of plain dates) are dropped.
    """

    def fit(self, X, y=None):
        frame = _as_frame(X)
        self.columns_ = list(frame.columns)
        parts = self._parts(frame)
        self.keep_ = [c for c in parts.columns if parts[c].nunique(dropna=True) > 1]
        if not self.keep_:
            self.keep_ = [parts.columns[-1]]
        return self

    def _parts(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for col in frame.columns:
            d = pd.to_datetime(frame[col], errors="coerce")
            out[f"{col}__year"] = d.dt.year
            out[f"{col}__month"] = d.dt.month
            out[f"{col}__day"] = d.dt.day
            out[f"{col}__weekday"] = d.dt.day_of_week
            out[f"{col}__dayofyear"] = d.dt.day_of_year
            out[f"{col}__hour"] = d.dt.hour
            out[f"{col}__elapsed_days"] = (d - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        return pd.DataFrame(out).astype("float64")

    def transform(self, X):
        check_is_fitted(self, "keep_")
        return self._parts(_as_frame(X, self.columns_))[self.keep_].to_numpy(dtype=float)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "keep_")
        return np.asarray(self.keep_, dtype=object)


class TextFeatures(TransformerMixin, BaseEstimator):
    """Free text to a few dense features: TF-IDF over words and word pairs, reduced by SVD."""

    def __init__(self, max_features: int = 3000, n_components: int = 16, random_state: int | None = 0):
        self.max_features = max_features
        self.n_components = n_components
        self.random_state = random_state

    def _texts(self, X) -> list[str]:
        values = np.asarray(X, dtype=object).ravel()
        return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).lower() for v in values]

    def fit(self, X, y=None):
        texts = self._texts(X)
        self.name_ = str(getattr(X, "name", None) or (X.columns[0] if isinstance(X, pd.DataFrame) else "text"))
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features, ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32
        )
        try:
            matrix = self.vectorizer_.fit_transform(texts)
        except ValueError:  # every document empty or only rare words: fall back to characters
            self.vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), min_df=1, dtype=np.float32)
            matrix = self.vectorizer_.fit_transform([t or " " for t in texts])
        k = max(1, min(self.n_components, matrix.shape[1] - 1, matrix.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state)
        self.svd_.fit(matrix)
        return self

    def transform(self, X):
        check_is_fitted(self, "svd_")
        return self.svd_.transform(self.vectorizer_.transform(self._texts(X)))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "svd_")
        return np.asarray([f"{self.name_}__svd{i}" for i in range(self.svd_.n_components)], dtype=object)


def _as_frame(X, columns=None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        return X.to_frame()
    frame = pd.DataFrame(np.asarray(X, dtype=object))
    if columns is not None:
        frame.columns = columns
    return frame


def _categorical_levels(X: pd.DataFrame, col: str) -> int:
    return int(X[col].nunique(dropna=True))


def build_preprocessor(
    kinds: dict[str, str], X: pd.DataFrame, style: str, *, task: str, random_state: int | None = 0
) -> ColumnTransformer:
    """A `ColumnTransformer` for one model style over cleaned columns (the output of `TableCleaner`).

    `X` is only looked at for the number of distinct labels per categorical column, which decides
    between one-hot / ordinal codes and target encoding; nothing about the target is used here.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    by_kind: dict[str, list[str]] = {}
    for col, kind in kinds.items():
        by_kind.setdefault(kind, []).append(col)
    numeric = by_kind.get("numeric", []) + by_kind.get("boolean", [])
    dates = by_kind.get("datetime", [])
    texts = by_kind.get("text", [])
    cats = by_kind.get("categorical", [])
    target_type = "continuous" if task in ("regression", "timeseries") else "auto"
    transformers = []
    if style == "tree":
        # Ordinal-coded categoricals come first, so their output positions are 0..k-1 in every fold.
        small = [c for c in cats if _categorical_levels(X, c) <= ORDINAL_MAX_LEVELS]
        large = [c for c in cats if c not in small]
        if small:
            transformers.append(
                (
                    "cat",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        encoded_missing_value=np.nan,
                        dtype=np.float64,
                    ),
                    small,
                )
            )
        if numeric:
            transformers.append(("num", "passthrough", numeric))
        if dates:
            transformers.append(("date", DatetimeFeatures(), dates))
        if large:
            transformers.append(("cat_te", _target_encoder(target_type, random_state), large))
    else:
        clustering = task == "clustering"
        # Clustering compares rows by distance: standard scores are capped at ±3, so a handful of
        # extreme values (a rarely lit pixel, one huge account) cannot dominate every distance.
        capped = [FunctionTransformer(clip_standard_scores, feature_names_out="one-to-one")] if clustering else []
        if numeric:
            # Missing-value flags help supervised models but distort distances between rows in clustering.
            imputer = SimpleImputer(strategy="median", add_indicator=not clustering)
            transformers.append(("num", make_pipeline(imputer, StandardScaler(), *capped), numeric))
        if dates:
            transformers.append(
                ("date", make_pipeline(DatetimeFeatures(), SimpleImputer(strategy="median"), StandardScaler(), *capped),
                 dates)
            )
        small = [c for c in cats if _categorical_levels(X, c) <= ONE_HOT_MAX_LEVELS]
        large = [c for c in cats if c not in small]
        if small:
            transformers.append(
                (
                    "cat",
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5, dtype=np.float64),
                    small,
                )
            )
        if large and task == "clustering":
            # No target to encode against: the 20 most frequent labels, the rest grouped.
            transformers.append(
                ("cat_top", OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False, max_categories=20), large)
            )
        elif large:
            transformers.append(
                ("cat_te", make_pipeline(_target_encoder(target_type, random_state), StandardScaler()), large)
            )
    for i, col in enumerate(texts):
        step = TextFeatures(random_state=random_state)
        transformers.append((f"text_{i}", step if style == "tree" else make_pipeline(step, StandardScaler()), col))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)


CLUSTERING_MAX_STANDARD_SCORE = 3.0


def clip_standard_scores(X):
    return np.clip(X, -CLUSTERING_MAX_STANDARD_SCORE, CLUSTERING_MAX_STANDARD_SCORE)


def _target_encoder(target_type: str, random_state: int | None) -> Pipeline:
    """Target encoding for many labels; missing labels are a label of their own."""
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = KFold if target_type == "continuous" else StratifiedKFold
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value="__missing__"),
        TargetEncoder(target_type=target_type, cv=folds(5, shuffle=True, random_state=random_state)),
    )


def categorical_indices(prep: ColumnTransformer) -> list[int]:
    """Output positions of ordinal-coded categoricals in a fitted tree-style preprocessor."""
    check_is_fitted(prep, "output_indices_")
    sl = prep.output_indices_.get("cat")
    if sl is None or sl.stop <= sl.start or not isinstance(prep.named_transformers_["cat"], OrdinalEncoder):
        return []
    return list(range(sl.start, sl.stop))


def original_column_of(prep: ColumnTransformer) -> list[str]:
    """For each output feature of a fitted preprocessor, the input column it came from.

    Used to sum importances and SHAP values of one-hot pieces back to the file's own columns.
    """
    check_is_fitted(prep, "output_indices_")
    n_out = max((s.stop for s in prep.output_indices_.values()), default=0)
    owner = [""] * n_out
    for name, transformer, columns in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        sl = prep.output_indices_[name]
        cols = [columns] if isinstance(columns, str) else list(columns)
        width = sl.stop - sl.start
        if len(cols) == 1:
            for i in range(sl.start, sl.stop):
                owner[i] = cols[0]
            continue
        names = _output_names(transformer, cols, width)
        for offset, out_name in enumerate(names):
            owner[sl.start + offset] = _match_column(out_name, cols)
    return owner


def _output_names(transformer, cols: list[str], width: int) -> list[str]:
    try:
        names = list(transformer.get_feature_names_out(cols))
    except Exception:  # noqa: BLE001 - some steps cannot name outputs; fall back to positions
        names = []
    if len(names) != width:
        # Imputer indicators and passthrough keep one output per input column, then extras.
        names = [cols[i % len(cols)] for i in range(width)]
    return [str(n) for n in names]


def _match_column(out_name: str, cols: list[str]) -> str:
    if out_name in cols:
        return out_name
    for prefix in ("missingindicator_",):
        if out_name.startswith(prefix) and out_name[len(prefix) :] in cols:
            return out_name[len(prefix) :]
    best = max((c for c in cols if out_name.startswith(c)), key=len, default=None)
    return best or out_name
