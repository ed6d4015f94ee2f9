"""Monitoring: prediction logs and feedback in append-only JSONL files, reference distributions in the DB.

Prediction and feedback records are far too frequent for a database that only one process can open
at a time, so each writer process appends to its own files under `monitoring/predictions/` and
`monitoring/feedback/` (`<pid>-<start ms>-<random>.jsonl`; no two writers share a file). Writers
buffer in memory and flush from a background thread, so the request path never waits for the disk.
pandas is imported only by the queries, so a serving process pays nothing for it. Queries read every file with DuckDB (`read_json` over the file list, in an in-memory connection that
never locks the home's database) and skip the half-written last line of a live writer.

Records (one JSON object per line; `ts` is epoch seconds):
  prediction: request_id, ts, model, version, variant (champion/challenger/shadow), inputs (dict),
              outputs ({"prediction": ..., "probabilities": {...}}), latency_ms
  feedback:   request_id, ts, actual
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from store.db import Database, utc_now
from store.errors import InvalidRequest, StoreError
from store.jsonfiles import append_jsonl, dumps, loads

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

VARIANTS = ("champion", "challenger", "shadow")
PREDICTION_COLUMNS = [
    "request_id",
    "ts",
    "model",
    "version",
    "variant",
    "inputs",
    "outputs",
    "prediction",
    "latency_ms",
]
TRAFFIC_COLUMNS = [
    "bucket",
    "variant",
    "version",
    "requests",
    "latency_mean",
    "latency_p50",
    "latency_p95",
    "latency_p99",
]
LABELLED_COLUMNS = ["request_id", "ts", "version", "variant", "prediction", "actual", "feedback_ts"]
ACCURACY_COLUMNS = ["bucket", "variant", "version", "labelled", "accuracy", "mae"]

_EMPTY_DTYPES = {
    "ts": "datetime64[us, UTC]",
    "bucket": "datetime64[us, UTC]",
    "feedback_ts": "datetime64[us, UTC]",
    "latency_ms": "float64",
    "latency_mean": "float64",
    "latency_p50": "float64",
    "latency_p95": "float64",
    "latency_p99": "float64",
    "requests": "int64",
    "rows": "int64",
    "labelled": "int64",
    "accuracy": "float64",
    "mae": "float64",
}
_PREDICTION_SOURCE = (
    "SELECT * FROM read_json(?, format = 'newline_delimited', ignore_errors = true, columns = {"
    "request_id: 'VARCHAR', ts: 'DOUBLE', model: 'VARCHAR', version: 'VARCHAR', variant: 'VARCHAR', "
    "inputs: 'JSON', outputs: 'JSON', latency_ms: 'DOUBLE'}) WHERE request_id IS NOT NULL AND ts IS NOT NULL"
)
_FEEDBACK_SOURCE = (
    "SELECT request_id, arg_max(actual, ts) AS actual, max(ts) AS feedback_ts FROM read_json(?, "
    "format = 'newline_delimited', ignore_errors = true, columns = {request_id: 'VARCHAR', ts: 'DOUBLE', "
    "actual: 'JSON'}) WHERE request_id IS NOT NULL GROUP BY request_id"
)
_FILTER = "(? IS NULL OR model = ?) AND (? IS NULL OR version = ?) AND ts >= ? AND ts < ?"
# Each writer starts a new file every day or 64 MB, so that old logs can be deleted a whole file at
# a time (`Monitoring.prune`) while the live file keeps growing.
ROTATE_SECONDS = 86400.0
ROTATE_BYTES = 64 * 1024 * 1024
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h|d|w)\s*$")
_DURATION_SECONDS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class PruneReport:
    """What `Monitoring.prune` deleted (or, in a dry run, would delete)."""

    files: int
    records: int
    bytes: int
    kept_files: int
    dry_run: bool = False


class BufferedJsonlWriter:
    """Appends records to this writer's own JSONL file from a background thread.

    `write()` only appends to a list; a daemon thread flushes every `flush_interval` seconds or as
    soon as `max_buffer` records wait. `close()` (also run at exit) flushes what is left.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        flush_interval: float = 1.0,
        max_buffer: int = 1000,
        rotate_seconds: float = ROTATE_SECONDS,
        rotate_bytes: int = ROTATE_BYTES,
    ):
        self.directory = Path(directory)
        self.rotate_seconds = rotate_seconds
        self.rotate_bytes = rotate_bytes
        self.path = self._new_path()
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self._buffer: list[Mapping[str, Any]] = []
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"jsonl-writer-{self.path.stem}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue one record; never touches the disk (do not mutate `record` afterwards)."""
        if self._closed:
            raise StoreError(f"writer of {self.path} is closed; expected an open writer")
        with self._buffer_lock:
            self._buffer.append(record)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write every queued record now (one append of complete lines)."""
        with self._flush_lock:
            with self._buffer_lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            if time.time() - self._opened >= self.rotate_seconds or self._bytes >= self.rotate_bytes:
                self.path = self._new_path()  # a fresh file: old ones can be pruned whole
            try:
                self._bytes += append_jsonl(self.path, batch)
            except BaseException:
                with self._buffer_lock:  # keep the records for the next attempt
                    self._buffer[:0] = batch
                raise

    def _new_path(self) -> Path:
        self._opened, self._bytes = time.time(), 0
        return self.directory / f"{os.getpid()}-{int(self._opened * 1000)}-{uuid.uuid4().hex[:8]}.jsonl"

    @property
    def pending(self) -> int:
        with self._buffer_lock:
            return len(self._buffer)

    def close(self) -> None:
        """Stop the flush thread and write what is left; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()
        atexit.unregister(self.close)

    def __enter__(self) -> BufferedJsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # pragma: no cover - disk errors are retried at the next tick
                logger.exception("could not append to %s; will retry", self.path)


