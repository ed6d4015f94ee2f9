"""Reading a table as an analyst uploads it, and profiling what each column is.

`read_table` turns a CSV or Parquet file (path, bytes or an uploaded file object) into a pandas
frame: DuckDB's CSV sniffer finds the delimiter, quoting, header and the clean types; encodings
(UTF-8 with or without BOM, UTF-16, Latin-1), blank lines and all-empty rows are handled here.
`profile_table` then decides, per column, what kind of values it holds and which role it will
play, and says why, so the UI can show every decision without recomputing it.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from .errors import DataError, TargetError
from .parsing import (
    NumberRule,
    clean_text,
    infer_boolean,
    infer_date_format,
    infer_number_rule,
    parse_numbers,
    rule_of_digits,
)

KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant", "empty")
FEATURE_KINDS = ("numeric", "categorical", "boolean", "datetime", "text")
_ID_NAME = re.compile(r"(^|[_\s.-])(id|key|uuid|guid|index|idx|no|number|code)$|^id[_\s]|^(id|index)$", re.I)
_MAX_TEXT_SNIFF_BYTES = 1 << 20
_PARQUET_MAGIC = b"PAR1"

Source = str | os.PathLike | bytes | IO[bytes] | pd.DataFrame


@dataclass(frozen=True)
class ColumnSpec:
    """What a column holds and how to read it: the decision, learned once, reused at predict time."""

    name: str
    kind: str
    number_rule: NumberRule | None = None
    date_format: str | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["number_rule"] = asdict(self.number_rule) if self.number_rule else None
        return out


@dataclass
class ColumnProfile:
    """One column's profile: kind, role, the reason, and the numbers behind the decision."""

    name: str
    kind: str
    role: str
    reason: str
    dtype: str
    missing_share: float
    n_unique: int
    examples: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    spec: ColumnSpec | None = field(default=None, repr=False)


@dataclass
class TableProfile:
    """The profile of a whole table: columns, row counts and the warnings a person should read."""

    source: str
    n_rows: int
    n_columns: int
    columns: list[ColumnProfile]
    warnings: list[str]
    fingerprint: str
    empty_rows_dropped: int = 0
    duplicate_rows: int = 0
    target: str | None = None
    unlabeled_rows: int = 0

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def specs(self) -> dict[str, ColumnSpec]:
        return {c.name: c.spec for c in self.columns}

    def to_frame(self) -> pd.DataFrame:
        """A table for display: one row per column."""
        return pd.DataFrame(
            [
                {
                    "column": c.name,
                    "kind": c.kind,
                    "role": c.role,
                    "missing %": round(100 * c.missing_share, 1),
                    "unique": c.n_unique,
                    "examples": ", ".join(c.examples[:3]),
                    "reason": c.reason,
                }
                for c in self.columns
            ]
        )

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "columns"}
        out["columns"] = [
            {
                **{k: v for k, v in asdict(c).items() if k not in ("stats", "spec")},
                "stats": c.stats,
                "spec": c.spec.to_dict() if c.spec else None,
            }
            for c in self.columns
        ]
        return out


# --------------------------------------------------------------------------- reading
def _source_name(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    return getattr(source, "name", None) or "uploaded data"


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"file '{path}' does not exist")
        if path.is_dir():
            raise DataError(f"'{path}' is a folder, expected a CSV or Parquet file")
        return path.read_bytes()
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if hasattr(source, "getvalue"):
        return bytes(source.getvalue())
    if hasattr(source, "read"):
        data = source.read()
        return data.encode() if isinstance(data, str) else bytes(data)
    raise DataError(f"cannot read data from a {type(source).__name__}; give a file path or bytes")


