"""Data: upload a file or pick a sample, read its profile, choose the target and the problem type."""

import streamlit as st

from automl_core.intake import typed_column
from automl_core.problem import TASKS
from automl_core.samples import list_samples
from pages import charts, ui

ui.init_state()
state = st.session_state
NO_TARGET = "(no target: find groups)"

st.title("Data")


def take_upload() -> None:
    file = state.get("upload")
    if file is not None:
        ui.set_data(file.getvalue(), file.name)


def take_sample() -> None:
    sample = next(s for s in list_samples() if s.name == state.sample_pick)
    ui.set_data(sample.path.read_bytes(), sample.path.name, sample.target)


upload_column, sample_column = st.columns([3, 2])
upload_column.file_uploader(
    "Upload a CSV or Parquet file",
    type=["csv", "tsv", "txt", "parquet"],
    key="upload",
    on_change=take_upload,
    help="Delimiter, quoting, encoding, number formats (1,234.5 / $5k / 12%) and dates are detected for you.",
)
with sample_column:
    samples = list_samples()
    st.selectbox(
        "…or a sample dataset",
        [s.name for s in samples],
        key="sample_pick",
        format_func=lambda name: f"{name}: {next(s.description for s in samples if s.name == name)}",
    )
    st.button("Load sample", key="load_sample", on_click=take_sample, icon=":material/dataset:")

if not state.data_bytes:
    st.info("Upload a file or load a sample dataset to begin.")
    st.stop()

try:
    frame = ui.read_table(state.data_sha, state.data_name, state.data_bytes)
except ui.USER_ERRORS as exc:
    st.error(f"**{state.data_name}** cannot be used: {exc}", icon=":material/error:")
    st.stop()
st.success(
    f"Loaded {len(frame):,} rows × {frame.shape[1]} columns from **{state.data_name}**.",
    icon=":material/check:",
)

# ---------------------------------------------------------------- target
columns = list(frame.columns)
if state.target not in columns:
    state.target = None


def take_target() -> None:
    state.target = None if state.target_pick == NO_TARGET else state.target_pick
    state.task = "auto"


options = [NO_TARGET, *columns]
st.selectbox(
    "Column to predict (target)",
    options,
    index=options.index(state.target) if state.target else 0,
    key="target_pick",
    on_change=take_target,
    help="Choose no target to group the rows into clusters instead.",
)
profile = ui.profile_table(state.data_sha, state.data_name, state.target, frame)

# ---------------------------------------------------------------- problem
st.subheader("Problem")
problem, problem_error = None, None
try:
    problem = ui.detect_problem(state.data_sha, state.target, state.task, frame, profile)
except ui.USER_ERRORS as exc:
    problem_error = str(exc)
detected = None
if state.task != "auto":
    try:
        detected = ui.detect_problem(state.data_sha, state.target, "auto", frame, profile).task
    except ui.USER_ERRORS:
        detected = None
elif problem is not None:
    detected = problem.task

with st.container(key="problem"):
    if problem is not None:
        st.success(f"**{problem.task}**: {problem.reason}", icon=":material/psychology:")
        facts = [f"metric to optimise: **{problem.metric}**"]
        if problem.classes:
            shown = ", ".join(map(str, problem.classes[:8])) + (" …" if len(problem.classes) > 8 else "")
            facts.append(f"classes: {shown}")
        if problem.positive_class is not None:
            facts.append(f"positive class: **{problem.positive_class}**")
        if problem.time_column:
            facts.append(f"time index: **{problem.time_column}**")
        st.markdown(" · ".join(facts))
        for note in problem.notes:
            st.caption(note)
    else:
        st.error(problem_error, icon=":material/error:")


def take_task() -> None:
    state.task = state.task_pick


st.selectbox(
    "Problem type",
    TASKS,
    index=TASKS.index(state.task) if state.task in TASKS else 0,
    key="task_pick",
    on_change=take_task,
    format_func=lambda t: "auto (as detected)" if t == "auto" else t,
    help="Override the detected type; the choice is checked against the data."
    + (f" Detected: {detected}." if detected else ""),
)
if st.button(
    "Continue to training",
    key="to_train",
    type="primary",
    disabled=problem is None,
    icon=":material/arrow_forward:",
):
    ui.go("train")

# ---------------------------------------------------------------- profile
st.subheader("Columns")
table = profile.to_frame()
features = int((table["role"] == "feature").sum())
excluded = int((table["role"] == "excluded").sum())
numbers = st.columns(5)
numbers[0].metric("Rows", f"{profile.n_rows:,}")
numbers[1].metric("Features used", features)
numbers[2].metric("Columns left out", excluded)
numbers[3].metric("Rows without target", f"{profile.unlabeled_rows:,}")
numbers[4].metric("Duplicate rows", f"{profile.duplicate_rows:,}")
if profile.warnings:
    st.warning("\n".join(f"- {w}" for w in profile.warnings), icon=":material/info:")
st.dataframe(
    table,
    key="profile_table",
    hide_index=True,
    column_config={
        "missing %": st.column_config.ProgressColumn(
            "missing %", min_value=0, max_value=100, format="%.1f%%"
        ),
        "examples": st.column_config.TextColumn("examples", width="medium"),
        "reason": st.column_config.TextColumn("why", width="large"),
    },
)

st.subheader("Distributions")
left, right = st.columns(2)
with left:
    st.altair_chart(charts.missing_shares(table), width="stretch")
with right:
    column = st.selectbox("Column", columns, key="dist_column")
    info = profile.column(column)
    spec = profile.specs[column]
    if info.kind in ("numeric", "datetime"):
        values = typed_column(frame[column], spec)
        st.altair_chart(charts.histogram(values, column, kind=info.kind), width="stretch")
    elif info.stats.get("top"):
        st.altair_chart(charts.top_values(info.stats["top"], column), width="stretch")
    st.caption(
        f"**{column}**: {info.kind}, {info.role}: {info.reason}. "
        f"{info.n_unique:,} distinct values, {info.missing_share:.1%} missing."
    )
