"""Prediction without DataFrames: the same numbers as the pipeline, for one row in microseconds.

A scikit-learn `ColumnTransformer` costs milliseconds on a one-row DataFrame, while the model
behind it answers in a fraction of one. `FastPath` compiles a fitted pipeline once, when the
server loads it, into plain lookups and arithmetic that build the same feature vector from a row
read by `validation.InputSchema.type_row`:

- numeric columns: the imputer's statistics, missing-value flags and the scaler's mean and scale,
  applied with the same floating-point operations scikit-learn applies;
- label columns: a table per column from every known label (plus "missing" and "unseen") to its
  output, computed by the fitted encoder itself (ordinal, one-hot with infrequent groups, target
  encoding...), so the codes are the encoder's own;
- dates and free text: the fitted transformer itself on that one value, cached per value;
- the model: LightGBM's booster directly (what `LGBMModel.predict` calls; one thread below 500
  rows), any other family through its own `predict_proba` / `predict` on the vector; ensembles
  combine their members with `WeightedEnsemble._combine`, so weights and stackers are their own.

The same blocks fill a whole matrix for batches (`outputs_batch`): each distinct label, date or
text of the batch is looked up or transformed once. Anything it does not recognise raises
`Unsupported` and the caller uses the pipeline instead.
Compilation ends with a self-check on probe rows made from the training statistics: the fast path
is used only when it reproduces the pipeline's outputs.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import numpy as np

from .validation import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC, TEXT, InputSchema, _flatten

CLASSIFICATION = ("binary", "multiclass")
UNSEEN_LABEL = "\x00unseen label\x00"
_VALUE_CACHE = 4096
_PROBE_ROWS = 16
_SINGLE_THREAD_FAMILIES = ("random_forest", "extra_trees", "knn")
_THREADED_ROWS = 500


class Unsupported(Exception):  # noqa: N818 - read as "this pipeline is unsupported by the fast path"
    """The pipeline holds a step the fast path does not compile; use the pipeline itself."""


# --------------------------------------------------------------------------- typed 1-row frames
def column_array(kind: str, values: list):
    """A column of typed values in the dtype `TableCleaner` gives that kind."""
    import pandas as pd

    if kind in (NUMERIC, BOOLEAN):
        return np.asarray(values, dtype="float64")
    if kind == DATETIME:
        return np.asarray([np.datetime64("NaT") if v is None else v for v in values], dtype="datetime64[ns]")
    return pd.Series(values, dtype="str")


def _column_values(kind: str, values: list):
    """A typed column as `InputSchema.type_frame` gives it (labels as an object array of str/None)."""
    if kind in (CATEGORICAL, TEXT):
        return np.asarray(values, dtype=object)
    return column_array(kind, values)


def typed_frame(schema: InputSchema, rows: list[dict]):
    """A frame of already typed rows (what `TableCleaner.transform` would return)."""
    import pandas as pd

    data = {
        name: column_array(schema.rules[name].kind, [row[name] for row in rows]) for name in schema.columns
    }
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _dense(output) -> np.ndarray:
    if hasattr(output, "toarray"):
        output = output.toarray()
    return np.asarray(output, dtype=np.float64)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality where NaN equals NaN."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


# --------------------------------------------------------------------------- vector blocks
class _NumericBlock:
    """Numbers through passthrough / SimpleImputer / StandardScaler steps, as scikit-learn computes them."""

    def __init__(self, transformer, columns: list[str], start: int, width: int):
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        self.columns = columns
        self.positions = np.arange(start, start + width)
        self.ops: list[tuple] = []
        steps = [] if isinstance(transformer, str) and transformer == "passthrough" else _flatten(transformer)
        n = len(columns)
        for step in steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            if type(step).__name__ == "FunctionTransformer" and step.func is None:
                continue  # how a fitted ColumnTransformer stores "passthrough"
            if isinstance(step, SimpleImputer):
                missing = step.missing_values
                if not (isinstance(missing, float) and math.isnan(missing)):
                    raise Unsupported(f"SimpleImputer with missing_values={missing!r}")
                stats = np.asarray(step.statistics_, dtype=np.float64)
                if np.isnan(stats).any():
                    raise Unsupported("SimpleImputer with a column that was empty in training")
                flags = None
                if step.add_indicator:
                    flags = np.asarray(step.indicator_.features_, dtype=int)
                self.ops.append(("impute", stats, flags))
                n = n + (0 if flags is None else len(flags))
            elif isinstance(step, StandardScaler):
                mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
                scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
                self.ops.append(("scale", mean, scale))
            else:
                raise Unsupported(f"{type(step).__name__} on numeric columns")
        if n != width:
            raise Unsupported(f"numeric block of {columns} gives {width} outputs, expected {n}")

    def fill(self, vector: np.ndarray, values: dict) -> None:
        x = np.array([values[c] for c in self.columns], dtype=np.float64)
        for op, a, b in self.ops:
            if op == "impute":
                missing = np.isnan(x)
                x = np.where(missing, a, x)
                if b is not None:
                    x = np.concatenate([x, missing[b].astype(np.float64)])
            else:
                if a is not None:
                    x = x - a
                if b is not None:
                    x = x / b
        vector[self.positions] = x

    def fill_batch(self, matrix: np.ndarray, columns: dict) -> None:
        x = np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in self.columns])
        for op, a, b in self.ops:
            if op == "impute":
                missing = np.isnan(x)
                x = np.where(missing, a, x)
                if b is not None:
                    x = np.hstack([x, missing[:, b].astype(np.float64)])
            else:
                if a is not None:
                    x = x - a
                if b is not None:
                    x = x / b
        matrix[:, self.positions] = x


def _codes(values) -> tuple[np.ndarray, Any]:
    """(codes, distinct values) of a column; missing values (None, NaN, NaT) get code -1."""
    import pandas as pd

    return pd.factorize(values, use_na_sentinel=True)


class _LabelTableBlock:
    """Label columns through any per-column encoder, tabulated from the fitted encoder's own outputs."""

    def __init__(self, transformer, columns, start: int, width: int, schema: InputSchema):
        import pandas as pd

        cols = [columns] if isinstance(columns, str) else list(columns)
        domains = {c: _known_labels(transformer, cols, c, schema) for c in cols}
        base = {c: domains[c][0] if domains[c] else UNSEEN_LABEL for c in cols}
        rows: list[dict] = []
        spans = {}
        for c in cols:
            first = len(rows)
            for label in [*domains[c], None, UNSEEN_LABEL]:
                rows.append({**base, c: label})
            spans[c] = (first, len(rows))
        frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype="str") for c in cols})
        out = _dense(transformer.transform(frame[columns]))
        if out.shape != (len(rows), width):
            raise Unsupported(f"encoder of {cols} gives {out.shape[1]} outputs, expected {width}")
        owned = np.zeros(width, dtype=int)
        self.tables = []
        for c in cols:
            lo, hi = spans[c]
            block = out[lo:hi]
            varies = ~np.all(_same(block, block[:1]), axis=0)
            owned += varies
            positions = np.flatnonzero(varies)
            lookup = block[:, positions].copy()  # rows: known labels..., missing, unseen
            table = {label: lookup[i] for i, label in enumerate(domains[c])}
            index = {label: i for i, label in enumerate(domains[c])}
            self.tables.append((c, start + positions, table, lookup[-2], lookup[-1], index, lookup))
        if (owned > 1).any():
            raise Unsupported(f"encoder of {cols} mixes columns in one output")
        constant = np.flatnonzero(owned == 0)
        self.constant_positions = start + constant
        self.constant_values = out[0, constant].copy()

    def fill(self, vector: np.ndarray, values: dict) -> None:
        vector[self.constant_positions] = self.constant_values
        for column, positions, table, missing, unseen, _, _ in self.tables:
            label = values[column]
            vector[positions] = missing if label is None else table.get(label, unseen)

    def fill_batch(self, matrix: np.ndarray, columns: dict) -> None:
        matrix[:, self.constant_positions] = self.constant_values
        for column, positions, _, _, _, index, lookup in self.tables:
            codes, distinct = _codes(columns[column])
            unseen_row, missing_row = len(lookup) - 1, len(lookup) - 2
            rows = np.array(
                [index.get(label, unseen_row) for label in distinct] + [missing_row], dtype=np.intp
            )
            matrix[:, positions] = lookup[rows[codes]]