def _detect_encoding(raw: bytes, name: str) -> str:
    """Pick the text encoding, or refuse a file that is not text at all."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = raw[:_MAX_TEXT_SNIFF_BYTES]
    if b"\x00" in head:
        raise DataError(f"'{name}' is not a text file (it contains binary bytes); expected a CSV or Parquet file")
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A cut in the middle of a multi-byte character at the sniff boundary is still UTF-8.
        if exc.start >= len(head) - 4 and len(raw) > len(head):
            return "utf-8"
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    if controls > len(head) * 0.01:
        raise DataError(f"'{name}' is not a text file; expected a CSV or Parquet file")
    return "latin-1"


def _duckdb_read_csv(path: str, encoding: str, all_varchar: bool) -> pd.DataFrame:
    """Read with DuckDB's sniffer; booleans are re-read as text so labels stay as written."""
    import duckdb

    options = {
        "header": True,
        "encoding": encoding,
        "null_padding": True,
        "all_varchar": all_varchar,
        "sample_size": -1 if os.path.getsize(path) < (64 << 20) else 20480,
    }
    con = duckdb.connect()
    try:
        relation = con.read_csv(path, **options)
        # Booleans and dates are re-read as text: labels stay as written, and the date format is
        # learned from the text so new files are read the same way (day-first stays day-first).
        textual = ("BOOLEAN", "DATE", "TIMESTAMP", "TIME", "TIMESTAMP WITH TIME ZONE")
        as_text = {name: "VARCHAR" for name, kind in zip(relation.columns, relation.types) if str(kind) in textual}
        if as_text:
            relation = con.read_csv(path, **options, dtype=as_text)
        return relation.df()
    finally:
        con.close()


def _pandas_read_csv(raw: bytes, encoding: str) -> pd.DataFrame:
    text = raw.decode(encoding, errors="replace")
    return pd.read_csv(io.StringIO(text), sep=None, engine="python", dtype=str, skip_blank_lines=True)


def _normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain numpy-friendly dtypes: floats for numbers, naive datetimes, str for text."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.astype("float64") if s.isna().any() else s.astype(bool)
        elif pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(s):
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            out[col] = s.astype("datetime64[ns]")
        else:
            out[col] = s.astype("str")
    result = pd.DataFrame(out, index=frame.index)
    result.columns = [str(c).strip() or f"column_{i + 1}" for i, c in enumerate(frame.columns)]
    return result


def read_table(source: Source, *, name: str | None = None, drop_empty_rows: bool = True) -> pd.DataFrame:
    """Read a CSV or Parquet table into a frame, dropping blank lines and (by default) all-empty rows.

    Raises `DataError` naming the file for empty files, header-only files and binary files.
    The number of all-empty rows dropped is kept in `frame.attrs["empty_rows_dropped"]` and the
    SHA-256 of the bytes read in `frame.attrs["fingerprint"]`. Prediction inputs pass
    `drop_empty_rows=False`, so the output has the same rows, in the same order, as the input.
    """
    label = _source_name(source, name)
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        fingerprint = _frame_fingerprint(frame)
    else:
        raw = _read_bytes(source)
        fingerprint = hashlib.sha256(raw).hexdigest()
        if not raw.strip():
            raise DataError(f"'{label}' is empty: expected a header line and at least one data row")
        if raw[:4] == _PARQUET_MAGIC:
            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            frame = _read_csv_bytes(raw, label)
    frame = _normalise_frame(frame)
    if frame.shape[1] == 0:
        raise DataError(f"'{label}' has no columns")
    empty = frame.isna().all(axis=1)
    if not drop_empty_rows:
        empty[:] = False
    frame = frame.loc[~empty].reset_index(drop=True)
    if len(frame) == 0:
        raise DataError(f"'{label}' has a header ({', '.join(map(str, frame.columns[:5]))}...) but no data rows")
    frame.attrs["empty_rows_dropped"] = int(empty.sum())
    frame.attrs["fingerprint"] = fingerprint
    frame.attrs["source"] = label
    return frame


