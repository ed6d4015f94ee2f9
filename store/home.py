"""Where the workbench keeps its state: the home folder and its fixed layout.

The home is `$AUTOML_HOME` when set, else `~/.automl`. Every process (app, server, CLI) derives all
paths from it, so pointing one variable elsewhere gives an isolated workbench (tests use tmp_path):

    automl.duckdb     models, versions, aliases, deployments, jobs (short-lived connections only;
                      `automl.duckdb.wal` appears while a write is in flight; `automl.duckdb.lock`
                      and `automl.duckdb.waiting` are the empty files processes queue on)
    artifacts/        content-addressed files: models `<sha256>.joblib`, training-data copies and
                      other raw bytes `<sha256>.bin`
    jobs/             `<job_id>.jsonl` event logs and `<job_id>.cancel` flag files
    monitoring/       `predictions/*.jsonl` and `feedback/*.jsonl`, one file per writer process
    routing.json      snapshot of aliases, deployments and artifacts for the prediction server
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV_VAR = "AUTOML_HOME"
DEFAULT_HOME = "~/.automl"


@dataclass(frozen=True)
class Home:
    """Paths of one home folder; `create()` makes the folders, nothing else touches the disk."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None) -> Home:
        """The given folder, else `$AUTOML_HOME`, else `~/.automl`, as an absolute path."""
        chosen = home if home is not None else os.environ.get(HOME_ENV_VAR) or DEFAULT_HOME
        return cls(Path(chosen).expanduser().resolve())

    @property
    def db_path(self) -> Path:
        return self.root / "automl.duckdb"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def monitoring_dir(self) -> Path:
        return self.root / "monitoring"

    @property
    def routing_path(self) -> Path:
        return self.root / "routing.json"

    def create(self) -> Home:
        """Create the folders of the layout (idempotent) and return self."""
        for folder in (self.root, self.artifacts_dir, self.jobs_dir, self.monitoring_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self
