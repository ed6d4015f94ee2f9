"""Shared pieces of the dashboard pages: the store and job manager, UI state, pickers and job cards.

Shared objects come from `st.cache_resource` (one `Store` per home, one `JobManager` per process
and home, loaded pipelines by artifact hash); serialisable results from `st.cache_data`, keyed by
everything they read. The session holds UI state only (the chosen file, target, task, job id and
model reference). Every computation is a call into `automl_core` or `store`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLError
from store import Store, StoreError
from store.home import Home

USER_ERRORS = (AutoMLError, StoreError)
"""Errors whose message is written for a person: shown with `st.error`, never as a traceback."""

STATE = {
    "data_bytes": None,  # the uploaded or sample file, exactly as read
    "data_name": None,  # its file name
    "data_sha": None,  # SHA-256 of the bytes: the cache key of everything derived from the file
    "target": None,  # the column to predict (None: clustering)
    "task": "auto",  # the task override chosen on the Data page
    "job_id": None,  # the last job this session started or opened
    "model_ref": None,  # the model version the Model, Playground, Batch and Registry pages show
}

STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/autorenew:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "interrupted": ":material/warning:",
}

PAGES = {
    "home": "pages/home.py",
    "data": "pages/data.py",
    "train": "pages/train.py",
    "jobs": "pages/jobs.py",
    "leaderboard": "pages/leaderboard.py",
    "model": "pages/model.py",
    "playground": "pages/playground.py",
    "batch": "pages/batch.py",
    "registry": "pages/registry.py",
    "monitoring": "pages/monitoring.py",
}


# --------------------------------------------------------------------------- state and shared objects
def init_state() -> None:
    """Create the session's UI state once (pages call it too, so each one runs on its own in tests)."""
    _leave_pages_folder_mode()
    for key, value in STATE.items():
        st.session_state.setdefault(key, value)


def _leave_pages_folder_mode() -> None:
    """Make `app.py` the router even when a process's first visitor opens a deep link.

    Streamlit 1.67 treats a `pages/` folder beside the main script as an old-style multipage app
    (every file a page, run without `app.py`) until the process's first `st.navigation` call. A
    first request for `/playground` would then skip `app.py`; clearing the flag and rerunning once
    per session routes it through `st.navigation` (AppTest resets the flag on every run, so the
    rerun is limited to a session's first run, which carries no widget events to lose). Naming the
    folder anything but `pages/` would make this unnecessary.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not st.session_state.get("_routed_by_app"):
            st.session_state["_routed_by_app"] = True
            st.rerun()


def home() -> str:
    """The home folder in use: `$AUTOML_HOME`, else `~/.automl`, as an absolute path."""
    return str(Home.resolve().root)


@st.cache_resource(show_spinner=False)
def _store(home: str) -> Store:
    store = Store(home)
    store.recover()  # once per home and process: jobs of dead processes become "interrupted"
    return store


def get_store() -> Store:
    """The store of the current home, shared by every session of this process."""
    return _store(home())


@st.cache_resource(show_spinner=False)
def _manager(home: str):
    from automl_core.jobs import JobManager

    return JobManager(_store(home))


def get_manager():
    """The job manager of this process: jobs survive reruns and are shared by every browser tab."""
    return _manager(home())


def go(page: str, **state) -> None:
    """Set UI state, then switch to a page (`page` is a key of `PAGES`)."""
    for key, value in state.items():
        st.session_state[key] = value
    st.switch_page(PAGES[page])


def slug(text: str) -> str:
    """A widget-key-safe, unique version of a column or model name.

    Names that are already safe are kept as they are; others get a short hash, so "Loan Amount",
    "Loan-Amount" and two non-Latin names never share a key.
    """
    text = str(text)
    safe = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "x"
    if safe == text:
        return safe
    import hashlib

    return f"{safe}_{hashlib.blake2b(text.encode(), digest_size=3).hexdigest()}"


# --------------------------------------------------------------------------- the session's data file
def set_data(data: bytes, name: str, target: str | None = None) -> None:
    """Make `data` the session's dataset (a new file resets the target and task)."""
    st.session_state.data_bytes = data
    st.session_state.data_name = name
    st.session_state.data_sha = hashlib.sha256(data).hexdigest()
    st.session_state.target = target
    st.session_state.task = "auto"


@st.cache_data(show_spinner="Reading the file…", max_entries=8)
def read_table(sha: str, name: str, _data: bytes) -> pd.DataFrame:
    from automl_core.intake import read_table as read

    return read(_data, name=name)


@st.cache_data(show_spinner="Profiling the columns…", max_entries=16)
def profile_table(sha: str, name: str, target: str | None, _frame: pd.DataFrame):
    from automl_core.intake import profile_table as profile

    return profile(_frame, target, source=name)


@st.cache_data(show_spinner=False, max_entries=32)
def detect_problem(sha: str, target: str | None, task: str, _frame: pd.DataFrame, _profile):
    from automl_core.problem import detect_problem as detect

    return detect(_frame, target, _profile, task=task)


