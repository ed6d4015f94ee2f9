"""Everything the API offers besides predictions: models, training jobs, metrics, importance, explanations.

Framework-free functions over the store; `api` maps them to routes. These endpoints may open the
database (they are not on the prediction hot path). Training runs in background threads of this
process through `automl_core.jobs.JobManager`; a file to train on is either uploaded as the
request body or named by a path inside one of the server's allowed data folders (anything else
is refused with 403), so the API never reads arbitrary files of the host.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .errors import ApiError, bad_request, invalid_input, not_found

TASKS = ("auto", "binary", "multiclass", "regression", "timeseries", "clustering")
MAX_TIME_BUDGET = 24 * 3600.0
MAX_EXPLAIN_ROWS = 100
IMPORTANCE_DOCUMENT = "importance"
# The settings `POST /models/train` accepts, with their JSON types: one list for validation and OpenAPI.
# (Task names are spelled out here: importing automl_core.problem would pull pandas into the server.)
TRAIN_SETTINGS: dict[str, dict] = {
    "data": {"type": "string"},
    "target": {"type": "string"},
    "task": {
        "type": "string",
        "enum": ["auto", "binary", "multiclass", "regression", "timeseries", "clustering"],
    },
    "time_budget": {"type": "number"},
    "name": {"type": "string"},
    "metric": {"type": "string"},
    "cv": {"type": ["string", "integer"]},
    "include": {"type": "array", "items": {"type": "string"}},
    "exclude": {"type": "array", "items": {"type": "string"}},
    "seed": {"type": "integer"},
    "description": {"type": "string"},
}
MAX_EXPLAINERS = 4  # each holds a version's training rows: only the last few used stay in memory

logger = logging.getLogger(__name__)


def store_errors(exc: Exception) -> ApiError | None:
    """The API error for a store exception (None when it is not one)."""
    from store import InvalidRequest, NotFound, StoreBusy

    if isinstance(exc, NotFound):
        return not_found(str(exc), {"what": exc.what, "asked": exc.asked, "available": exc.available[:50]})
    if isinstance(exc, InvalidRequest):
        return ApiError(
            409 if "deploy" in str(exc) else 422,
            "conflict" if "deploy" in str(exc) else "invalid_input",
            str(exc),
        )
    if isinstance(exc, StoreBusy):  # its message names the database file: logged, not sent
        error_id = uuid.uuid4().hex[:12]
        logger.warning("store busy (error id %s): %s", error_id, exc)
        return ApiError(
            503,
            "busy",
            f"the model store is busy with other processes; try again in a moment (error id {error_id})",
            {"error_id": error_id},
            headers={"Retry-After": "2"},
        )
    return None


def _plain(obj: Any) -> Any:
    from store.jsonfiles import to_jsonable

    return to_jsonable(obj)


class Management:
    """Models, jobs and evaluations of one store, for the API."""

    def __init__(
        self,
        store,
        service,
        *,
        data_dirs: list[str | os.PathLike] | None = None,
        job_workers: int | None = None,
    ):
        self.store = store
        self.service = service
        self.data_dirs = [Path(d).expanduser().resolve() for d in (data_dirs or [])]
        self.job_workers = job_workers
        self._jobs = None
        self._lock = threading.Lock()
        self._importance_locks: dict[str, threading.Lock] = {}
        self._explainers: OrderedDict[str, Any] = OrderedDict()

    # ------------------------------------------------------------------------------ models
    def list_models(self) -> dict:
        models = self.store.registry.models()
        return {
            "models": [
                {
                    "name": m.name,
                    "latest_version": m.latest_version,
                    "versions": m.version_count,
                    "aliases": m.aliases,
                    "created_at": m.created_at,
                    "deployment": None if m.deployment is None else _deployment_dict(m.deployment),
                }
                for m in models
            ]
        }

    def model_details(self, ref: str) -> dict:
        from automl_core.cli_registry import version_dict

        registry = self.store.registry
        version = registry.get(ref)
        documents = registry.documents(version.ref)
        details = version_dict(version, documents)
        details["asked"] = ref
        details["meta"] = documents.get("meta")
        details["versions"] = [v.version for v in registry.versions(version.name)]
        details["lineage_edges"] = [vars(edge) for edge in registry.family_tree(version.name)]
        deployment = registry.deployment(version.name)
        details["deployment"] = None if deployment is None else _deployment_dict(deployment)
        routed = self.service.routing.current().resolve(version.ref)
        loaded = self.service.model(routed)
        details["inputs"] = loaded.schema.describe()
        details["example"] = {"inputs": loaded.schema.example_row()}
        details["serving"] = {
            "fast_path": loaded.fast is not None,
            "fast_path_reason": loaded.fast_reason,
            "classes": loaded.classes,
        }
        return _plain(details)

    def delete(self, ref: str) -> dict:
        from store import parse_ref

        parsed = parse_ref(ref)
        registry = self.store.registry
        if parsed.alias:
            raise invalid_input(
                f"delete a version by its number ({parsed.name}@1.2.0) or a whole model by its name, not by alias {parsed.alias!r}"
            )
        if parsed.version:
            version = registry.delete_version(ref)
            return {"deleted": [version.ref]}
        versions = [v.ref for v in registry.versions(parsed.name)]
        registry.delete_model(parsed.name)
        return {"deleted": versions}

    # ------------------------------------------------------------------------------ evaluation
    def metrics(self, ref: str) -> dict:
        registry = self.store.registry
        version = registry.get(ref)
        return _plain(
            {
                "ref": version.ref,
                "task": version.task,
                "metric": version.metric_name,
                "cv_score": version.cv_score,
                "metrics": version.metrics,
                "assessment": registry.get_document(version.ref, "assessment"),
                "caveats": registry.get_document(version.ref, "caveats", []),
            }
        )

    def importance(self, ref: str) -> dict:
        """Importance per input column, computed once per version on its stored training data.

        One definition for the whole workbench: `automl_core.report.ensure_importance`, whose
        cached registry document the dashboard and the HTML report read as well.
        """
        registry = self.store.registry
        version = registry.get(ref)
        cached = registry.get_document(version.ref, IMPORTANCE_DOCUMENT)
        if cached is not None:
            return {"ref": version.ref, "importance": cached, "cached": True}
        if version.task == "clustering":
            raise invalid_input("importance is computed for supervised models, not for clustering")
        _require_training_data(version)
        with self._lock:
            gate = self._importance_locks.setdefault(version.ref, threading.Lock())
        with gate:
            cached = registry.get_document(version.ref, IMPORTANCE_DOCUMENT)
            if cached is not None:
                return {"ref": version.ref, "importance": cached, "cached": True}
            from automl_core.report import ensure_importance

            records = ensure_importance(self.store, version.ref)
        if records is None:  # pragma: no cover - both reasons for None are refused above
            raise ApiError(409, "no_importance", f"importance cannot be computed for {version.ref}")
        return {"ref": version.ref, "importance": _plain(records), "cached": False}

    def explain(self, ref: str, rows) -> dict:
        """Shapley contributions per input column for a few rows (at most `MAX_EXPLAIN_ROWS`)."""
        if len(rows) > MAX_EXPLAIN_ROWS:
            raise invalid_input(f"explain takes at most {MAX_EXPLAIN_ROWS} rows per request, got {len(rows)}")
        from .core import _rows_frame

        version = self.store.registry.get(ref)
        loaded = self._loaded(version.ref)
        if loaded.task == "clustering":
            raise invalid_input("explanations are available for supervised models, not for clustering")
        typed = loaded.schema.type_frame(_rows_frame(rows, loaded.schema.columns))
        explainer = self._explainer(version, loaded)
        explanation = explainer.explain(typed.frame)
        out = []
        for i in range(len(typed.frame)):
            row = {
                "prediction": explanation.prediction.iloc[i],
                "output": float(explanation.output.iloc[i]),
                "base_value": float(explanation.base_value.iloc[i]),
                "contributions": {c: float(v) for c, v in explanation.contributions.iloc[i].items()},
            }
            if explanation.explained_class is not None:
                row["explained_class"] = explanation.explained_class.iloc[i]
            out.append(row)
        return _plain(
            {
                "ref": version.ref,
                "method": explanation.method,
                "space": explanation.space,
                "explanations": out,
                "warnings": typed.warnings,
            }
        )

    def _explainer(self, version, loaded):
        """The explainer of a loaded model, on its training rows; the last `MAX_EXPLAINERS` are kept."""
        with self._lock:
            found = self._explainers.get(loaded.sha256)
            if found is not None:
                self._explainers.move_to_end(loaded.sha256)
                return found
        from automl_core.explain import Explainer
        from automl_core.training import training_data

        _require_training_data(version)
        features, _ = training_data(self.store, version.ref)  # as the dashboard's explainer reads them
        explainer = Explainer(loaded.pipeline, features, loaded.task, classes=loaded.classes)
        with self._lock:
            self._explainers[loaded.sha256] = explainer
            while len(self._explainers) > MAX_EXPLAINERS:
                self._explainers.popitem(last=False)
        return explainer

    def compare(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise bad_request(
                'the body must be an object: {"models": [REF, REF, ...], "data": PATH?, "target": COL?}'
            )
        refs = body.get("models")
        if not isinstance(refs, list) or len(refs) < 2 or not all(isinstance(r, str) for r in refs):
            raise invalid_input(
                '\'models\' must list at least two model references, e.g. ["loans@1.0.0", "loans@1.1.0"]'
            )
        data = body.get("data")
        path = self.allowed_path(data) if data is not None else None
        from automl_core.comparison import compare_versions

        return _plain(
            compare_versions(
                self.store, refs, data=None if path is None else str(path), target=body.get("target")
            )
        )

    def _loaded(self, exact_ref: str):
        return self.service.model(self.service.routing.current().resolve(exact_ref))

    # ------------------------------------------------------------------------------ training
    def allowed_path(self, value: Any) -> Path:
        """A data file inside an allowed folder; 403 for anything outside them."""
        if not isinstance(value, str) or not value.strip():
            raise invalid_input(
                "'data' must be the path of a CSV or Parquet file inside an allowed data folder"
            )
        if not self.data_dirs:
            raise ApiError(
                403,
                "forbidden_path",
                "this server allows no data folder; start it with --data-dir DIR, or upload the CSV as the request body",
            )
        given = Path(value).expanduser()
        candidates = [given] if given.is_absolute() else [d / given for d in self.data_dirs]
        for candidate in candidates:
            resolved = candidate.resolve()
            if any(resolved.is_relative_to(d) for d in self.data_dirs):
                if not resolved.is_file():
                    raise invalid_input(
                        f"data file {value!r} does not exist in the allowed data folders", {"path": value}
                    )
                return resolved
        raise ApiError(
            403,
            "forbidden_path",
            f"data path {value!r} is outside the allowed data folders ({', '.join(map(str, self.data_dirs))})",
            {"path": value, "allowed": [str(d) for d in self.data_dirs]},
        )

    def train(self, settings: dict, upload: bytes | None = None, upload_name: str | None = None) -> dict:
        from automl_core.training import TrainRequest

        if upload is None:
            path = self.allowed_path(settings.get("data"))
            data: str | bytes = str(path)
            source = path.name
        else:
            if "data" in settings:
                raise bad_request("give the data either as the request body or as 'data', not both")
            data, source = upload, upload_name or "upload.csv"
        request = TrainRequest(data=data, source=source, **_train_settings(settings))
        job_id = self.jobs().submit(request)
        return {
            "job_id": job_id,
            "status": "queued",
            "name": request.model_name,
            "status_url": f"/api/v1/models/jobs/{job_id}",
        }

    def jobs(self):
        with self._lock:
            if self._jobs is None:
                from automl_core.jobs import JobManager

                self._jobs = JobManager(self.store, max_workers=self.job_workers)
            return self._jobs

    def job(self, job_id: str) -> dict:
        if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
            raise not_found(f"job {job_id!r} not found; job ids are 32 lowercase hex characters")
        jobs = self.store.jobs
        job = jobs.get(job_id)
        out = {
            "job_id": job.id,
            "kind": job.kind,
            "status": job.status,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "error": job.error,
            "result": job.result,
            "params": job.params,
            "progress": jobs.progress(job.id),
        }
        return _plain(out)

    def close(self) -> None:
        """Ask every job this server started and that has not ended to stop, then release the pool.

        The pool's threads are joined when the interpreter exits, so a training run left going
        would hold the shutdown for the rest of its budget; a cancelled one stops at its next
        search event and records itself as cancelled (a queued one is cancelled at once).
        """
        jobs = self._jobs
        if jobs is None:
            return
        for job_id in jobs.running():
            try:
                self.store.jobs.request_cancel(job_id)
            except Exception as exc:  # noqa: BLE001 - one job's store error must not keep the others going
                logger.warning("could not ask job %s to stop: %s", job_id, exc)
        jobs.shutdown(wait=False)


def _train_settings(settings: dict) -> dict:
    """TrainRequest keyword arguments from JSON or query parameters; 422 names the bad setting."""
    allowed = set(TRAIN_SETTINGS)
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise invalid_input(
            f"unknown training setting(s) {', '.join(map(repr, unknown))}; expected {', '.join(sorted(allowed))}"
        )
    task = settings.get("task") or "auto"
    if task not in TASKS:
        raise invalid_input(
            f"task {task!r} is invalid: expected one of {', '.join(TASKS)}", {"setting": "task"}
        )
    target = settings.get("target")
    if target is not None and not isinstance(target, str):
        raise invalid_input("'target' must be a column name")
    if target is None and task != "clustering":
        raise invalid_input(
            "'target' is required (the column to predict), unless task is clustering", {"setting": "target"}
        )
    try:
        budget = float(settings.get("time_budget", 60.0))
    except (TypeError, ValueError):
        raise invalid_input(
            f"time_budget {settings.get('time_budget')!r} is not a number of seconds"
        ) from None
    if not 0 < budget <= MAX_TIME_BUDGET:
        raise invalid_input(f"time_budget must be in (0, {MAX_TIME_BUDGET:g}] seconds, got {budget:g}")
    name = settings.get("name")
    if name is not None:
        from store import InvalidName
        from store.refs import validate_model_name

        try:
            validate_model_name(name)
        except InvalidName as exc:
            raise invalid_input(str(exc), {"setting": "name"}) from None
    out: dict[str, Any] = {"target": target, "task": task, "time_budget": budget, "name": name}
    if settings.get("metric") is not None:
        out["metric"] = str(settings["metric"])
    if settings.get("cv") is not None:
        cv = settings["cv"]
        out["cv"] = int(cv) if isinstance(cv, str) and cv.isdigit() else cv
    for key in ("include", "exclude"):
        value = settings.get(key)
        if value is not None:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise invalid_input(f"'{key}' must be a list of model family names")
            from automl_core.models import FAMILIES

            wrong = [i for i in items if i not in FAMILIES]
            if wrong:
                raise invalid_input(f"unknown model families {wrong}; known: {', '.join(FAMILIES)}")
            out[key] = tuple(items)
    if settings.get("seed") is not None:
        try:
            out["seed"] = int(settings["seed"])
        except (TypeError, ValueError):
            raise invalid_input(f"seed {settings['seed']!r} is not an integer") from None
    if settings.get("description"):
        out["description"] = str(settings["description"])
    return out


def _deployment_dict(deployment) -> dict:
    return {
        "champion": deployment.champion,
        "challenger": deployment.challenger,
        "mode": deployment.mode,
        "challenger_weight": deployment.challenger_weight,
        "updated_at": deployment.updated_at,
    }


def _require_training_data(version) -> None:
    """409 when a version keeps no copy of its training data (an imported model, for example)."""
    data = (version.lineage or {}).get("data") or {}
    if not data.get("stored_copy_sha256"):
        raise ApiError(409, "no_training_data", f"{version.ref} has no stored copy of its training data")