class _ValueCache:
    """A bounded, thread-safe map from one column value to its outputs (least recently used evicted)."""

    def __init__(self, maxsize: int = _VALUE_CACHE):
        from collections import OrderedDict
        from threading import Lock

        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = Lock()

    def get(self, key):
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.maxsize:
                self._data.popitem(last=False)


class _CachedBlock:
    """Any other transformer (dates, free text): itself on the distinct values, cached per value."""

    def __init__(self, transformer, columns, start: int, width: int, owners: list[str], schema: InputSchema):
        cols = [columns] if isinstance(columns, str) else list(columns)
        self.transformer = transformer
        self.selection = columns
        self.cols = cols
        self.base = {c: _base_value(schema, c) for c in cols}
        self.kinds = {c: schema.rules[c].kind for c in cols}
        self.parts = []
        covered = np.zeros(width, dtype=bool)
        for c in cols:
            relative = (
                np.arange(width)
                if len(cols) == 1
                else np.flatnonzero(np.asarray(owners[start : start + width]) == c)
            )
            covered[relative] = True
            self.parts.append((c, start + relative, relative, _ValueCache()))
        if not covered.all():
            raise Unsupported(
                f"outputs of {type(transformer).__name__} on {cols} cannot be traced to their columns"
            )
        self.width = width

    def _compute(self, column: str, relative: np.ndarray, values: list) -> np.ndarray:
        """The transformer's outputs for values of one column (the other columns at a base value)."""
        import pandas as pd

        n = len(values)
        data = {
            c: column_array(self.kinds[c], values if c == column else [self.base[c]] * n) for c in self.cols
        }
        out = _dense(self.transformer.transform(pd.DataFrame(data)[self.selection]))
        if out.shape != (n, self.width):
            raise Unsupported(
                f"{type(self.transformer).__name__} gave {out.shape[1]} outputs, expected {self.width}"
            )
        return out[:, relative]

    def _lookup(self, column: str, relative: np.ndarray, cache: _ValueCache, keys: list) -> np.ndarray:
        """Outputs of each key (None for missing), computing the ones not cached in one call."""
        found = [cache.get(key) for key in keys]
        misses = [i for i, row in enumerate(found) if row is None]
        if misses:
            computed = self._compute(column, relative, [keys[i] for i in misses])
            for i, row in zip(misses, computed, strict=True):
                row = row.copy()
                row.flags.writeable = False
                cache.put(keys[i], row)
                found[i] = row
        return np.vstack(found)

    def fill(self, vector: np.ndarray, values: dict) -> None:
        for column, positions, relative, cache in self.parts:
            key = values[column]
            row = cache.get(key)
            if row is None:
                row = self._lookup(column, relative, cache, [key])[0]
            vector[positions] = row

    def fill_batch(self, matrix: np.ndarray, columns: dict) -> None:
        for column, positions, relative, cache in self.parts:
            codes, distinct = _codes(columns[column])
            keys = list(distinct) + [None]
            matrix[:, positions] = self._lookup(column, relative, cache, keys)[codes]