class PredictionLogger(BufferedJsonlWriter):
    """The prediction log of one serving process."""

    def log(
        self,
        *,
        request_id: str,
        model: str,
        version: str,
        variant: str,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        latency_ms: float,
        ts: float | None = None,
    ) -> None:
        """Queue one prediction record (`outputs` holds `prediction` and optional `probabilities`)."""
        if variant not in VARIANTS:
            raise InvalidRequest(f"variant {variant!r} is invalid: expected one of {VARIANTS}")
        self.write(
            {
                "request_id": request_id,
                "ts": time.time() if ts is None else ts,
                "model": model,
                "version": version,
                "variant": variant,
                "inputs": inputs,
                "outputs": outputs,
                "latency_ms": latency_ms,
            }
        )


class FeedbackLogger(BufferedJsonlWriter):
    """The feedback (true outcomes) received by one process."""

    def log(self, *, request_id: str, actual: Any, ts: float | None = None) -> None:
        """Queue the actual value observed for an earlier prediction."""
        self.write({"request_id": request_id, "ts": time.time() if ts is None else ts, "actual": actual})


class Monitoring:
    """Writers and queries over `monitoring/`, plus reference distributions per version in the DB."""

    def __init__(self, db: Database, monitoring_dir: str | Path, registry: Any):
        self.db = db
        self.directory = Path(monitoring_dir)
        self.registry = registry

    @property
    def predictions_dir(self) -> Path:
        return self.directory / "predictions"

    @property
    def feedback_dir(self) -> Path:
        return self.directory / "feedback"

    # ---------------------------------------------------------------------------------- writers

    def prediction_logger(self, *, flush_interval: float = 1.0, max_buffer: int = 1000) -> PredictionLogger:
        """A new prediction log file for this process (keep one per process; close it at shutdown)."""
        return PredictionLogger(self.predictions_dir, flush_interval=flush_interval, max_buffer=max_buffer)

    def feedback_logger(self, *, flush_interval: float = 1.0, max_buffer: int = 1000) -> FeedbackLogger:
        """A new feedback log file for this process."""
        return FeedbackLogger(self.feedback_dir, flush_interval=flush_interval, max_buffer=max_buffer)

    # ------------------------------------------------------------------------------- references

    def set_reference(self, ref: str, reference: Mapping[str, Any]) -> None:
        """Store the reference distributions of a version (e.g. training-data histograms) for drift checks."""
        if not isinstance(reference, Mapping):
            raise InvalidRequest(f"reference must be a dict, got {type(reference).__name__}")
        version = self.registry.get(ref)
        text = dumps(reference)
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO reference_distributions VALUES (?, ?, ?)",
                [version.id, text, utc_now()],
            )

    def reference(self, ref: str) -> dict[str, Any] | None:
        """The reference distributions of a version, or None when none were stored."""
        version = self.registry.get(ref)
        with self.db.connect() as connection:
            row = connection.execute(
                "SELECT content FROM reference_distributions WHERE version_id = ?", [version.id]
            ).fetchone()
        return None if row is None else loads(row[0])

    # -------------------------------------------------------------------------------- retention

    def prune(self, older_than: str | float, *, dry_run: bool = False, now: float | None = None) -> PruneReport:
        """Delete the log files (predictions and feedback) whose every record is older than
        `older_than` ('90d', '12w', or seconds); with `dry_run`, only count them.

        Whole files go, never single lines: writers start a new file every day, so a file stops
        growing one day after it was opened, and a file written in the last day is always kept.
        That leaves live writers untouched without any lock. At least a day must be kept.
        """
        keep = duration_seconds(older_than, what="older_than")
        if keep < ROTATE_SECONDS:
            raise InvalidRequest(f"older_than {older_than!r} is too short: keep at least one day ('1d') of logs")
        now = time.time() if now is None else float(now)
        # Two rotation periods: a writer that decided not to rotate just before a day was up may
        # still be appending to a file that has not been touched for a day.
        cutoff, quiet_since = now - keep, now - 2 * ROTATE_SECONDS
        listed = _files(self.predictions_dir) + _files(self.feedback_dir)
        files = [path for path in listed if _mtime(path) < quiet_since]
        if not files:
            return PruneReport(0, 0, 0, len(listed), dry_run)
        newest = _query(
            "SELECT filename, max(ts) AS newest, count(ts) AS records FROM read_json(?, format = "
            "'newline_delimited', ignore_errors = true, filename = true, columns = {ts: 'DOUBLE'}) "
            "GROUP BY filename",
            [files],
        )
        removed = records = size = 0
        for path, last, count in zip(newest["filename"], newest["newest"], newest["records"], strict=True):
            file = Path(path)
            if not last < cutoff:
                continue
            try:
                file_size = file.stat().st_size
            except FileNotFoundError:  # another prune got there first
                continue
            removed, records, size = removed + 1, records + int(count), size + file_size
            if not dry_run:
                file.unlink(missing_ok=True)
        return PruneReport(removed, records, size, len(listed) - removed, dry_run)

    # ---------------------------------------------------------------------------------- queries

    def predictions(
        self,
        model: str | None = None,
        *,
        version: str | None = None,
        since: dt.datetime | float | None = None,
        until: dt.datetime | float | None = None,
    ) -> pd.DataFrame:
        """Raw prediction records, oldest first; `inputs`/`outputs` as dicts, `ts` as UTC datetimes."""
        files = _files(self.predictions_dir)
        if not files:
            return _empty(PREDICTION_COLUMNS)
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}) SELECT request_id, ts, model, version, variant, inputs, outputs, "
            "json_extract(outputs, '$.prediction') AS prediction, latency_ms FROM p WHERE "
            f"{_FILTER} ORDER BY ts, request_id",
            [files, *_filter_params(model, version, since, until)],
        )
        for column in ("inputs", "outputs", "prediction"):
            frame[column] = [loads(value) for value in frame[column]]
        frame["ts"] = _to_datetime(frame["ts"])
        return frame[PREDICTION_COLUMNS]

    def inputs(
        self,
        model: str,
        *,
        version: str | None = None,
        since: dt.datetime | float | None = None,
        until: dt.datetime | float | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The input rows a model received (one column per feature), newest `limit` rows, for drift checks."""
        files = _files(self.predictions_dir)
        if not files:
            import pandas as pd

            return pd.DataFrame()
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}) SELECT inputs FROM (SELECT inputs, ts, request_id FROM p WHERE {_FILTER} "
            "ORDER BY ts DESC, request_id DESC LIMIT ?) ORDER BY ts, request_id",
            [files, *_filter_params(model, version, since, until), limit],
        )
        import pandas as pd

        return pd.DataFrame.from_records([json.loads(value) for value in frame["inputs"]])

    def inputs_per_bucket(
        self,
        model: str,
        *,
        bucket: str | float = "1h",
        version: str | None = None,
        since: dt.datetime | float | None = None,
        until: dt.datetime | float | None = None,
        per_bucket: int = 2000,
        include_shadow: bool = False,
    ) -> pd.DataFrame:
        """Per time bucket and version: how many rows arrived (`rows`) and at most `per_bucket` of
        their inputs (JSON text), one row each.

        The sample is chosen by a hash of the request id, so it is the same at every refresh and
        spread over the whole bucket. Drift is measured on it: months of logs stay a few thousand
        rows per bucket in memory. Shadow records repeat the champion's inputs and are left out.
        """
        if not isinstance(per_bucket, int) or isinstance(per_bucket, bool) or per_bucket < 1:
            raise InvalidRequest(f"per_bucket must be a positive whole number, got {per_bucket!r}")
        files = _files(self.predictions_dir)
        if not files:
            return _empty(["bucket", "version", "rows", "inputs"])
        seconds = bucket_seconds(bucket)
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}), q AS (SELECT floor(ts / ?) * ? AS bucket, version, inputs, "
            f"request_id, ts FROM p WHERE {_FILTER} AND (? OR variant IS DISTINCT FROM 'shadow')), b AS (SELECT bucket, version, "
            "inputs, count(*) OVER w AS rows, row_number() OVER (w ORDER BY hash(request_id, ts), request_id, ts) AS pick "
            "FROM q WINDOW w AS (PARTITION BY bucket, version)) "
            "SELECT bucket, version, rows, inputs FROM b WHERE pick <= ? ORDER BY bucket, version, pick",
            [files, seconds, seconds, *_filter_params(model, version, since, until), include_shadow, per_bucket],
        )
        frame["bucket"] = _to_datetime(frame["bucket"])
        frame["rows"] = frame["rows"].astype("int64")
        return frame[["bucket", "version", "rows", "inputs"]]

    def first_request(
        self,
        model: str,
        *,
        version: str | None = None,
        until: dt.datetime | float | None = None,
    ) -> float | None:
        """Epoch seconds of the model's first logged request (before `until`); None when there is none."""
        files = _files(self.predictions_dir)
        if not files:
            return None
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}) SELECT min(ts) AS first FROM p WHERE {_FILTER}",
            [files, *_filter_params(model, version, None, until)],
        )
        first = frame["first"].iloc[0] if len(frame) else None
        return None if first is None or first != first else float(first)

    def traffic(
        self,
        model: str,
        *,
        bucket: str | float = "1h",
        version: str | None = None,
        since: dt.datetime | float | None = None,
        until: dt.datetime | float | None = None,
    ) -> pd.DataFrame:
        """Requests and latency percentiles per time bucket, variant and version."""
        files = _files(self.predictions_dir)
        if not files:
            return _empty(TRAFFIC_COLUMNS)
        seconds = bucket_seconds(bucket)
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}) SELECT floor(ts / ?) * ? AS bucket, variant, version, "
            "count(*) AS requests, avg(latency_ms) AS latency_mean, "
            "quantile_cont(latency_ms, 0.5) AS latency_p50, quantile_cont(latency_ms, 0.95) AS latency_p95, "
            f"quantile_cont(latency_ms, 0.99) AS latency_p99 FROM p WHERE {_FILTER} "
            "GROUP BY ALL ORDER BY bucket, variant, version",
            [files, seconds, seconds, *_filter_params(model, version, since, until)],
        )
        frame["bucket"] = _to_datetime(frame["bucket"])
        frame["requests"] = frame["requests"].astype("int64")
        return frame[TRAFFIC_COLUMNS]

    def labelled(
        self,
        model: str,
        *,
        version: str | None = None,
        since: dt.datetime | float | None = None,
        until: dt.datetime | float | None = None,
    ) -> pd.DataFrame:
        """Predictions that received feedback, with the prediction and the (latest) actual value."""
        files, feedback = _files(self.predictions_dir), _files(self.feedback_dir)
        if not files or not feedback:
            return _empty(LABELLED_COLUMNS)
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}), f AS ({_FEEDBACK_SOURCE}) "
            "SELECT p.request_id, p.ts, p.version, p.variant, json_extract(p.outputs, '$.prediction') AS prediction, "
            f"f.actual, f.feedback_ts FROM p JOIN f USING (request_id) WHERE {_FILTER} ORDER BY p.ts, p.request_id",
            [files, feedback, *_filter_params(model, version, since, until)],
        )
        for column in ("prediction", "actual"):
            frame[column] = [loads(value) for value in frame[column]]
        frame["ts"] = _to_datetime(frame["ts"])
        frame["feedback_ts"] = _to_datetime(frame["feedback_ts"])
        return frame[LABELLED_COLUMNS]

    def accuracy(
        self,
        model: str,
        *,
        bucket: str | float = "1d",
        version: str | None = None,
        since: dt.datetime | float | None = None,
        until: dt.datetime | float | None = None,
    ) -> pd.DataFrame:
        """Per bucket, variant and version: labelled count, share of exact hits, mean absolute error.

        `accuracy` compares numbers numerically and anything else as text; `mae` is NaN unless both
        prediction and actual are numbers. Which one matters depends on the task (decided upstream).
        """
        files, feedback = _files(self.predictions_dir), _files(self.feedback_dir)
        if not files or not feedback:
            return _empty(ACCURACY_COLUMNS)
        seconds = bucket_seconds(bucket)
        frame = _query(
            f"WITH p AS ({_PREDICTION_SOURCE}), f AS ({_FEEDBACK_SOURCE}), j AS ("
            "SELECT p.ts, p.variant, p.version, json_extract_string(p.outputs, '$.prediction') AS predicted, "
            "json_extract_string(f.actual, '$') AS actual, "
            "try_cast(json_extract_string(p.outputs, '$.prediction') AS DOUBLE) AS predicted_number, "
            "try_cast(json_extract_string(f.actual, '$') AS DOUBLE) AS actual_number "
            f"FROM p JOIN f USING (request_id) WHERE {_FILTER}) "
            "SELECT floor(ts / ?) * ? AS bucket, variant, version, count(*) AS labelled, "
            "avg(CASE WHEN predicted_number IS NOT NULL AND actual_number IS NOT NULL "
            "THEN (predicted_number = actual_number)::DOUBLE ELSE (predicted = actual)::DOUBLE END) AS accuracy, "
            "avg(abs(predicted_number - actual_number)) AS mae "
            "FROM j GROUP BY ALL ORDER BY bucket, variant, version",
            [files, feedback, *_filter_params(model, version, since, until), seconds, seconds],
        )
        frame["bucket"] = _to_datetime(frame["bucket"])
        frame["labelled"] = frame["labelled"].astype("int64")
        frame["mae"] = frame["mae"].astype("float64")
        return frame[ACCURACY_COLUMNS]