def session_dataset():
    """(frame, profile, problem) of the session's file, target and task; raises the engine's errors."""
    state = st.session_state
    frame = read_table(state.data_sha, state.data_name, state.data_bytes)
    target = state.target if state.target in frame.columns else None
    profile = profile_table(state.data_sha, state.data_name, target, frame)
    problem = detect_problem(state.data_sha, target, state.task, frame, profile)
    return frame, profile, problem


# --------------------------------------------------------------------------- registry reads
@st.cache_data(ttl=2, show_spinner=False)
def model_summaries(home: str):
    return _store(home).registry.models()


@st.cache_data(ttl=2, show_spinner=False)
def model_versions(home: str, name: str):
    return _store(home).registry.versions(name)


@st.cache_data(ttl=30, show_spinner=False, max_entries=32)
def documents(home: str, version_id: str, ref: str) -> dict:
    """Every document of a version (assessment, caveats, leaderboard...), cached by its immutable id."""
    return _store(home).registry.documents(ref)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def pipeline(home: str, sha256: str, ref: str):
    """The version's pipeline, verified against its SHA-256; cached by artifact hash (thread-safe reads)."""
    return _store(home).registry.load(ref)


@st.cache_data(show_spinner="Loading the training data…", max_entries=4)
def training_rows(home: str, version_id: str, ref: str) -> tuple[pd.DataFrame, pd.Series | None]:
    """The version's labelled training rows (features as read, target values), from its stored copy."""
    from automl_core.training import training_data

    return training_data(_store(home), ref)


@st.cache_resource(show_spinner="Preparing explanations…", max_entries=8)
def explainer(home: str, version_id: str, ref: str, task: str):
    """A SHAP explainer of the version with a sample of its training rows as background."""
    from automl_core.explain import Explainer

    features, _ = training_rows(home, version_id, ref)
    store = _store(home)
    version = store.registry.get(ref)
    meta = store.registry.get_document(ref, "meta") or {}
    positive = meta.get("positive_class") if task == "binary" else None  # "why" speaks of the positive class
    return Explainer(pipeline(home, version.artifact.sha256, ref), features, task, target_class=positive)


def pick_version(key: str = "pick", *, label: str = "Model"):
    """Select a registered model and version; remembers the choice in `model_ref` across pages.

    Returns the `ModelVersion`, or None when nothing is registered yet.
    """
    summaries = model_summaries(home())
    if not summaries:
        return None
    names = [m.name for m in summaries]
    current_name, _, current_version = (st.session_state.model_ref or "").partition("@")
    left, right = st.columns([3, 2])
    name = left.selectbox(
        label, names, index=names.index(current_name) if current_name in names else 0, key=f"{key}_name"
    )
    versions = list(reversed(model_versions(home(), name)))  # newest first
    numbers = [v.version for v in versions]
    by_number = {v.version: v for v in versions}
    version = right.selectbox(  # labels must not change between reruns (aliases do): plain numbers
        "Version",
        numbers,
        index=numbers.index(current_version) if current_version in numbers else 0,
        key=f"{key}_version_{slug(name)}",
        help="Aliases: " + (", ".join(f"{a} → {v.version}" for v in versions for a in v.aliases) or "none"),
    )
    chosen = by_number[version]
    st.session_state.model_ref = chosen.ref
    return chosen


def no_models_guard() -> None:
    st.info("No model is registered yet. Train one first: pick a dataset, then start a training job.")
    st.page_link(PAGES["data"], label="Choose a dataset", icon=":material/table:")
    st.stop()


# --------------------------------------------------------------------------- formatting
def greater_is_better(metric: str | None) -> bool:
    """Whether a higher value of the named metric is better (losses and errors: lower is better)."""
    from automl_core.scoring import METRICS_BY_TASK

    for metrics in METRICS_BY_TASK.values():
        if metric in metrics:
            return metrics[metric].greater_is_better
    return not str(metric).endswith(("loss", "error", "rmse", "mae", "mse", "mape"))


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def ago(when: dt.datetime | None) -> str:
    if when is None:
        return "–"
    seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return when.strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- jobs
@st.cache_data(ttl=1, show_spinner=False)
def job_list(home: str, limit: int = 50):
    """The newest jobs (one database read per second, however many tabs poll)."""
    return _store(home).jobs.list(limit=limit)


def job_title(job) -> str:
    params = job.params or {}
    target = params.get("target") or "no target (clustering)"
    return f"{params.get('name') or job.kind} · {params.get('source') or ''} → {target}"


def trials_frame(events: list[dict]) -> pd.DataFrame:
    """The live leaderboard rows of a running job, from its "trial" events (finished trials only)."""
    rows = [
        {
            "model": e.get("name"),
            "family": e.get("family"),
            "score": e.get("score"),
            "std": e.get("std"),
            "fit_time": e.get("fit_time"),
            "predict_ms_per_row": 1000 * (e.get("predict_time_per_row") or 0.0),
            "size_kb": None if e.get("size_bytes") is None else e["size_bytes"] / 1024,
            "params": e.get("params"),
            "fold_scores": e.get("fold_scores"),
        }
        for e in events
        if e.get("type") == "trial" and e.get("status") == "ok" and e.get("score") is not None
    ]
    columns = [
        "model",
        "family",
        "score",
        "std",
        "fit_time",
        "predict_ms_per_row",
        "size_kb",
        "params",
        "fold_scores",
    ]
    return pd.DataFrame(rows, columns=columns)


