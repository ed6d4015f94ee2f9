"""Train: time budget, metric, model families and validation plan; start a background job and keep working."""

import streamlit as st

from automl_core.models import FAMILIES, families_for
from automl_core.registration import default_model_name
from automl_core.scoring import METRICS_BY_TASK
from automl_core.training import TrainRequest
from pages import ui
from store.refs import validate_model_name

ui.init_state()
state = st.session_state
st.title("Train")

if not state.data_bytes:
    st.info("Choose a dataset first: upload a file or load a sample on the Data page.")
    st.page_link(ui.PAGES["data"], label="Go to Data", icon=":material/table:")
    st.stop()
try:
    frame, profile, problem = ui.session_dataset()
except ui.USER_ERRORS as exc:
    st.error(f"The dataset is not ready to train: {exc}")
    st.page_link(ui.PAGES["data"], label="Fix it on the Data page", icon=":material/table:")
    st.stop()

st.markdown(
    f"**{state.data_name}** · {len(frame):,} rows · target **{problem.target or 'none'}** · "
    f"**{problem.task}**: {problem.reason}"
)

families, skipped = families_for(problem.task, profile.n_rows)
names = [f.name for f in families]
metrics = list(METRICS_BY_TASK[problem.task])
features = [c.name for c in profile.columns if c.role == "feature"]
CV_CHOICES = ["auto", "holdout", "3", "5", "10"]
CV_LABELS = {
    "auto": "auto (chosen from rows and budget)",
    "holdout": "holdout (20 %)",
    "3": "3-fold",
    "5": "5-fold",
    "10": "10-fold",
}

left, right = st.columns(2)
with left:
    name = st.text_input(
        "Model name",
        value=default_model_name(state.data_name),
        key="model_name",
        help="Versions of the same name are numbered 1.0.0, 1.1.0, …",
    )
    budget = st.number_input(
        "Time budget (seconds)",
        min_value=3,
        max_value=24 * 3600,
        value=60,
        step=10,
        key="budget",
        help="The whole job, search and final fit, stays within this budget.",
    )
    metric = st.selectbox("Metric to optimise", metrics, index=metrics.index(problem.metric), key="metric")
with right:
    cv = st.selectbox(
        "Validation plan",
        CV_CHOICES,
        format_func=CV_LABELS.get,
        key="cv",
        disabled=problem.task == "timeseries",
        help="Forecasts are always validated on time-ordered windows.",
    )
    chosen = (
        st.multiselect(
            "Model families",
            names,
            default=names,
            format_func=lambda n: FAMILIES[n].label,
            key="families",
            help="\n".join(f"- **{FAMILIES[n].label}**: {FAMILIES[n].description}" for n in names),
        )
        if names
        else []
    )
    ignore = st.multiselect(
        "Columns to leave out",
        features,
        key="ignore",
        help="For example a column that is only known after the outcome.",
    )
if skipped:
    relevant = {n: why for n, why in skipped.items() if not why.startswith("does not handle")}
    if relevant:
        st.caption("Not tried: " + "; ".join(f"{FAMILIES[n].label} ({why})" for n, why in relevant.items()))
seed = st.number_input("Random seed", min_value=0, value=0, step=1, key="seed")

name_error = None
try:
    validate_model_name(name)
except ui.USER_ERRORS as exc:
    name_error = str(exc)
    st.error(name_error)
if names and not chosen:
    st.warning("Choose at least one model family.")

start = st.button(
    "Start training",
    key="train",
    type="primary",
    icon=":material/play_arrow:",
    disabled=bool(name_error) or bool(names and not chosen),
)
if start:
    request = TrainRequest(
        data=state.data_bytes,
        target=problem.target,
        source=state.data_name,
        task=state.task,
        time_budget=float(budget),
        metric=metric,
        name=name,
        cv=int(cv) if cv.isdigit() else cv,
        include=tuple(chosen) if names and set(chosen) != set(names) else None,
        seed=int(seed),
        ignore_columns=tuple(ignore) or None,
    )
    state.job_id = ui.get_manager().submit(request)
    st.toast(f"Training job started ({budget:.0f} s budget)", icon=":material/rocket_launch:")

if state.job_id:
    st.subheader("Your job")
    try:
        first = ui.get_store().jobs.get(state.job_id)
    except ui.USER_ERRORS:
        first = None
    if first is not None:

        @st.fragment(run_every=1.0 if first.active else None)
        def live_job() -> None:
            job = next((j for j in ui.job_list(ui.home()) if j.id == state.job_id), None)
            job = job or ui.get_store().jobs.get(state.job_id)
            ui.job_card(job)
            if first.active and not job.active:
                st.rerun()  # the job ended: redraw the page once and stop polling

        live_job()
        st.caption("Training runs in the background: switch pages, start another job or open a new tab.")
        st.page_link(ui.PAGES["jobs"], label="All jobs", icon=":material/pending_actions:")
