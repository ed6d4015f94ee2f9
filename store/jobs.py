"""Jobs: a row per job in the database, and an append-only event log per job outside it.

Rows hold what changes rarely (status, params, result, owner). Events (progress, trials, messages)
change several times a second, so they go to `jobs/<job_id>.jsonl`, appended by the one process that
runs the job and read by pollers from a byte offset; `progress()` reads the log backwards and never
opens the database. A cancel request is a flag file `jobs/<job_id>.cancel`, which the runner checks
with one `stat` between trials.

Statuses: queued -> running -> succeeded | failed | cancelled, and `interrupted` for jobs whose
owning process died (see `mark_interrupted_dead_jobs`, called when the app starts).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from store.db import Database, as_utc, utc_now
from store.errors import InvalidRequest, NotFound
from store.jsonfiles import append_jsonl, dumps, last_jsonl, loads, read_jsonl

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "interrupted")
_JOB_ID_LENGTH = 32

_JOB_COLUMNS = (
    "id, kind, status, params, created_at, started_at, finished_at, error, result, owner_pid, owner_host, "
    "cancel_requested_at"
)


@dataclass(frozen=True)
class Job:
    """One job row."""

    id: str
    kind: str
    status: str
    params: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    result: Any
    owner_pid: int | None
    owner_host: str | None
    cancel_requested_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class EventBatch:
    """Events read from a log, and the byte offset to pass to the next read."""

    events: list[dict[str, Any]]
    offset: int


class EventLog:
    """Appends events of one job to its JSONL file; one writer per job, each append flushed."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "ab")

    def append(self, event: Mapping[str, Any]) -> None:
        """Append one event (a `ts` epoch timestamp is added unless given)."""
        record = {"ts": time.time(), **event}
        self._handle.write((dumps(record) + "\n").encode())
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JobStore:
    """Job rows in the database plus per-job event logs and cancel flags under `jobs/`."""

    def __init__(self, db: Database, jobs_dir: str | Path):
        self.db = db
        self.jobs_dir = Path(jobs_dir)

    # ------------------------------------------------------------------------------------- rows

    def create(self, kind: str, params: Mapping[str, Any] | None = None) -> Job:
        """A new queued job owned by this process (its pid and host are recorded)."""
        if not isinstance(kind, str) or not kind:
            raise InvalidRequest(f"job kind must be a non-empty string, got {kind!r}")
        job_id = uuid.uuid4().hex
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO jobs (id, kind, status, params, created_at, owner_pid, owner_host, owner_started) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                [
                    job_id,
                    kind,
                    dumps(dict(params or {})),
                    utc_now(),
                    os.getpid(),
                    socket.gethostname(),
                    _process_start_marker(os.getpid()),
                ],
            )
            return self._get(connection, job_id)

    def start(self, job_id: str) -> Job:
        """Mark a queued job running, owned by the calling process."""
        job = self._transition(
            job_id,
            allowed_from=("queued",),
            to="running",
            sql="UPDATE jobs SET status = 'running', started_at = ?, owner_pid = ?, owner_host = ?, owner_started = ? "
            "WHERE id = ?",
            params=[utc_now(), os.getpid(), socket.gethostname(), _process_start_marker(os.getpid()), job_id],
        )
        self.append_event(job_id, {"type": "status", "status": "running"})
        return job

    def finish(self, job_id: str, status: str, *, result: Any = None, error: str | None = None) -> Job:
        """Record the end of a job: `succeeded` (with `result`), `failed` (with `error`) or `cancelled`."""
        if status not in ("succeeded", "failed", "cancelled"):
            raise InvalidRequest(
                f"final status {status!r} is invalid: expected succeeded, failed or cancelled"
            )
        job = self._transition(
            job_id,
            allowed_from=ACTIVE_STATUSES,
            to=status,
            sql="UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ? WHERE id = ?",
            params=[status, utc_now(), None if result is None else dumps(result), error, job_id],
        )
        self.append_event(job_id, {"type": "status", "status": status, **({"error": error} if error else {})})
        return job

    def get(self, job_id: str) -> Job:
        """One job; `NotFound` when the id is unknown."""
        _check_job_id(job_id)
        with self.db.connect() as connection:
            return self._get(connection, job_id)

    def list(self, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        """Newest jobs first, optionally filtered by status and kind."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"job status {status!r} is invalid: expected one of {STATUSES}")
        with self.db.connect() as connection:
            rows = connection.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE (? IS NULL OR status = ?) AND (? IS NULL OR kind = ?) "
                "ORDER BY created_at DESC, id LIMIT ?",
                [status, status, kind, kind, int(limit)],
            ).fetchall()
        return [_job(row) for row in rows]

    def delete(self, job_id: str) -> None:
        """Remove a finished job's row, event log and cancel flag."""
        with self.db.transaction() as connection:
            job = self._get(connection, job_id)
            if job.active:
                raise InvalidRequest(f"job {job_id} is {job.status}; cancel it before deleting it")
            connection.execute("DELETE FROM jobs WHERE id = ?", [job_id])
        self.events_path(job_id).unlink(missing_ok=True)
        self.cancel_path(job_id).unlink(missing_ok=True)

    # ----------------------------------------------------------------------------------- events

    def events_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{_check_job_id(job_id)}.jsonl"

    def cancel_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{_check_job_id(job_id)}.cancel"

    def event_log(self, job_id: str) -> EventLog:
        """An open appender for the runner of `job_id` (close it, or use it as a context manager)."""
        return EventLog(self.events_path(job_id))

    def append_event(self, job_id: str, event: Mapping[str, Any]) -> None:
        """Append one event, opening and closing the file (for rare events; runners use `event_log`)."""
        append_jsonl(self.events_path(job_id), [{"ts": time.time(), **event}])

    def events(self, job_id: str, offset: int = 0) -> EventBatch:
        """Complete events after byte `offset`; pass the returned offset next time to get only new ones."""
        events, new_offset = read_jsonl(self.events_path(job_id), offset)
        return EventBatch(events, new_offset)

    def progress(self, job_id: str) -> dict[str, Any] | None:
        """The last `{"type": "progress", ...}` event of a job, read from the end of its log (no database)."""
        return last_jsonl(
            self.events_path(job_id),
            lambda event: isinstance(event, dict) and event.get("type") == "progress",
        )

    def last_status(self, job_id: str) -> str | None:
        """The last status the runner logged (running, succeeded...), without the database."""
        event = last_jsonl(
            self.events_path(job_id), lambda event: isinstance(event, dict) and event.get("type") == "status"
        )
        return None if event is None else event.get("status")

    # ----------------------------------------------------------------------------------- cancel

    def request_cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job is cancelled at once, a running one sees the flag file."""
        with self.db.transaction() as connection:
            job = self._get(connection, job_id)
            if not job.active:
                return job
            self.cancel_path(job_id).parent.mkdir(parents=True, exist_ok=True)
            self.cancel_path(job_id).touch()
            if job.status == "queued":
                connection.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?, cancel_requested_at = ? WHERE id = ?",
                    [utc_now(), utc_now(), job_id],
                )
            else:
                connection.execute(
                    "UPDATE jobs SET cancel_requested_at = ? WHERE id = ?", [utc_now(), job_id]
                )
            job = self._get(connection, job_id)
        if job.status == "cancelled":
            self.append_event(job_id, {"type": "status", "status": "cancelled"})
        return job

    def cancel_requested(self, job_id: str) -> bool:
        """True once `request_cancel` was called; one `stat`, cheap enough to poll between trials."""
        return self.cancel_path(job_id).exists()

    # ------------------------------------------------------------------------------ dead owners

    def mark_interrupted_dead_jobs(self) -> list[str]:
        """Mark queued/running jobs of this host whose owner process is gone as `interrupted`.

        A pid counts as gone when no such process exists, or when it was reused by a process that
        started after the job's owner (Linux: compared through /proc start times).
        """
        host = socket.gethostname()
        interrupted = []
        with self.db.transaction() as connection:
            rows = connection.execute(
                "SELECT id, owner_pid, owner_started FROM jobs WHERE status IN ('queued', 'running') AND owner_host = ?",
                [host],
            ).fetchall()
            now = utc_now()
            for job_id, pid, started in rows:
                if pid is not None and _process_alive(pid, started):
                    continue
                connection.execute(
                    "UPDATE jobs SET status = 'interrupted', finished_at = ?, "
                    "error = coalesce(error, 'the process running this job stopped') WHERE id = ?",
                    [now, job_id],
                )
                interrupted.append(job_id)
        for job_id in interrupted:
            self.append_event(job_id, {"type": "status", "status": "interrupted"})
        return interrupted

    # ---------------------------------------------------------------------------------- helpers

    def _get(self, connection: duckdb.DuckDBPyConnection, job_id: str) -> Job:
        _check_job_id(job_id)
        row = connection.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", [job_id]).fetchone()
        if row is None:
            recent = [
                r[0]
                for r in connection.execute(
                    "SELECT id FROM jobs ORDER BY created_at DESC LIMIT 10"
                ).fetchall()
            ]
            raise NotFound("job", job_id, recent)
        return _job(row)

    def _transition(
        self, job_id: str, *, allowed_from: tuple[str, ...], to: str, sql: str, params: list[Any]
    ) -> Job:
        with self.db.transaction() as connection:
            job = self._get(connection, job_id)
            if job.status not in allowed_from:
                raise InvalidRequest(
                    f"job {job_id} is {job.status}; it can become {to} only from {' or '.join(allowed_from)}"
                )
            connection.execute(sql, params)
            return self._get(connection, job_id)


def _job(row: tuple) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        status=row[2],
        params=loads(row[3], {}),
        created_at=as_utc(row[4]),
        started_at=as_utc(row[5]),
        finished_at=as_utc(row[6]),
        error=row[7],
        result=loads(row[8]),
        owner_pid=row[9],
        owner_host=row[10],
        cancel_requested_at=as_utc(row[11]),
    )


def _check_job_id(job_id: str) -> str:
    if (
        not isinstance(job_id, str)
        or len(job_id) != _JOB_ID_LENGTH
        or any(c not in "0123456789abcdef" for c in job_id)
    ):
        raise InvalidRequest(f"job id {job_id!r} is invalid: expected 32 lowercase hex characters")
    return job_id


def _process_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (Linux), or None where that file cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except OSError:
        return None
    # the command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed
    return stat.rsplit(")", 1)[-1].split()


def _process_start_marker(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    fields = _process_stat(pid)
    return None if fields is None else fields[19]


def _process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    fields = _process_stat(pid)
    if fields is None:
        return True
    if fields[0] == "Z":  # exited, not yet reaped by its parent
        return False
    return started is None or fields[19] == started
