"""Home: what the workbench does, the sample datasets, and where things stand."""

import streamlit as st

from automl_core.samples import list_samples
from pages import ui

ui.init_state()

st.title("AutoML workbench")
st.markdown(
    "Upload a table, pick the column to predict, and the workbench does the rest: it reads messy files, "
    "explains what each column is, chooses the problem type and the validation plan, searches ten model "
    "families within your time budget, and registers the best model with everything needed to trust it, "
    "reproduce it and serve it. Nothing to set up and no server to start: models, jobs and logs live in "
    f"one folder (`{ui.home()}`)."
)

steps = st.columns(4)
steps[0].markdown("**1 · Data**  \nUpload a CSV or Parquet file; see each column's kind and why.")
steps[1].markdown("**2 · Train**  \nSet a time budget and start a job; keep working while it runs.")
steps[2].markdown("**3 · Understand**  \nCompare models, read metrics, charts, caveats and explanations.")
steps[3].markdown("**4 · Operate**  \nPredict, promote to production, serve over HTTP, watch for drift.")

if st.button("Start with your own file", key="start", type="primary", icon=":material/upload_file:"):
    ui.go("data")

st.subheader("Sample datasets")
samples = list_samples()
for row in range(0, len(samples), 4):
    for column, sample in zip(st.columns(4), samples[row : row + 4], strict=False):
        with column.container(border=True, height="stretch"):
            st.markdown(
                f"**{sample.name}**  \n:gray[{sample.task}"
                + (f" · target `{sample.target}`]" if sample.target else "]")
            )
            st.caption(sample.description)
            if st.button("Use this dataset", key=f"sample_{sample.name}"):
                ui.set_data(sample.path.read_bytes(), sample.path.name, sample.target)
                ui.go("data")

st.subheader("Workbench")
models = ui.model_summaries(ui.home())
jobs = ui.job_list(ui.home())
running = [job for job in jobs if job.active]
counts = st.columns(3)
counts[0].metric("Registered models", len(models))
counts[1].metric("Jobs running or queued", len(running))
counts[2].metric("Deployments", sum(1 for m in models if m.deployment is not None))
if running:
    st.page_link(ui.PAGES["jobs"], label="Follow the running jobs", icon=":material/pending_actions:")
elif not models:
    st.caption("Nothing trained yet: pick a sample dataset above to try the whole flow in a few minutes.")
