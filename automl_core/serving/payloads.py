"""The payload contract of the prediction endpoints, written down as constants, and its parser.

A JSON request carries exactly one format key:

- `inputs`: one row as an object (`{"inputs": {"age": 31, ...}}`) or many rows as a list of objects;
- `dataframe_records`: MLflow's list of row objects;
- `dataframe_split`: MLflow's `{"columns": [...], "data": [[...], ...]}` (an `index` is accepted and ignored);
- `instances`: a list of row objects (TensorFlow Serving / MLflow style).

Optional beside it: `key`, a string that pins the request to one A/B variant (the same key always
gets the same variant; the `X-Request-Key` header does the same). Anything else is refused, so a
misspelt format key is a 400 rather than a silently empty prediction. A CSV body (`text/csv`) is
the other batch format: a header line, then one row per line, answered as CSV.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, invalid_input

INPUTS = "inputs"
DATAFRAME_RECORDS = "dataframe_records"
DATAFRAME_SPLIT = "dataframe_split"
INSTANCES = "instances"
FORMAT_KEYS = (INPUTS, DATAFRAME_RECORDS, DATAFRAME_SPLIT, INSTANCES)
KEY = "key"
OPTIONAL_KEYS = (KEY,)
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
KEY_HEADER = "X-Request-Key"
MAX_JSON_DEPTH_HINT = "JSON nested too deeply"


@dataclass
class Rows:
    """Rows of a request in the shape they came in: row objects, or columns plus lists of values."""

    records: list[dict] | None = None
    columns: list[str] | None = None
    data: list[list] | None = None
    single: bool = False
    key: str | None = None

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self.data or [])

    def record(self, i: int) -> dict:
        """Row `i` as a column -> value mapping."""
        if self.records is not None:
            return self.records[i]
        return dict(zip(self.columns, self.data[i], strict=True))

    def column_names(self) -> list[str]:
        """Every column named by any row, in first-seen order."""
        if self.columns is not None:
            return list(self.columns)
        seen: dict[str, None] = {}
        for row in self.records or []:
            for name in row:
                seen.setdefault(name, None)
        return list(seen)

    def column(self, name: str) -> list:
        """The values of one column (None where a row does not name it)."""
        if self.columns is not None:
            j = self.columns.index(name)
            return [row[j] for row in self.data]
        return [row.get(name) for row in self.records]


def parse_json(body: bytes) -> Any:
    """Decode a JSON body; 400 naming the position of the first error."""
    if not body:
        raise bad_request("the request body is empty; expected a JSON object")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"the request body is not UTF-8 text (byte {exc.start} cannot be decoded)"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            [{"line": exc.lineno, "column": exc.colno, "problem": exc.msg}],
        ) from None
    except RecursionError:
        raise bad_request(MAX_JSON_DEPTH_HINT) from None


def _row_objects(value: Any, key: str) -> list[dict]:
    if not isinstance(value, list):
        raise bad_request(f"'{key}' must be a list of row objects, got {_json_type(value)}")
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            raise bad_request(f"'{key}[{i}]' must be an object of column: value, got {_json_type(row)}")
    return value


def parse_rows(payload: Any) -> Rows:
    """The rows of a JSON payload; 400 when the shape is not one of the accepted formats."""
    if not isinstance(payload, dict):
        raise bad_request(
            f"the JSON body must be an object with one of {', '.join(FORMAT_KEYS)}, got {_json_type(payload)}"
        )
    present = [k for k in FORMAT_KEYS if k in payload]
    unknown = sorted(k for k in payload if k not in FORMAT_KEYS and k not in OPTIONAL_KEYS)
    if unknown:
        raise bad_request(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in the request; "
            f"expected exactly one of {', '.join(FORMAT_KEYS)} (and optionally {', '.join(OPTIONAL_KEYS)})",
            [{"key": k, "problem": "unknown"} for k in unknown],
        )
    if len(present) != 1:
        found = f"found {', '.join(present)}" if present else "found none"
        raise bad_request(f"the request must carry exactly one of {', '.join(FORMAT_KEYS)}; {found}")
    key = payload.get(KEY)
    if key is not None and not isinstance(key, (str, int)):
        raise bad_request(f"'key' must be a string, got {_json_type(key)}")
    key = None if key is None else str(key)
    name = present[0]
    value = payload[name]
    if name in (INPUTS, INSTANCES) and isinstance(value, dict):
        rows = Rows(records=[value], single=True, key=key)
    elif name in (INPUTS, INSTANCES, DATAFRAME_RECORDS):
        rows = Rows(records=_row_objects(value, name), key=key)
    else:
        rows = _split_rows(value, key)
    if len(rows) == 0:
        raise invalid_input(f"'{name}' holds no rows; send at least one row to predict")
    return rows


def _split_rows(value: Any, key: str | None) -> Rows:
    if not isinstance(value, dict):
        raise bad_request(
            f"'dataframe_split' must be an object with 'columns' and 'data', got {_json_type(value)}"
        )
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise bad_request(
            f"'dataframe_split' has unknown key(s) {', '.join(map(repr, extra))}; expected columns, data"
        )
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bad_request("'dataframe_split.columns' must be a list of column names (strings)")
    if len(set(columns)) != len(columns):
        raise bad_request("'dataframe_split.columns' names a column twice")
    if not isinstance(data, list):
        raise bad_request(f"'dataframe_split.data' must be a list of rows, got {_json_type(data)}")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            got = f"{len(row)} values" if isinstance(row, list) else _json_type(row)
            raise bad_request(
                f"'dataframe_split.data[{i}]' must be a list of {len(columns)} values (one per column), got {got}"
            )
    return Rows(columns=columns, data=data, key=key)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


json_type = _json_type