def _known_labels(transformer, cols: list[str], column: str, schema: InputSchema) -> list[str]:
    index = cols.index(column)
    labels: dict[str, None] = {}
    for step in _flatten(transformer):
        categories = getattr(step, "categories_", None)
        if categories is not None and len(categories) == len(cols):
            for label in categories[index]:
                if isinstance(label, str):
                    labels.setdefault(label, None)
    if not labels:
        raise Unsupported(f"no known labels for column {column!r} in {type(transformer).__name__}")
    for label in schema.stats.get(column, {}).get("categories") or []:
        labels.setdefault(str(label), None)
    return list(labels)


def _base_value(schema: InputSchema, column: str):
    rule = schema.rules[column]
    info = schema.stats.get(column, {})
    if rule.kind in (NUMERIC, BOOLEAN):
        return float(info.get("median", 0.0) or 0.0)
    if rule.kind == DATETIME:
        return None
    if rule.kind == CATEGORICAL:
        return info.get("most_frequent")
    return ""


class VectorPlan:
    """A fitted `ColumnTransformer` compiled into blocks that fill one feature vector."""

    def __init__(self, prep, schema: InputSchema):
        if not hasattr(prep, "transformers_") or not hasattr(prep, "output_indices_"):
            raise Unsupported(f"preprocessor {type(prep).__name__} is not a ColumnTransformer")
        self.width = max((s.stop for s in prep.output_indices_.values()), default=0)
        covered = np.zeros(self.width, dtype=int)
        owners = None
        self.blocks: list = []
        for name, transformer, columns in prep.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            sl = prep.output_indices_[name]
            width = sl.stop - sl.start
            if width == 0:
                continue
            if name == "remainder":
                raise Unsupported("a ColumnTransformer that passes remaining columns through")
            cols = [columns] if isinstance(columns, str) else list(columns)
            unknown = [c for c in cols if c not in schema.rules]
            if unknown:
                raise Unsupported(f"columns {unknown} are not inputs of the cleaner")
            kinds = {schema.rules[c].kind for c in cols}
            if kinds <= {NUMERIC, BOOLEAN}:
                block = _NumericBlock(transformer, cols, sl.start, width)
            elif kinds == {CATEGORICAL}:
                block = _LabelTableBlock(transformer, columns, sl.start, width, schema)
            elif kinds <= {DATETIME, TEXT, CATEGORICAL, NUMERIC, BOOLEAN}:
                if owners is None and len(cols) > 1:
                    from automl_core.preprocess import original_column_of

                    owners = original_column_of(prep)
                block = _CachedBlock(transformer, columns, sl.start, width, owners or [], schema)
            else:  # pragma: no cover - the cleaner only produces the kinds above
                raise Unsupported(f"columns of kinds {sorted(kinds)}")
            covered[sl] += 1
            self.blocks.append(block)
        if (covered != 1).any():
            raise Unsupported("the ColumnTransformer's outputs overlap or leave gaps")

    def vector(self, values: dict) -> np.ndarray:
        out = np.empty((1, self.width), dtype=np.float64)
        for block in self.blocks:
            block.fill(out[0], values)
        return out

    def matrix(self, columns: dict, n: int) -> np.ndarray:
        """The feature matrix of n typed rows given as one array per column."""
        out = np.empty((n, self.width), dtype=np.float64)
        for block in self.blocks:
            block.fill_batch(out, columns)
        return out


