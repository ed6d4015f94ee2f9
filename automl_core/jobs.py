"""Background training jobs: a bounded pool of threads, progress written to the store.

Any process can read a job's status and progress from the store (the job row and its JSONL
event log); a cancel request is a flag file the running job checks at every search event. A
failing job is recorded with its error and never takes the host process down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor

from .errors import AutoMLError, Cancelled
from .search import SearchEvent
from .training import TrainRequest, run_training

logger = logging.getLogger(__name__)
_PROGRESS_INTERVAL = 0.25


def default_workers() -> int:
    """Jobs that may train at once: AUTOML_JOB_WORKERS, else 2 (or half the cores when there are many)."""
    env = os.environ.get("AUTOML_JOB_WORKERS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(2, (os.cpu_count() or 2) // 2)


class JobManager:
    """Submit training requests; they run in background threads and report through the store."""

    def __init__(self, store, *, max_workers: int | None = None, aftercare: bool = True):
        self.store = store
        self.max_workers = max_workers or default_workers()
        self.threads_per_job = max(1, (os.cpu_count() or 1) // self.max_workers)
        self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="automl-job")
        # one thread for the slow per-version work after a job (importance, SHAP summary), so that it
        # never holds a training slot and the dashboard and the server find it cached
        self._aftercare = ThreadPoolExecutor(1, thread_name_prefix="automl-aftercare") if aftercare else None
        self._futures: dict[str, Future] = {}
        self._aftercare_futures: dict[str, Future] = {}
        self._lock = threading.Lock()

    def submit(self, request: TrainRequest, *, kind: str = "train") -> str:
        """Queue a training run; returns its job id at once."""
        job = self.store.jobs.create(kind, request.describe())
        future = self._pool.submit(self._run, job.id, request)
        with self._lock:
            self._futures[job.id] = future
        return job.id

    def _run(self, job_id: str, request: TrainRequest) -> dict | None:
        jobs = self.store.jobs
        if jobs.get(job_id).status != "queued":  # cancelled while it waited: already final
            return None
        if jobs.cancel_requested(job_id):
            jobs.finish(job_id, "cancelled", error="cancelled before it started")
            return None
        try:
            jobs.start(job_id)
        except Exception:  # noqa: BLE001 - a job cancelled while queued cannot start; nothing to do
            return None
        log = jobs.event_log(job_id)
        last = [0.0]

        def on_event(event: SearchEvent) -> None:
            if jobs.cancel_requested(job_id):
                raise Cancelled(f"job {job_id} was cancelled")
            now = time.monotonic()
            record = event.to_dict()
            trial = record.pop("trial", None)
            if trial is not None and event.type == "trial_finished":
                log.append({"type": "trial", **trial, "metric": event.metric,
                            "greater_is_better": event.greater_is_better})
            if event.type in ("stage", "done") or now - last[0] >= _PROGRESS_INTERVAL:
                last[0] = now
                log.append({**record, "type": "progress", "event": event.type})

        try:
            result = run_training(self.store, request, on_event=on_event, job_id=job_id, n_jobs=self.threads_per_job)
        except Cancelled:
            log.append({"type": "progress", "event": "cancelled", "stage": "cancelled", "percent": 100.0,
                        "message": "cancelled by request"})
            jobs.finish(job_id, "cancelled", error="cancelled by request")
            return None
        except AutoMLError as exc:
            log.append({"type": "error", "message": str(exc)})
            jobs.finish(job_id, "failed", error=str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a job must never take the host process down
            logger.error("job %s failed:\n%s", job_id, traceback.format_exc())
            message = f"internal error ({type(exc).__name__}: {exc})"
            log.append({"type": "error", "message": message})
            jobs.finish(job_id, "failed", error=message)
            return None
        finally:
            log.close()
        version = result.version
        outcome = {
            "ref": version.ref,
            "name": version.name,
            "version": version.version,
            "task": result.automl.task_,
            "metric": result.automl.metric_,
            "cv_score": result.automl.best_score_,
            "best": result.automl.best_model_name_,
            "seconds": round(result.seconds, 2),
        }
        jobs.finish(job_id, "succeeded", result=outcome)
        if self._aftercare is not None and version.task != "clustering":
            future = self._aftercare.submit(self._cache_explanations, version.ref)
            with self._lock:
                self._aftercare_futures[job_id] = future
        return outcome

    def _cache_explanations(self, ref: str) -> bool:
        """Permutation importance and the SHAP summary of a new version, cached as its documents."""
        from .report import ensure_importance, ensure_shap_summary

        done = True
        for name, compute in (("importance", ensure_importance), ("SHAP summary", ensure_shap_summary)):
            try:
                done = compute(self.store, ref) is not None and done
            except Exception as exc:  # noqa: BLE001 - the pages and the server compute it on demand instead
                # one line, no traceback: the usual cause is a version deleted while this ran
                logger.warning("%s of %s was not computed: %s: %s", name, ref, type(exc).__name__, exc)
                done = False
        return done

    def wait_aftercare(self, job_id: str, timeout: float | None = None) -> bool | None:
        """Block until the importance and SHAP summary of a job's version are cached (True when both are).

        None when nothing was started: the job failed, was clustering, or aftercare is off.
        """
        with self._lock:
            future = self._aftercare_futures.get(job_id)
        return None if future is None else future.result(timeout=timeout)

    def status(self, job_id: str):
        return self.store.jobs.get(job_id)

    def progress(self, job_id: str) -> dict | None:
        return self.store.jobs.progress(job_id)

    def cancel(self, job_id: str):
        return self.store.jobs.request_cancel(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> dict | None:
        """Block until a job submitted here ends; returns its outcome (None if it failed or was cancelled)."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is None:
            raise KeyError(f"job {job_id} was not submitted by this manager")
        return future.result(timeout=timeout)

    def running(self) -> list[str]:
        with self._lock:
            return [job_id for job_id, f in self._futures.items() if not f.done()]

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        if self._aftercare is not None:
            self._aftercare.shutdown(wait=wait, cancel_futures=not wait)
