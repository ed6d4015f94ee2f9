"""Checking request rows against a model's input schema, and reading them the way training did.

The schema is the pipeline's own `TableCleaner`: its input columns, the kind of each, the rule a
column's numbers are written with ("$90,000.00", "36 months") and the date format. A row is read
value by value (`type_row`, the single-row path, no pandas) or column by column (`type_frame`, for
batches); both give the values the cleaner would give, so the rest of the pipeline sees exactly
what it saw in training. A missing column, a value of the wrong type or a value that cannot be
read is refused (422) naming the column and the value; extra columns are ignored and reported;
labels never seen in training are accepted (every encoder maps unseen labels to "unknown") and
reported as warnings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from automl_core.parsing import (
    _NUMBER,
    _PAREN_NEGATIVE,
    NA_TOKENS,
    NumberRule,
    _normalise_unit,
    parse_boolean_value,
)

from .errors import invalid_input
from .payloads import json_type

NUMERIC, BOOLEAN, DATETIME, CATEGORICAL, TEXT = "numeric", "boolean", "datetime", "categorical", "text"
LABEL_KINDS = (CATEGORICAL, TEXT)
MAX_REPORTED_PROBLEMS = 20
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)
_PLAIN_DECIMAL = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)$", re.ASCII)
PLAIN_RULE = NumberRule(thousands="")
# Text the scalar number reader handles itself; anything else goes through the column reader of
# `automl_core.parsing` (exact by definition, just slower).
_SIMPLE_TEXT = re.compile(r"^[0-9A-Za-z .,'()<>~=+%$€£¥₹\-−≈/]*$")
_DATE_CACHE = 4096


@dataclass(frozen=True)
class ColumnRule:
    """How one input column is read: its kind, number rule, date format and known labels."""

    name: str
    kind: str
    number_rule: Any = None
    date_format: str | None = None
    categories: frozenset | None = None


@dataclass
class TypedRow:
    """One row read for the model: typed values, JSON-safe values for the log, warnings, ignored columns."""

    values: dict[str, Any]
    logged: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


@dataclass
class TypedFrame:
    """A batch read for the model: one typed array per input column, unseen labels, ignored columns.

    `columns` holds float64 arrays for numbers and yes/no, object arrays of str/None for labels and
    text, datetime64[ns] arrays for dates; `frame` is the same as a DataFrame (what `TableCleaner`
    would return), built on first use.
    """

    columns: dict[str, Any]
    kinds: dict[str, str]
    raw_dates: dict[str, Any]
    unseen: dict[str, tuple[int, str]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    _frame: Any = None

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def frame(self):
        if self._frame is None:
            import pandas as pd

            data = {
                name: pd.Series(values, dtype="str") if self.kinds[name] in LABEL_KINDS else values
                for name, values in self.columns.items()
            }
            self._frame = pd.DataFrame(data, index=pd.RangeIndex(len(self)))
        return self._frame

    def slice(self, lo: int, hi: int) -> TypedFrame:
        """Rows lo..hi as a TypedFrame of their own."""
        return TypedFrame(
            {k: v[lo:hi] for k, v in self.columns.items()},
            self.kinds,
            {k: v[lo:hi] for k, v in self.raw_dates.items()},
            self.unseen,
            self.ignored,
        )

    @property
    def warnings(self) -> list[str]:
        return batch_warnings(self.unseen, self.ignored)


def batch_warnings(unseen: dict[str, tuple[int, str]], ignored: list[str]) -> list[str]:
    """Warnings of a batch: labels not seen in training per column, and ignored columns."""
    out = []
    for name, (count, example) in unseen.items():
        out.append(
            f"column {name!r}: {count} row{'s' if count > 1 else ''} hold labels not seen in training "
            f"(for example {example!r}); the model treats them as unknown labels"
        )
    if ignored:
        out.append(_ignored_warning(ignored))
    return out


class Problem(ValueError):
    """One value that cannot be used: the problem code and a sentence."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _is_na_text(text: str) -> bool:
    return text.lower() in NA_TOKENS