def _read_csv_bytes(raw: bytes, label: str) -> pd.DataFrame:
    encoding = _detect_encoding(raw, label)
    if encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if encoding == "utf-16":
        raw = raw.decode("utf-16").encode("utf-8")
        encoding = "utf-8"
    lines = [line for line in raw.splitlines() if line.strip()]
    if len(lines) < 2:
        raise DataError(f"'{label}' has a header line but no data rows")
    fd, tmp = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        errors = []
        for all_varchar in (False, True):
            try:
                return _duckdb_read_csv(tmp, encoding, all_varchar)
            except Exception as exc:  # noqa: BLE001 - DuckDB raises several types; fall back below
                errors.append(str(exc).splitlines()[0])
        try:
            return _pandas_read_csv(raw, encoding)
        except Exception as exc:  # noqa: BLE001
            errors.append(str(exc).splitlines()[0])
        raise DataError(f"could not read '{label}' as CSV: {errors[-1]}")
    finally:
        os.unlink(tmp)


def _frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 over the row hashes of the frame's values, its column names and dtypes. Values are
    hashed as they are (turning a million numbers into text first took 25 s for 23 columns)."""
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:  # unhashable cells (lists, dicts): hash their text
        hashed = pd.util.hash_pandas_object(frame.astype("string"), index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("|".join(f"{name}:{dtype}" for name, dtype in frame.dtypes.items()).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- column kinds
def _named_like_a_year(name: str) -> bool:
    """'year', 'Year', 'fiscal_year', 'ModelYear', 'yr': the last word of the name is a year."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)
    return bool(words) and words[-1].lower() in ("year", "yr", "yyyy")


def _looks_like_identifier_name(name: str) -> bool:
    return bool(_ID_NAME.search(name.strip()))


def infer_column_spec(series: pd.Series, name: str | None = None) -> ColumnSpec:
    """Decide the kind of one column and explain the decision in one sentence."""
    name = str(name if name is not None else series.name)
    n = len(series)
    if pd.api.types.is_bool_dtype(series) or (
        series.dtype == object and series.dropna().map(type).eq(bool).all() and series.notna().any()
    ):
        present = series.dropna()
        if present.nunique() <= 1:
            return ColumnSpec(name, "constant", reason="only one value")
        return ColumnSpec(name, "boolean", reason="true/false values")
    if pd.api.types.is_datetime64_any_dtype(series):
        present = series.dropna()
        if present.empty:
            return ColumnSpec(name, "empty", reason="no values at all")
        if present.nunique() <= 1:
            return ColumnSpec(name, "constant", reason=f"the same date in every row ({present.iloc[0].date()})")
        return ColumnSpec(name, "datetime", reason="dates read by the CSV reader")
    if pd.api.types.is_numeric_dtype(series):
        return _numeric_spec(series.astype("float64"), name, n, rule=None)
    text = clean_text(series)
    present = text.dropna()
    if present.empty:
        return ColumnSpec(name, "empty", reason="no values at all")
    n_unique = present.nunique()
    if n_unique == 1:
        return ColumnSpec(name, "constant", reason=f"the same value '{present.iloc[0]}' in every row")
    if infer_boolean(text):
        values = sorted(present.str.lower().unique())
        return ColumnSpec(name, "boolean", reason=f"two yes/no style values ({' / '.join(values)})")
    rule = infer_number_rule(text)
    if rule is not None:
        numbers = parse_numbers(text, rule)
        spec = _numeric_spec(numbers, name, n, rule=rule)
        if spec.kind == "numeric":
            return ColumnSpec(name, "numeric", rule, reason=f"numbers written as text: {rule.describe()}")
        return spec
    date_format = infer_date_format(text)
    if date_format is not None:
        return ColumnSpec(name, "datetime", date_format=date_format, reason=f"dates written as {date_format}")
    unique_ratio = n_unique / len(present)
    words = present.str.count(r"\s+") + 1
    mean_words = float(words.mean())
    if len(present) >= 20 and unique_ratio >= 0.99 and mean_words < 2 and present.str.len().max() <= 64:
        return ColumnSpec(name, "identifier", reason=f"a different value in every row ({n_unique} of {len(present)})")
    if (mean_words >= 3 and n_unique > 20) or (n_unique > 50 and unique_ratio > 0.2):
        return ColumnSpec(
            name,
            "text",
            reason=f"free text: {n_unique} distinct values, {mean_words:.1f} words on average",
        )
    return ColumnSpec(name, "categorical", reason=f"{n_unique} distinct labels")