def job_card(job, *, open_button: bool = True) -> None:
    """One job: status, live progress (percent, stage, best score so far, time left), cancel, outcome."""
    store = get_store()
    with st.container(border=True, key=f"job_{job.id}"):
        head, action = st.columns([6, 1], vertical_alignment="center")
        head.markdown(
            f"{STATUS_ICONS.get(job.status, '')} **{job_title(job)}**  \n"
            f":gray[{job.status} · {job.kind} job · started {ago(job.started_at or job.created_at)} · id {job.id[:8]}]"
        )
        if job.active:
            progress = store.jobs.progress(job.id) or {}
            percent = float(progress.get("percent") or 0.0)
            stage = progress.get("stage") or job.status
            st.progress(min(max(percent, 0.0), 100.0) / 100, text=f"{stage} · {percent:.0f}%")
            best, left, elapsed = st.columns(3)
            best.metric("Best score so far", fmt(progress.get("best_score")), help=progress.get("best_model"))
            left.metric("Time left", f"{float(progress.get('time_left') or 0):.0f} s")
            elapsed.metric("Elapsed", f"{float(progress.get('elapsed') or 0):.0f} s")
            if progress.get("message"):
                st.caption(progress["message"])
            if job.cancel_requested_at is not None:
                st.caption("Cancel requested: the job stops at its next step.")
            else:
                action.button(
                    "Cancel",
                    key=f"cancel_{job.id}",
                    on_click=get_manager().cancel,
                    args=(job.id,),
                    icon=":material/stop_circle:",
                )
        elif job.status == "succeeded":
            result = job.result or {}
            st.success(
                f"Registered **{result.get('ref')}**: {result.get('metric')} {fmt(result.get('cv_score'))} "
                f"(chosen: {result.get('best')}) in {fmt(result.get('seconds'), 3)} s"
            )
            if open_button and result.get("ref"):
                if action.button("Results", key=f"open_{job.id}", icon=":material/leaderboard:"):
                    go("leaderboard", job_id=job.id, model_ref=result["ref"])
        elif job.status == "failed":
            st.error(job.error or "the job failed")
        elif job.status == "interrupted":
            st.warning(job.error or "the process running this job stopped before it finished")
        else:
            st.info(job.error or job.status)


# --------------------------------------------------------------------------- explanations
@st.cache_data(show_spinner="Computing SHAP values…", max_entries=8)
def shap_summary(home: str, version_id: str, ref: str, task: str, max_rows: int = 500):
    """SHAP summary of the version on a sample of its training rows; computed once per version and stored."""
    from automl_core.report import ensure_shap_summary

    summary = ensure_shap_summary(_store(home), ref, max_rows=max_rows)
    if summary is None:
        raise ValueError("this version carries no training rows to explain")
    return summary


@st.cache_resource(show_spinner=False)
def _background(home: str) -> dict:
    """One worker thread per process for slow per-version computations, and their futures by version id."""
    from concurrent.futures import ThreadPoolExecutor

    return {"pool": ThreadPoolExecutor(1, thread_name_prefix="automl-ui"), "futures": {}}


def start_importance(home: str, version) -> None:
    """Permutation importance in a background thread; `automl_core.report` caches it as a document."""
    from automl_core.report import ensure_importance

    background = _background(home)
    running = background["futures"].get(version.id)
    if running is None or running.done():
        background["futures"][version.id] = background["pool"].submit(
            ensure_importance, _store(home), version.ref
        )


def importance_state(home: str, version_id: str) -> tuple[str, str | None]:
    """("running" | "failed" | "idle", error message) of the background importance of a version."""
    future = _background(home)["futures"].get(version_id)
    if future is None:
        return "idle", None
    if not future.done():
        return "running", None
    error = future.exception()
    return ("failed", str(error)) if error else ("idle", None)


# --------------------------------------------------------------------------- predictions as the server makes them
@st.cache_resource(show_spinner=False)
def _prediction_service(home: str):
    from automl_core.serving.core import PredictionService

    return PredictionService(_store(home), log_predictions=False)


def prediction_service():
    """The prediction server's core (same validation, same outputs), without logging dashboard traffic."""
    return _prediction_service(home())


@st.cache_data(ttl=10, show_spinner="Reading the prediction logs…", max_entries=16)
def monitoring_overview(home: str, name: str, bucket: str, window_seconds: float | None = None):
    """Traffic, drift, accuracy and the promotion proposal of a model over the last `window_seconds`
    (all of the logs when None), recomputed at most every 10 s."""
    import time

    from automl_core.monitoring import monitoring_overview as overview

    since = None if window_seconds is None else time.time() - window_seconds
    return overview(_store(home), name, bucket=bucket, since=since)