def _scalar_number(text: str, rule) -> float:
    """A number written as text, read exactly like `parsing.parse_numbers` reads a column.

    A column trained on clean numbers (no rule) reads text the way `intake.typed_column` does: with
    the plain rule (no thousands separator), so "$12" is 12 and "12 kg" is 12, like in the cleaner.
    """
    if rule is None:
        if _PLAIN_DECIMAL.match(text):  # what the plain rule gives for these, without the regex work
            return float(text)
        number = _scalar_number(text, PLAIN_RULE)
        return number if number == number else _number_by_its_own_rule(text)
    if not _SIMPLE_TEXT.match(text):
        from automl_core.parsing import parse_number_value

        try:
            return parse_number_value(text, rule)
        except ValueError:
            return math.nan
    paren = _PAREN_NEGATIVE.match(text)
    body = paren.group("inner") if paren else text
    parts = _NUMBER.search(body)
    if parts is None:
        return math.nan
    cleaned = re.sub(r"[\s']", "", parts.group("num"))
    if rule.thousands:
        cleaned = cleaned.replace(rule.thousands, "")
    if rule.decimal != ".":
        cleaned = cleaned.replace(rule.decimal, ".")
    if not _PLAIN_NUMBER.match(cleaned):
        return math.nan
    number = float(cleaned)
    if rule.unit is not None:
        unit = _normalise_unit(parts.group("unit"))
        if unit is not None and unit != rule.unit:
            return math.nan
    negative = parts.group("neg1") is not None or parts.group("neg2") is not None or paren is not None
    number = number * (-1.0 if negative else 1.0)
    if (parts.group("cmp") or "").startswith("<"):
        number = number - 0.5 if number >= 1 else number / 2
    return number


@lru_cache(maxsize=1024)
def _number_by_its_own_rule(text: str) -> float:
    """Text the plain rule cannot read ("1,639.3", "2,5"), in a column trained on clean numbers, read
    by the rule its own digits follow: what a prediction file of this one row gives."""
    if not any(ch.isdigit() for ch in text):
        return math.nan
    import pandas as pd

    from automl_core.parsing import parse_numbers, rule_of_digits

    cell = pd.Series([text], dtype=object)
    return float(parse_numbers(cell, rule_of_digits(cell)).iloc[0])


def read_number(value: Any, rule) -> float:
    """One numeric cell: NaN when missing; `Problem` for the wrong type or text that is not a number."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise Problem("wrong_type", f"expected a number, got {json_type(value)} ({str(value).lower()})")
    if isinstance(value, (int, float)):
        number = float(value)
        if number != number:
            return math.nan
        if math.isinf(number):
            raise Problem("unparsable", f"expected a finite number, got {value!r}")
        return number
    if not isinstance(value, str):
        raise Problem("wrong_type", f"expected a number, got {json_type(value)}")
    text = value.strip()
    if _is_na_text(text):
        return math.nan
    number = _scalar_number(text, rule)
    if number != number:
        written = f" (written like {rule.describe()})" if rule is not None else ""
        raise Problem("unparsable", f"{value!r} is not a number{written}")
    if math.isinf(number):
        raise Problem("unparsable", f"expected a finite number, got {value!r}")
    return number


def read_boolean(value: Any) -> float:
    """One yes/no cell as 1.0 / 0.0 / NaN."""
    if isinstance(value, (list, dict)):
        raise Problem("wrong_type", f"expected true/false, got {json_type(value)}")
    try:
        return parse_boolean_value(value)
    except ValueError:
        raise Problem("unparsable", f"expected true/false or yes/no, got {value!r}") from None


def read_label(value: Any) -> str | None:
    """One label or text cell, cleaned like `parsing.clean_text` (stripped; NA words are missing)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Problem("wrong_type", f"expected a label (text), got {json_type(value)}")
    if isinstance(value, float) and value != value:
        return None
    text = (value if isinstance(value, str) else str(value)).strip()
    if _is_na_text(text):
        return None
    return text


@lru_cache(maxsize=_DATE_CACHE)
def _parse_date(text: str, date_format: str | None):
    import pandas as pd

    from automl_core.parsing import parse_dates

    parsed = parse_dates(pd.Series([text], dtype=object), date_format).iloc[0]
    return None if pd.isna(parsed) else parsed.to_datetime64()


