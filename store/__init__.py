"""Storage of the workbench: registry, jobs, monitoring and artifacts under one home folder.

`Store(home=None)` is the one entry point; it creates the home's folders but opens no database
until used, so it is cheap to create in every process (and `import store` loads neither pandas nor
joblib). The home is `home`, else `$AUTOML_HOME`, else `~/.automl` (see `store.home`). Several
processes may use the same home at once: database access is short-lived and retried on lock
conflicts, high-frequency data goes to per-writer JSONL files, and the prediction server reads
routing from `routing.json` (`store.routing.RoutingReader`) without touching the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from store.archive import read_card
from store.artifacts import ArtifactRef, ArtifactStore
from store.db import MIGRATIONS, Database, Migration
from store.errors import (
    ArchiveError,
    ArtifactIntegrityError,
    InvalidName,
    InvalidRequest,
    NotFound,
    SchemaVersionError,
    StoreBusy,
    StoreError,
)
from store.home import HOME_ENV_VAR, Home
from store.jobs import EventBatch, EventLog, Job, JobStore
from store.monitoring import FeedbackLogger, Monitoring, PredictionLogger
from store.refs import ModelRef, parse_ref
from store.registry import Deployment, LineageEdge, ModelSummary, ModelVersion, Registry
from store.routing import RoutedDeployment, RoutedVersion, RoutingReader, RoutingSnapshot, read_routing


class Store:
    """One home folder: `.registry`, `.jobs`, `.monitoring`, `.artifacts`, and `.routing()` for servers."""

    def __init__(self, home: str | os.PathLike | None = None, *, lock_timeout: float = 30.0):
        self.home = Home.resolve(home).create()
        self.db = Database(self.home.db_path, timeout=lock_timeout)
        self.artifacts = ArtifactStore(self.home.artifacts_dir)
        self.registry = Registry(self.db, self.artifacts, self.home.routing_path)
        self.jobs = JobStore(self.db, self.home.jobs_dir)
        self.monitoring = Monitoring(self.db, self.home.monitoring_dir, self.registry)

    @property
    def root(self) -> Path:
        return self.home.root

    def recover(self) -> list[str]:
        """Start-up housekeeping of an app or server: returns the ids of jobs marked interrupted.

        Marks jobs whose owning process died as interrupted, and rewrites `routing.json` in case a
        process was killed between a registry commit and its snapshot.
        """
        interrupted = self.jobs.mark_interrupted_dead_jobs()
        self.registry.write_routing()
        return interrupted

    def routing(self) -> RoutingReader:
        """A reader of `routing.json` that re-parses only when the file changes (one per server)."""
        return RoutingReader(self.home.routing_path)

    def __repr__(self) -> str:
        return f"Store({str(self.home.root)!r})"


__all__ = [
    "HOME_ENV_VAR",
    "MIGRATIONS",
    "ArchiveError",
    "ArtifactIntegrityError",
    "ArtifactRef",
    "ArtifactStore",
    "Database",
    "Deployment",
    "EventBatch",
    "EventLog",
    "FeedbackLogger",
    "Home",
    "InvalidName",
    "InvalidRequest",
    "Job",
    "JobStore",
    "LineageEdge",
    "Migration",
    "ModelRef",
    "ModelSummary",
    "ModelVersion",
    "Monitoring",
    "NotFound",
    "PredictionLogger",
    "Registry",
    "RoutedDeployment",
    "RoutedVersion",
    "RoutingReader",
    "RoutingSnapshot",
    "SchemaVersionError",
    "Store",
    "StoreBusy",
    "StoreError",
    "parse_ref",
    "read_card",
    "read_routing",
]