def bucket_seconds(bucket: str | float) -> float:
    """A bucket width as seconds: a number of seconds, or text like '30s', '15min', '1h', '1d', '1w'."""
    return duration_seconds(bucket, what="bucket")


def duration_seconds(value: str | float, *, what: str = "duration") -> float:
    """A duration as seconds: a number of seconds, or text like '30s', '15min', '1h', '90d', '1w'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match:
            raise InvalidRequest(
                f"{what} {value!r} is invalid: expected seconds or text like '15min', '1h', '1d'"
            )
        seconds = float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidRequest(f"{what} {value!r} is invalid: expected a positive duration")
    return seconds


def _files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(str(path) for path in folder.glob("*.jsonl") if _size(path) > 0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # pruned between the listing and the look
        return 0


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return float("inf")


def _query(sql: str, params: list[Any]) -> pd.DataFrame:
    """Run a query over log files; if `prune` deleted some of them meanwhile, once more without them."""
    with duckdb.connect(":memory:") as connection:
        try:
            return connection.execute(sql, params).df()
        except duckdb.IOException:
            present = [_existing(p) if _is_file_list(p) else p for p in params]
            if present == params:
                raise
            # Every file gone: an empty stand-in gives an answer with no rows and the same columns.
            present = [p if p or not _is_file_list(p) else [os.devnull] for p in present]
            return connection.execute(sql, present).df()


def _is_file_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.endswith(".jsonl") for v in value)


def _existing(paths: list[str]) -> list[str]:
    return [p for p in paths if os.path.exists(p)]


def _filter_params(
    model: str | None,
    version: str | None,
    since: dt.datetime | float | None,
    until: dt.datetime | float | None,
) -> list[Any]:
    return [model, model, version, version, _epoch(since, float("-inf")), _epoch(until, float("inf"))]


def _epoch(value: dt.datetime | float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return float(value)


def _to_datetime(values: pd.Series) -> pd.Series:
    """Epoch seconds -> UTC datetimes, rounded to the microsecond (floats carry no more)."""
    import pandas as pd

    micros = (values.astype("float64") * 1e6).round().astype("int64")
    return pd.to_datetime(micros, unit="us", utc=True)


def _empty(columns: list[str]) -> pd.DataFrame:
    """A frame with no rows but the columns and dtypes of a non-empty answer."""
    import pandas as pd

    return pd.DataFrame({column: pd.Series(dtype=_EMPTY_DTYPES.get(column, "object")) for column in columns})
