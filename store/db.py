"""The one DuckDB file of a home: short-lived connections, lock retries and versioned migrations.

While one process has a DuckDB file open no other process can open it, not even read-only. So no
connection is ever kept: each operation opens, runs one transaction and closes (~15-30 ms). Waiting
is layered: threads of one process queue on a thread lock, processes queue on `automl.duckdb.lock`
(`flock`, polled every 0.5-2 ms, fairly: see `_Gate`), and a conflicting DuckDB lock still met after that (a foreign DuckDB
client) is retried with jittered exponential backoff. All of it is bounded by `timeout` seconds, after
which `StoreBusy` is raised, so users never see a raw lock error; any other error propagates at once.

The schema is a list of small named migrations; the first connection of a `Database` applies the
missing ones in order, in one transaction, so a home written by older code is upgraded in place.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: DuckDB's own lock and the retry loop remain
    fcntl = None

from store.errors import SchemaVersionError, StoreBusy


@dataclass(frozen=True)
class Migration:
    """One schema step: applied once, in version order, recorded in `schema_migrations`."""

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """CREATE TABLE models (
                name VARCHAR PRIMARY KEY,
                created_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE model_versions (
                id VARCHAR PRIMARY KEY,
                model_name VARCHAR NOT NULL,
                version VARCHAR NOT NULL,
                major INTEGER NOT NULL,
                minor INTEGER NOT NULL,
                patch INTEGER NOT NULL,
                created_at TIMESTAMP NOT NULL,
                description VARCHAR NOT NULL DEFAULT '',
                tags JSON NOT NULL DEFAULT '{}',
                task VARCHAR,
                metric_name VARCHAR,
                cv_score DOUBLE,
                params JSON NOT NULL DEFAULT '{}',
                input_schema JSON NOT NULL DEFAULT '{}',
                schema_fingerprint VARCHAR NOT NULL,
                lineage JSON NOT NULL DEFAULT '{}',
                recipe JSON NOT NULL DEFAULT '{}',
                parent_version_id VARCHAR,
                job_id VARCHAR,
                artifact_sha256 VARCHAR NOT NULL,
                artifact_size BIGINT NOT NULL,
                artifact_file VARCHAR NOT NULL,
                UNIQUE (model_name, version)
            )""",
            """CREATE TABLE version_metrics (
                version_id VARCHAR NOT NULL,
                split VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                value DOUBLE,
                PRIMARY KEY (version_id, split, name)
            )""",
            """CREATE TABLE aliases (
                model_name VARCHAR NOT NULL,
                alias VARCHAR NOT NULL,
                version_id VARCHAR NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (model_name, alias)
            )""",
            """CREATE TABLE jobs (
                id VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                params JSON NOT NULL DEFAULT '{}',
                created_at TIMESTAMP NOT NULL,
                started_at TIMESTAMP,
                finished_at TIMESTAMP,
                error VARCHAR,
                result JSON,
                owner_pid INTEGER,
                owner_host VARCHAR,
                owner_started VARCHAR
            )""",
        ),
    ),
    Migration(
        2,
        "deployments_and_documents",
        (
            """CREATE TABLE deployments (
                model_name VARCHAR PRIMARY KEY,
                champion VARCHAR NOT NULL,
                challenger VARCHAR,
                mode VARCHAR NOT NULL,
                challenger_weight DOUBLE NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE version_documents (
                version_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                content JSON NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (version_id, kind)
            )""",
        ),
    ),
    Migration(
        3,
        "monitoring_references_and_cancel_time",
        (
            """CREATE TABLE reference_distributions (
                version_id VARCHAR PRIMARY KEY,
                content JSON NOT NULL,
                created_at TIMESTAMP NOT NULL
            )""",
            "ALTER TABLE jobs ADD COLUMN cancel_requested_at TIMESTAMP",
        ),
    ),
    Migration(
        4,
        "version_training_data_copies",
        (
            # the stored copy of a version's training data (a `.bin` artifact) is a reference like the
            # model file: gc keeps it and deleting the last version that names it removes it
            "ALTER TABLE model_versions ADD COLUMN data_sha256 VARCHAR",
            # versions registered before this column recorded the copy only inside their lineage
            """UPDATE model_versions
                SET data_sha256 = json_extract_string(lineage, '$.data.stored_copy_sha256')
                WHERE regexp_full_match(
                    coalesce(json_extract_string(lineage, '$.data.stored_copy_sha256'), ''), '[0-9a-f]{64}'
                )""",
        ),
    ),
)

_LOCK_CONFLICT_MARKERS = ("could not set lock", "conflicting lock")


def utc_now() -> dt.datetime:
    """Naive UTC now: the DB stores TIMESTAMP in UTC (TIMESTAMPTZ needs the ICU extension)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp read from the DB as an aware UTC datetime."""
    return None if value is None else value.replace(tzinfo=dt.UTC)


def is_lock_conflict(error: BaseException) -> bool:
    """True when DuckDB refused to open because another process holds the file lock."""
    return isinstance(error, duckdb.IOException) and any(
        marker in str(error).lower() for marker in _LOCK_CONFLICT_MARKERS
    )


@dataclass
class ConnectionStats:
    """Counters of this `Database` object, to measure contention (not persisted)."""

    connections: int = 0
    lock_retries: int = 0
    wait_seconds: float = 0.0
    hold_seconds: list[float] = field(default_factory=list)  # database open -> closed, per connection
    call_seconds: list[float] = field(default_factory=list)  # the same plus waiting for the locks


class _Gate:
    """Who may open one database file: a thread lock inside this process, lock files across processes.

    DuckDB's own lock can only be polled by attempting to open the database (~4 ms of CPU each, and
    the waiter sleeps through the moment it is released). So processes first take `<db>.lock` with
    `flock`, polled every 0.5-2 ms at the cost of a syscall, which hands the database over almost as
    soon as it is closed. To keep that fair, a process that finds others waiting (they hold a shared
    `flock` on `<db>.waiting`) does not barge in but joins them, so a busy writer cannot starve the
    others. DuckDB's lock stays the final word (a foreign DuckDB client ignores ours).
    """

    def __init__(self, path: Path):
        self.thread_lock = threading.RLock()
        self.lock_path = path.with_name(path.name + ".lock")
        self.waiting_path = path.with_name(path.name + ".waiting")
        self.depth = 0
        self.handle: int | None = None

    def acquire(self, deadline: float, stats: ConnectionStats) -> None:
        """Take the cross-process lock unless this thread already holds it (caller holds thread_lock)."""
        self.depth += 1
        if self.depth > 1 or fcntl is None:
            return
        try:
            self.handle = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            waiting = os.open(self.waiting_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                others_waiting = _held_by_others(waiting)
                if not others_waiting and _try_flock(self.handle, fcntl.LOCK_EX):
                    return
                fcntl.flock(waiting, fcntl.LOCK_SH)  # announce: newcomers queue behind us
                # if others were already waiting, let one of them poll first (they poll every 0.5-2 ms)
                pause = random.uniform(0.002, 0.004) if others_waiting else 0.0
                while pause or not _try_flock(self.handle, fcntl.LOCK_EX):
                    if time.monotonic() >= deadline:
                        raise StoreBusy(
                            f"database {self.lock_path.with_suffix('')} stayed busy with other processes for "
                            "longer than the lock timeout; expected it to be released"
                        )
                    pause = pause or random.uniform(0.0005, 0.002)
                    stats.lock_retries += 1
                    stats.wait_seconds += pause
                    time.sleep(pause)
                    pause = 0.0
            finally:
                os.close(waiting)  # also drops the shared lock
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.handle is not None:
            os.close(self.handle)  # closing the descriptor releases the flock
            self.handle = None


def _try_flock(handle: int, mode: int) -> bool:
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _held_by_others(handle: int) -> bool:
    """True while some process holds a lock on the file behind `handle`."""
    if _try_flock(handle, fcntl.LOCK_EX):
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    return True


_GATES: dict[Path, _Gate] = {}
_GATES_GUARD = threading.Lock()


def _gate_for(path: Path) -> _Gate:
    """One gate per database file, shared by every `Database` of this process."""
    with _GATES_GUARD:
        return _GATES.setdefault(path, _Gate(path))


class Database:
    """A DuckDB file opened only for the duration of one operation.

    `timeout` bounds how long locks held by other processes are waited for before `StoreBusy`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        timeout: float = 30.0,
    ):
        self.path = Path(path).resolve()
        self.migrations = tuple(sorted(migrations, key=lambda migration: migration.version))
        self.timeout = timeout
        self.stats = ConnectionStats()
        self._gate = _gate_for(self.path)
        self._migrated = False

    @property
    def latest_version(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh connection, migrated, closed on exit; use `transaction()` for writes."""
        with self._gate.thread_lock:
            started = time.perf_counter()
            deadline = time.monotonic() + self.timeout
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._gate.acquire(deadline, self.stats)
            try:
                connection = self._open(deadline)
                opened = time.perf_counter()
                try:
                    if not self._migrated:
                        self._migrate(connection)
                        self._migrated = True
                    yield connection
                finally:
                    connection.close()
                    self.stats.hold_seconds.append(time.perf_counter() - opened)
            finally:
                self._gate.release()
                self.stats.call_seconds.append(time.perf_counter() - started)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN ... COMMIT; any exception rolls everything back."""
        with self.connect() as connection:
            with in_transaction(connection):
                yield connection

    def applied_migrations(self) -> list[tuple[int, str]]:
        """(version, name) of the migrations recorded in the database, in order."""
        with self.connect() as connection:
            return [
                (int(version), name)
                for version, name in connection.execute(
                    "SELECT version, name FROM schema_migrations ORDER BY version"
                ).fetchall()
            ]

    def _open(self, deadline: float) -> duckdb.DuckDBPyConnection:
        ceiling = 0.005
        while True:
            try:
                connection = duckdb.connect(str(self.path))
                self.stats.connections += 1
                return connection
            except duckdb.IOException as error:
                if not is_lock_conflict(error):
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreBusy(
                        f"database {self.path} stayed locked by another process for {self.timeout:.0f} s; "
                        f"expected it to be released (last error: {error})"
                    ) from error
                pause = min(remaining, ceiling / 2 + random.uniform(0, ceiling / 2))
                self.stats.lock_retries += 1
                self.stats.wait_seconds += pause
                time.sleep(pause)
                ceiling = min(ceiling * 2, 0.1)

    def _migrate(self, connection: duckdb.DuckDBPyConnection) -> None:
        with in_transaction(connection):
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
            )
            applied = {
                row[0] for row in connection.execute("SELECT version FROM schema_migrations").fetchall()
            }
            newer = sorted(version for version in applied if version > self.latest_version)
            if newer:
                raise SchemaVersionError(
                    f"database {self.path} has schema version {newer[-1]}, newer than this code "
                    f"(knows up to {self.latest_version}); upgrade the workbench"
                )
            for migration in self.migrations:
                if migration.version in applied:
                    continue
                for statement in migration.statements:
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.name, utc_now()],
                )


@contextmanager
def in_transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT on an open connection; any exception rolls back (for work after the commit)."""
    connection.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        try:
            connection.execute("ROLLBACK")
        except duckdb.Error:  # already rolled back by DuckDB after a failed statement
            pass
        raise
    connection.execute("COMMIT")