def _numeric_spec(values: pd.Series, name: str, n: int, rule: NumberRule | None) -> ColumnSpec:
    present = values.dropna()
    if present.empty:
        return ColumnSpec(name, "empty", reason="no values at all")
    n_unique = present.nunique()
    if n_unique == 1:
        return ColumnSpec(name, "constant", reason=f"the same value {present.iloc[0]:g} in every row")
    integral = bool(np.all(np.mod(present.to_numpy(), 1) == 0))
    if integral and n_unique == len(present) and _named_like_a_year(name) and present.between(1000, 2999).all():
        # One row per year (1950, 1951, ...): a time axis, not a running number to drop.
        return ColumnSpec(name, "datetime", rule, date_format="%Y",
                          reason="whole numbers named like a year, one row per year: read as years")
    if integral and len(present) >= 20 and n_unique == len(present) == n:
        diffs = np.diff(present.to_numpy())
        consecutive = bool(np.all(diffs == 1) or np.all(diffs == -1))
        if consecutive or _looks_like_identifier_name(name):
            why = "a running number" if consecutive else "named like an identifier"
            return ColumnSpec(name, "identifier", rule, reason=f"{why}, a different value in every row")
    return ColumnSpec(name, "numeric", rule, reason="numbers")


# --------------------------------------------------------------------------- profile
def _column_stats(values: pd.Series, kind: str) -> dict:
    present = values.dropna()
    if kind == "numeric" and len(present):
        q = present.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
        return {
            "min": float(q[0]),
            "q1": float(q[1]),
            "median": float(q[2]),
            "q3": float(q[3]),
            "max": float(q[4]),
            "mean": float(present.mean()),
            "std": float(present.std()) if len(present) > 1 else 0.0,
        }
    if kind in ("categorical", "boolean", "text", "identifier", "constant") and len(present):
        top = present.astype(str).value_counts().head(10)
        return {"top": {str(k): int(v) for k, v in top.items()}}
    if kind == "datetime" and len(present):
        return {"min": str(present.min()), "max": str(present.max())}
    return {}


