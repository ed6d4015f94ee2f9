"""Jobs: live progress of every training job (from any tab or process), cancel, outcomes and event logs."""

import pandas as pd
import streamlit as st

from pages import ui

ui.init_state()
st.title("Jobs")
st.caption("Updates by itself every second; jobs keep running while you use other pages or tabs.")


@st.fragment(run_every=1.0)
def board() -> None:
    jobs = ui.job_list(ui.home())
    if not jobs:
        st.info("No jobs yet. Start one on the Train page.")
        st.page_link(ui.PAGES["train"], label="Train a model", icon=":material/model_training:")
        return
    active = [job for job in jobs if job.active]
    finished = [job for job in jobs if not job.active]
    st.caption(f"{len(active)} running or queued · {len(finished)} finished (newest {len(jobs)} shown)")
    for job in active + finished[:20]:
        ui.job_card(job)


board()

st.subheader("Event log")
jobs = ui.job_list(ui.home())
if jobs:
    ids = [job.id for job in jobs]
    titles = {job.id: f"{ui.job_title(job)} ({job.id[:8]})" for job in jobs}  # stable labels across reruns
    default = ids.index(st.session_state.job_id) if st.session_state.job_id in ids else 0
    chosen = st.selectbox("Job", ids, index=default, format_func=titles.get, key="events_job")

    @st.fragment(run_every=2.0)
    def events() -> None:
        batch = ui.get_store().jobs.events(chosen)
        trials = [e for e in batch.events if e.get("type") == "trial"]
        rows = [e for e in batch.events if e.get("type") != "trial"]
        ok = sum(1 for t in trials if t.get("status") == "ok")
        st.caption(f"{len(trials)} trials finished ({ok} scored on every fold, the rest pruned or failed)")
        if rows:
            frame = pd.DataFrame(rows)
            frame["time"] = pd.to_datetime(frame["ts"], unit="s", utc=True).dt.strftime("%H:%M:%S")
            shown = [
                c
                for c in ("time", "type", "stage", "percent", "message", "best_score", "status", "error")
                if c in frame.columns
            ]
            st.dataframe(frame[shown].iloc[::-1], hide_index=True, key="events_table", height=300)

    events()