def read_date(value: Any, date_format: str | None):
    """One date cell as numpy datetime64[ns] (None when missing), read like `parsing.parse_dates`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Problem(
            "wrong_type", f"expected a date as text (for example 2024-01-31), got {json_type(value)}"
        )
    text = value.strip()
    if _is_na_text(text):
        return None
    parsed = _parse_date(text, date_format)
    if parsed is None:
        shown = f" in the format {date_format}" if date_format else ""
        raise Problem("unparsable", f"{value!r} is not a date{shown}")
    return parsed


class InputSchema:
    """The input contract of one fitted pipeline, read from its `TableCleaner`."""

    def __init__(self, cleaner, known_categories: Mapping[str, set] | None = None):
        self.columns: list[str] = list(cleaner.input_columns_)
        self.stats: dict[str, dict] = dict(getattr(cleaner, "schema_", {}) or {})
        known = dict(known_categories or {})
        rules = {}
        for name in self.columns:
            spec = cleaner.specs_[name]
            categories = None
            if spec.kind in LABEL_KINDS:
                info = self.stats.get(name, {})
                labels = set(info.get("categories") or [])
                labels |= {str(c) for c in known.get(name, ())}
                complete = spec.kind == CATEGORICAL and (
                    name in known or int(info.get("n_categories", 0)) <= len(info.get("categories") or [])
                )
                categories = frozenset(labels) if complete else None
            rules[name] = ColumnRule(name, spec.kind, spec.number_rule, spec.date_format, categories)
        self.rules: dict[str, ColumnRule] = rules
        self._column_set = frozenset(self.columns)

    @classmethod
    def from_pipeline(cls, pipeline) -> InputSchema:
        """The schema of a pipeline whose first step is a fitted `TableCleaner`."""
        cleaner = pipeline.steps[0][1]
        if not hasattr(cleaner, "input_columns_") or not hasattr(cleaner, "specs_"):
            from .errors import ApiError

            raise ApiError(
                500,
                "unservable_model",
                f"this model cannot be served: its pipeline starts with {type(cleaner).__name__}, "
                "expected a fitted TableCleaner",
            )
        return cls(cleaner, encoder_categories(pipeline))

    # ------------------------------------------------------------------------------ one row
    def type_row(self, row: Mapping[str, Any]) -> TypedRow:
        """Read one row; raises a 422 `ApiError` listing every bad or missing column."""
        values: dict[str, Any] = {}
        logged: dict[str, Any] = {}
        warnings: list[str] = []
        problems: list[dict] = []
        for name, rule in self.rules.items():
            if name not in row:
                problems.append(
                    {"column": name, "problem": "missing", "message": f"column {name!r} is missing"}
                )
                continue
            value = row[name]
            try:
                typed = self._read(rule, value)
            except Problem as exc:
                problems.append(_problem(name, value, exc))
                continue
            values[name] = typed
            if rule.kind in (NUMERIC, BOOLEAN):
                logged[name] = None if typed != typed else typed
            elif rule.kind == DATETIME:
                logged[name] = None if typed is None else value.strip()
            else:
                logged[name] = typed
                if typed is not None and rule.categories is not None and typed not in rule.categories:
                    warnings.append(_unknown_label_warning(name, typed))
        if problems:
            raise _invalid(problems)
        ignored = [name for name in row if name not in self._column_set]
        if ignored:
            warnings.append(_ignored_warning(ignored))
        return TypedRow(values, logged, warnings, ignored)

    def _read(self, rule: ColumnRule, value: Any):
        kind = rule.kind
        if kind == NUMERIC:
            return read_number(value, rule.number_rule)
        if kind in LABEL_KINDS:
            return read_label(value)
        if kind == BOOLEAN:
            return read_boolean(value)
        if kind == DATETIME:
            return read_date(value, rule.date_format)
        raise Problem("unsupported", f"columns of kind {kind!r} cannot be read")  # pragma: no cover

    # ------------------------------------------------------------------------------ many rows
    def type_frame(self, frame, *, first_row: int = 0) -> TypedFrame:
        """Read a frame of raw rows (object or str columns); 422 lists the first bad cells.

        `first_row` numbers the rows in messages when the frame is one chunk of a larger batch.
        """

        missing = [name for name in self.columns if name not in frame.columns]
        if missing:
            raise _invalid(
                [
                    {"column": name, "problem": "missing", "message": f"column {name!r} is missing"}
                    for name in missing
                ]
            )
        arrays: dict[str, Any] = {}
        raw_dates: dict[str, Any] = {}
        unseen_labels: dict[str, tuple[int, str]] = {}
        problems: list[dict] = []
        for name, rule in self.rules.items():
            column = frame[name]
            typed, bad, unseen = self._type_column(rule, column)
            for i, value, exc in bad[: MAX_REPORTED_PROBLEMS - len(problems)]:
                problems.append({**_problem(name, value, exc), "row": int(first_row + i)})
            if len(problems) >= MAX_REPORTED_PROBLEMS:
                break
            if bad:
                continue
            arrays[name] = typed
            if unseen is not None:
                unseen_labels[name] = unseen
            if rule.kind == DATETIME:
                raw_dates[name] = column.to_numpy(dtype=object)
        if problems:
            raise _invalid(problems)
        ignored = [str(c) for c in frame.columns if c not in self._column_set]
        kinds = {name: rule.kind for name, rule in self.rules.items()}
        return TypedFrame(arrays, kinds, raw_dates, unseen_labels, ignored)

    def _type_column(self, rule: ColumnRule, column):
        """(typed array, [(row, value, Problem)...], (unseen count, example) or None) for one raw column.

        Every distinct value goes once through the single-row reader, so a batch is read exactly
        like the same rows sent one by one; columns that already hold numbers or dates skip that.
        """
        import numpy as np
        import pandas as pd

        kind = rule.kind
        dtype = column.dtype
        numeric_dtype = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        if kind in (NUMERIC, BOOLEAN) and numeric_dtype:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            wrong = (
                np.isinf(values)
                if kind == NUMERIC
                else ~(np.isnan(values) | (values == 0.0) | (values == 1.0))
            )
            return values, self._problems(rule, column, np.flatnonzero(wrong)), None
        if kind == DATETIME and pd.api.types.is_datetime64_any_dtype(dtype):
            from automl_core.parsing import parse_dates

            return parse_dates(column, rule.date_format).to_numpy(), [], None
        raw = column.to_numpy(dtype=object)
        if kind == NUMERIC and pd.api.types.infer_dtype(raw, skipna=True) in (
            "integer",
            "floating",
            "mixed-integer-float",
            "empty",
        ):
            values = pd.Series(raw, dtype=object).astype(np.float64).to_numpy()
            return values, self._problems(rule, column, np.flatnonzero(np.isinf(values))), None
        try:
            codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        except TypeError:  # unhashable cells (lists, objects): read cell by cell
            codes, uniques = np.arange(len(raw)), raw
        read = self._reader(rule)
        typed_uniques, bad_codes = [], {}
        for j, value in enumerate(uniques):
            try:
                typed_uniques.append(read(value))
            except Problem as exc:
                bad_codes[j] = exc
                typed_uniques.append(None)
        if bad_codes:
            rows = np.flatnonzero(np.isin(codes, list(bad_codes)))[:MAX_REPORTED_PROBLEMS]
            return None, [(int(i), raw[i], bad_codes[int(codes[i])]) for i in rows], None
        missing = {NUMERIC: np.nan, BOOLEAN: np.nan, DATETIME: np.datetime64("NaT", "ns")}.get(kind)
        if kind in (NUMERIC, BOOLEAN):
            lookup = np.array([*typed_uniques, missing], dtype=np.float64)
        elif kind == DATETIME:
            lookup = np.array(
                [missing if v is None else v for v in typed_uniques] + [missing], dtype="datetime64[ns]"
            )
        else:
            lookup = np.array([*typed_uniques, None], dtype=object)
        values = lookup[codes]  # code -1 (missing) picks the last entry
        unseen = None
        if rule.categories is not None:
            unseen_codes = [
                j for j, v in enumerate(typed_uniques) if v is not None and v not in rule.categories
            ]
            if unseen_codes:
                count = int(np.isin(codes, unseen_codes).sum())
                unseen = (count, str(typed_uniques[unseen_codes[0]]))
        return values, [], unseen

    def _reader(self, rule: ColumnRule):
        kind = rule.kind
        if kind == NUMERIC:
            return lambda value: read_number(value, rule.number_rule)
        if kind in LABEL_KINDS:
            return read_label
        if kind == BOOLEAN:
            return read_boolean
        return lambda value: read_date(value, rule.date_format)

    def _problems(self, rule: ColumnRule, column, rows) -> list[tuple]:
        out = []
        for i in rows[:MAX_REPORTED_PROBLEMS]:
            value = column.iloc[int(i)]
            value = value.item() if hasattr(value, "item") else value
            try:
                self._read(rule, value)
                exc = Problem("unparsable", f"{value!r} cannot be read as {rule.kind}")
            except Problem as found:
                exc = found
            out.append((int(i), value, exc))
        return out

    # ------------------------------------------------------------------------------ description
    def describe(self) -> list[dict]:
        """Per input column: name, kind, how it is read and what training saw (for docs and forms)."""
        out = []
        for name, rule in self.rules.items():
            info = {k: v for k, v in self.stats.get(name, {}).items() if k != "kind"}
            entry = {"name": name, "kind": rule.kind, **info}
            if rule.number_rule is not None:
                entry["number_format"] = rule.number_rule.describe()
            if rule.date_format:
                entry["date_format"] = rule.date_format
            out.append(entry)
        return out

    def example_row(self) -> dict[str, Any]:
        """A plausible row built from the training statistics (medians and most frequent labels)."""
        row: dict[str, Any] = {}
        for name, rule in self.rules.items():
            info = self.stats.get(name, {})
            if rule.kind == NUMERIC:
                median = info.get("median")
                row[name] = None if median is None else (int(median) if info.get("integer") else median)
            elif rule.kind == BOOLEAN:
                row[name] = bool(info.get("true_share", 0) >= 0.5)
            elif rule.kind == DATETIME:
                row[name] = str(info.get("median") or "2024-01-01")[:10] if not rule.date_format else None
            elif rule.kind == CATEGORICAL:
                row[name] = info.get("most_frequent")
            else:
                examples = info.get("examples") or [""]
                row[name] = examples[0]
        return row


def _problem(name: str, value: Any, exc: Problem) -> dict:
    shown = value if value is None or isinstance(value, (str, int, float, bool)) else json_type(value)
    return {"column": name, "value": shown, "problem": exc.code, "message": f"column {name!r}: {exc}"}


def _invalid(problems: list[dict]):
    first = problems[0]
    more = (
        f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        if len(problems) > 1
        else ""
    )
    where = f"row {first['row']}: " if "row" in first else ""
    return invalid_input(f"{where}{first['message']}{more}", problems)


def _unknown_label_warning(name: str, label: str) -> str:
    return f"column {name!r}: {label!r} was not seen in training; the model treats it as an unknown label"


def _ignored_warning(ignored: list[str]) -> str:
    shown = ", ".join(map(repr, ignored[:10])) + (" ..." if len(ignored) > 10 else "")
    return f"column{'s' if len(ignored) > 1 else ''} {shown} {'are' if len(ignored) > 1 else 'is'} not an input of the model and {'were' if len(ignored) > 1 else 'was'} ignored"


def encoder_categories(pipeline) -> dict[str, set]:
    """Labels each categorical column's encoders know (every member of an ensemble), by column."""
    found: dict[str, set] = {}
    for prep in _preprocessors(pipeline):
        for _, transformer, columns in getattr(prep, "transformers_", []):
            cols = [columns] if isinstance(columns, str) else list(columns)
            for step in _flatten(transformer):
                categories = getattr(step, "categories_", None)
                if categories is None or len(categories) != len(cols):
                    continue
                for col, labels in zip(cols, categories, strict=True):
                    found.setdefault(col, set()).update(str(c) for c in labels if isinstance(c, str))
    return found


def _flatten(transformer) -> list:
    steps = getattr(transformer, "steps", None)
    if steps is None:
        return [transformer]
    out = []
    for _, step in steps:
        out.extend(_flatten(step))
    return out


def _preprocessors(pipeline) -> list:
    named = dict(pipeline.steps)
    preps = []
    if "prep" in named:
        preps.append(named["prep"])
    model = pipeline.steps[-1][1]
    for _, member in getattr(model, "estimators_", None) or []:
        member_steps = dict(getattr(member, "steps", []))
        if "prep" in member_steps:
            preps.append(member_steps["prep"])
    return preps
