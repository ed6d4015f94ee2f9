"""One training run from a request to a registered version: used by jobs, the CLI and the server.

`TrainRequest` holds the settings of a run (they become the version's recipe); `run_training`
reads the data, fits `AutoML` and registers the result; `reproduce` and `retrain` re-run a
registered version's recipe on its own stored data or on a new file, as a child version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from .automl import AutoML
from .errors import DataError
from .intake import profile_table, read_table
from .problem import target_values
from .registration import default_model_name, labelled_rows, register_automl
from .search import SearchEvent

REPLAY_BUDGET = 3600.0


@dataclass(frozen=True)
class TrainRequest:
    """What to train: the data (a path or the file's bytes), the target and the search settings."""

    data: str | bytes = field(repr=False)
    target: str | None
    source: str | None = None
    task: str = "auto"
    time_budget: float = 60.0
    metric: str | None = "auto"
    name: str | None = None
    cv: str | int = "auto"
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    seed: int = 0
    parent: str | None = None
    replay: list | None = field(default=None, repr=False)
    description: str = ""
    ignore_columns: tuple[str, ...] | None = None
    time_column: str | None = None

    @property
    def source_name(self) -> str:
        if self.source:
            return self.source
        return os.path.basename(self.data) if isinstance(self.data, str) else "uploaded data"

    @property
    def model_name(self) -> str:
        return self.name or default_model_name(self.source_name)

    def describe(self) -> dict:
        """JSON-able settings (the data itself is not included)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("data", "replay")}
        out["data"] = self.data if isinstance(self.data, str) else f"<{len(self.data):,} bytes>"
        out["source"] = self.source_name
        out["name"] = self.model_name
        out["include"] = list(self.include) if self.include else None
        out["exclude"] = list(self.exclude) if self.exclude else None
        out["replay"] = None if self.replay is None else len(self.replay)
        out["ignore_columns"] = list(self.ignore_columns) if self.ignore_columns else None
        return out


@dataclass
class TrainResult:
    version: object
    automl: AutoML
    seconds: float


def _data_bytes(data: str | bytes) -> bytes:
    if isinstance(data, bytes):
        return data
    path = Path(data)
    if not path.is_file():
        raise DataError(f"file '{data}' does not exist")
    return path.read_bytes()


def run_training(
    store,
    request: TrainRequest,
    *,
    on_event: Callable[[SearchEvent], None] | None = None,
    job_id: str | None = None,
    n_jobs: int | None = None,
    start_time: float | None = None,
) -> TrainResult:
    """Read, fit and register; the budget counts from `start_time` (default: now)."""
    start = time.monotonic() if start_time is None else start_time
    raw = _data_bytes(request.data)
    frame = read_table(raw, name=request.source_name)
    budget = REPLAY_BUDGET if request.replay is not None else request.time_budget
    left = budget - (time.monotonic() - start) - min(2.0, 0.03 * budget + 0.3)
    automl = AutoML(
        task=request.task,
        time_budget=max(left, 0.5),
        metric=request.metric,
        cv=request.cv,
        include=list(request.include) if request.include else None,
        exclude=list(request.exclude) if request.exclude else None,
        random_state=request.seed,
        n_jobs=n_jobs,
        replay=request.replay,
        ignore_columns=list(request.ignore_columns) if request.ignore_columns else None,
        time_column=request.time_column,
    )
    automl.fit(frame, request.target, on_event=on_event)
    features, labels = labelled_rows(automl, frame)
    version = register_automl(
        store,
        automl,
        request.model_name,
        frame=features,
        target_values=labels,
        data_bytes=raw,
        source=request.source_name,
        job_id=job_id,
        parent=request.parent,
        description=request.description,
        time_budget=request.time_budget,
    )
    return TrainResult(version, automl, time.monotonic() - start)


def request_from_version(store, ref: str, *, data: str | bytes | None = None, source: str | None = None,
                         replay: bool = True) -> TrainRequest:
    """The request that re-runs a version's recipe: on its stored data, or on new data."""
    version = store.registry.get(ref)
    settings = dict(version.recipe.get("settings", {}))
    lineage = version.lineage or {}
    if data is None:
        sha = version.data_sha256
        if not sha:
            raise DataError(f"{version.ref} has no stored copy of its training data; give a data file to retrain on")
        data = store.artifacts.load_bytes(sha)
        source = source or (lineage.get("data") or {}).get("file")
    return TrainRequest(
        data=data,
        target=lineage.get("target"),
        source=source,
        task=settings.get("task", "auto") if lineage.get("task") is None else lineage["task"],
        time_budget=float(settings.get("time_budget") or 60.0),
        metric=lineage.get("metric") or settings.get("metric"),
        name=version.name,
        cv=settings.get("cv_resolved") or settings.get("cv", "auto"),  # the same folds, whatever the budget
        include=tuple(settings["include"]) if settings.get("include") else None,
        exclude=tuple(settings["exclude"]) if settings.get("exclude") else None,
        seed=int(settings.get("random_state") or 0),
        parent=version.ref,
        replay=list(version.recipe.get("trials", [])) if replay else None,
        ignore_columns=tuple(settings["ignore_columns"]) if settings.get("ignore_columns") else None,
        time_column=settings.get("time_column"),
    )


def reproduce_request(store, ref: str) -> TrainRequest:
    """The request that re-runs a version's recorded trials on its own stored data (for a job)."""
    request = request_from_version(store, ref)
    return replace(request, description=f"reproduction of {request.parent}")


def retrain_request(store, ref: str, data: str | bytes, *, source: str | None = None) -> TrainRequest:
    """The request that runs a version's recipe on new data, as a child version (for a job)."""
    request = request_from_version(store, ref, data=data, source=source)
    return replace(request, description=f"retrained from {request.parent}")


def reproduce(store, ref: str, **kwargs) -> TrainResult:
    """Re-run a version's recorded trials on its own stored data with the same seed, as a child version."""
    return run_training(store, reproduce_request(store, ref), **kwargs)


def retrain(store, ref: str, data: str | bytes, *, source: str | None = None, **kwargs) -> TrainResult:
    """Run a version's recipe (same settings and trial order) on new data, as a child version."""
    return run_training(store, retrain_request(store, ref, data, source=source), **kwargs)


def training_data(store, ref: str) -> tuple[pd.DataFrame, pd.Series | None]:
    """A version's labelled training rows (features as read, target values) from its stored copy.

    Raises `DataError` when the version has no stored copy (for example an imported model).
    """
    request = request_from_version(store, ref, replay=False)
    frame = read_table(request.data, name=request.source)
    target = request.target
    if not target or target not in frame.columns:
        return frame, None
    task = store.registry.get(ref).task
    labels = target_values(frame, target, profile_table(frame[[target]], target), task)
    keep = labels.notna().to_numpy()
    return frame.loc[keep].drop(columns=[target]).reset_index(drop=True), labels[keep].reset_index(drop=True)