def typed_column(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """The column's values read according to its spec (numbers as floats, dates as datetimes)."""
    from .parsing import parse_booleans, parse_dates

    if spec.kind == "numeric":
        if spec.number_rule is not None or not pd.api.types.is_numeric_dtype(series):
            # Text in a column trained on clean numbers ("n/a", or "1,639.3" from a spreadsheet) is read
            # with the rule its own values follow, falling back to plain numbers.
            rule = spec.number_rule or rule_of_digits(series)
            return parse_numbers(series, rule)
        return series.astype("float64")
    if spec.kind == "boolean":
        return parse_booleans(series)
    if spec.kind == "datetime":
        return parse_dates(series, spec.date_format)
    if spec.kind in ("categorical", "text", "identifier", "constant"):
        return clean_text(series) if not pd.api.types.is_numeric_dtype(series) else series
    return series


def _first_distinct_texts(series: pd.Series, count: int) -> list[str]:
    """The first `count` distinct values as text, in order of appearance. Values are made text only
    after the distinct ones are found: turning a million numbers into strings took 0.9 s a column."""
    present = series.dropna()
    distinct = present.head(10_000).drop_duplicates()
    if len(distinct) < count and len(present) > 10_000:
        distinct = present.drop_duplicates()
    return list(dict.fromkeys(distinct.head(count * 2).astype(str)))[:count]


def profile_table(frame: pd.DataFrame, target: str | None = None, *, source: str | None = None) -> TableProfile:
    """Profile every column: kind, role, missing share, unique count, and the reason for each choice."""
    columns: list[ColumnProfile] = []
    warnings: list[str] = []
    if target is not None:
        check_target_name(frame, target, source=source or frame.attrs.get("source", "the data"))
    for name in frame.columns:
        series = frame[name]
        spec = infer_column_spec(series, name)
        typed = typed_column(series, spec)
        missing = float(typed.isna().mean()) if len(typed) else 0.0
        n_unique = int(typed.nunique(dropna=True))
        if name == target:
            role, reason = "target", "the column to predict"
        elif spec.kind in FEATURE_KINDS:
            role, reason = "feature", spec.reason
        else:
            role, reason = "excluded", _exclusion_reason(spec)
        if role == "feature" and missing > 0.99:
            role, reason = "excluded", f"{missing:.0%} missing: too few values to learn from"
        examples = _first_distinct_texts(series, 3)
        stats = _column_stats(typed, spec.kind)
        columns.append(
            ColumnProfile(
                name=str(name),
                kind=spec.kind,
                role=role,
                reason=reason,
                dtype=str(series.dtype),
                missing_share=missing,
                n_unique=n_unique,
                examples=examples,
                stats=stats,
                spec=spec,
            )
        )
        if role == "excluded":
            warnings.append(f"'{name}' is left out: {reason}.")
        elif missing >= 0.5:
            warnings.append(f"'{name}' is {missing:.0%} missing; missing values are imputed and flagged.")
        if spec.kind == "text" and role == "feature":
            warnings.append(f"'{name}' is free text ({n_unique} distinct values): it becomes word features.")
        if spec.number_rule is not None and role != "target":
            warnings.append(f"'{name}' holds numbers written as text; read as numbers ({spec.number_rule.describe()}).")
    duplicates = int(frame.duplicated().sum())
    if duplicates:
        warnings.append(f"{duplicates} rows are exact duplicates of another row (kept).")
    empty = int(frame.attrs.get("empty_rows_dropped", 0))
    if empty:
        warnings.append(f"{empty} completely empty rows were dropped.")
    unlabeled = 0
    if target is not None:
        target_spec = next(c for c in columns if c.name == target).spec
        unlabeled = int(typed_column(frame[target], target_spec).isna().sum())
        if unlabeled:
            warnings.append(f"{unlabeled} rows have no value for the target '{target}': they are dropped, never scored.")
    return TableProfile(
        source=source or frame.attrs.get("source", "data"),
        n_rows=len(frame),
        n_columns=frame.shape[1],
        columns=columns,
        warnings=warnings,
        fingerprint=frame.attrs.get("fingerprint") or _frame_fingerprint(frame),
        empty_rows_dropped=empty,
        duplicate_rows=duplicates,
        target=target,
        unlabeled_rows=unlabeled,
    )


def _exclusion_reason(spec: ColumnSpec) -> str:
    if spec.kind == "identifier":
        return f"an identifier ({spec.reason}); it cannot generalise to new rows"
    if spec.kind == "constant":
        return f"constant ({spec.reason}); it carries no information"
    if spec.kind == "empty":
        return "empty; it carries no information"
    return spec.reason


def check_target_name(frame: pd.DataFrame, target: str, *, source: str = "the data") -> None:
    """Raise a `TargetError` that suggests close column names when the target is not a column."""
    if target in frame.columns:
        return
    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(target, names, n=3, cutoff=0.5)
    by_case = [c for c in names if c.lower().strip() == target.lower().strip()]
    hint = by_case or close
    suggestion = f" Did you mean {', '.join(repr(c) for c in hint)}?" if hint else ""
    raise TargetError(
        f"target column '{target}' is not in {source}.{suggestion} Columns are: {', '.join(names[:30])}"
        + (" ..." if len(names) > 30 else "")
    )