# --------------------------------------------------------------------------- models
def model_caller(model, task: str):
    """A function from a (1, n) feature vector to the model's output: probabilities or values."""
    family = getattr(model, "family", None)
    estimator = getattr(model, "estimator_", None)
    classification = task in CLASSIFICATION
    if family == "lightgbm" and estimator is not None and hasattr(estimator, "booster_"):
        booster = estimator.booster_
        cores = os.cpu_count() or 1

        def threads(x: np.ndarray) -> int:
            # one row on one thread (waking OpenMP workers costs more than the trees); large batches on all cores
            return cores if x.shape[0] >= _THREADED_ROWS else 1

        if classification:

            def lightgbm_proba(x: np.ndarray) -> np.ndarray:
                result = booster.predict(x, num_threads=threads(x))
                if result.ndim == 1:
                    result = np.vstack((1.0 - result, result)).transpose()
                return np.asarray(result, dtype=float)

            return lightgbm_proba

        floor = getattr(model, "target_floor_", None)

        def lightgbm_values(x: np.ndarray) -> np.ndarray:
            values = np.asarray(booster.predict(x, num_threads=threads(x)), dtype=float)
            return values if floor is None else np.maximum(values, floor)

        return lightgbm_values
    if family in _SINGLE_THREAD_FAMILIES and estimator is not None and hasattr(estimator, "n_jobs"):
        # the same fitted trees or neighbours, without starting worker threads for one row
        model = copy.copy(model)
        model.estimator_ = copy.copy(estimator)
        model.estimator_.n_jobs = 1
    if classification:
        return model.predict_proba
    if task in ("regression", "timeseries"):
        return lambda x: np.asarray(model.predict(x), dtype=float)
    return model.predict


class FastPath:
    """A compiled single-row predictor for one pipeline; `Unsupported` when it cannot be compiled."""

    def __init__(self, pipeline, schema: InputSchema, task: str, *, self_check: bool = True):
        self.schema = schema
        self.task = task
        steps = dict(pipeline.steps)
        model = pipeline.steps[-1][1]
        self.classes = getattr(model, "classes_", None) if task in CLASSIFICATION else None
        members = getattr(model, "estimators_", None)
        if len(pipeline.steps) == 3 and "prep" in steps:
            self.plans = [(VectorPlan(steps["prep"], schema), model_caller(model, task))]
            self.combine = None
        elif len(pipeline.steps) == 2 and members is not None and hasattr(model, "_combine"):
            self.plans = []
            for _, member in members:
                member_steps = dict(getattr(member, "steps", []))
                if set(member_steps) != {"prep", "model"}:
                    raise Unsupported("an ensemble member that is not a prep + model pipeline")
                self.plans.append(
                    (VectorPlan(member_steps["prep"], schema), model_caller(member_steps["model"], task))
                )
            self.combine = model._combine
        else:
            raise Unsupported(f"a pipeline of steps {[name for name, _ in pipeline.steps]}")
        if task in CLASSIFICATION and self.classes is None:
            raise Unsupported("a classifier without classes_")
        if self_check:
            self._check(pipeline)

    def outputs(self, values: dict) -> np.ndarray:
        """Probabilities (1, k) for classifiers, values (1,) otherwise."""
        if self.combine is None:
            plan, call = self.plans[0]
            return call(plan.vector(values))
        return self.combine([call(plan.vector(values)) for plan, call in self.plans])

    def outputs_batch(self, columns: dict, n: int) -> np.ndarray:
        """Probabilities (n, k) for classifiers, values (n,) otherwise, for typed column arrays."""
        if self.combine is None:
            plan, call = self.plans[0]
            return call(plan.matrix(columns, n))
        return self.combine([call(plan.matrix(columns, n)) for plan, call in self.plans])

    def predict(self, values: dict) -> tuple[Any, np.ndarray | None]:
        """(prediction, probabilities or None) for one typed row."""
        output = self.outputs(values)
        if self.classes is not None:
            return self.classes[int(np.argmax(output[0]))], output[0]
        return output[0], None

    def _check(self, pipeline) -> None:
        rows = probe_rows(self.schema)
        rest = pipeline[1:]
        frame = typed_frame(self.schema, rows)
        if self.task in CLASSIFICATION:
            expected = np.asarray(rest.predict_proba(frame), dtype=float)
        else:
            expected = np.asarray(rest.predict(frame))
        got = (
            np.vstack([self.outputs(row) for row in rows])
            if self.task in CLASSIFICATION
            else np.concatenate([np.atleast_1d(self.outputs(row)) for row in rows])
        )
        columns = {
            name: _column_values(self.schema.rules[name].kind, [row[name] for row in rows])
            for name in self.schema.columns
        }
        for produced in (got, self.outputs_batch(columns, len(rows))):
            if expected.dtype.kind in "fc":
                ok = produced.shape == expected.shape and np.allclose(
                    produced, expected, rtol=1e-9, atol=1e-12, equal_nan=True
                )
            else:
                ok = produced.shape == expected.shape and bool(np.all(produced == expected))
            if not ok:
                raise Unsupported(
                    "self-check failed: the compiled path differs from the pipeline on probe rows"
                )


def probe_rows(schema: InputSchema, n: int = _PROBE_ROWS) -> list[dict]:
    """Typed rows covering typical, extreme, missing and unseen values of every column."""
    options: dict[str, list] = {}
    rng = np.random.default_rng(0)
    for name, rule in schema.rules.items():
        info = schema.stats.get(name, {})
        if rule.kind == NUMERIC:
            low, high = float(info.get("min", 0.0)), float(info.get("max", 1.0))
            median = float(info.get("median", (low + high) / 2))
            values = [
                median,
                math.nan,
                low,
                high,
                *rng.uniform(low, high, 4).tolist(),
                high + abs(high - low) + 1,
            ]
        elif rule.kind == BOOLEAN:
            values = [1.0, 0.0, math.nan]
        elif rule.kind == DATETIME:
            values = [None]
            for key in ("median", "min", "max"):
                if info.get(key):
                    values.insert(0, np.datetime64(str(info[key]).replace(" ", "T"), "ns"))
        elif rule.kind == CATEGORICAL:
            values = [*(info.get("categories") or [])[:12], None, UNSEEN_LABEL]
        else:
            values = [*(info.get("examples") or [])[:6], None, "words never seen in training"]
        options[name] = values
    rows = []
    for i in range(n):
        rows.append(
            {
                name: values[(i * (1 + j % 3) + j) % len(values)]
                for j, (name, values) in enumerate(options.items())
            }
        )
    return rows
