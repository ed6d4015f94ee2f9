"""The AutoML workbench dashboard: `uv run streamlit run app.py`.

The router and frame: page config, the session's UI state, the shared sidebar, and the pages.
Every page is a short script in `pages/` that calls `automl_core` and `store`.
"""

from __future__ import annotations

import streamlit as st

from pages import ui

st.set_page_config(page_title="AutoML workbench", page_icon=":material/insights:", layout="wide")
ui.init_state()

P = ui.PAGES
navigation = st.navigation(
    {
        "": [st.Page(P["home"], title="Home", icon=":material/home:", default=True)],
        "Build": [
            st.Page(P["data"], title="Data", icon=":material/table:"),
            st.Page(P["train"], title="Train", icon=":material/model_training:"),
            st.Page(P["jobs"], title="Jobs", icon=":material/pending_actions:"),
        ],
        "Understand": [
            st.Page(
                P["leaderboard"],
                title="Leaderboard & compare",
                icon=":material/leaderboard:",
                url_path="leaderboard",
            ),
            st.Page(P["model"], title="Model", icon=":material/analytics:"),
            st.Page(P["playground"], title="Playground", icon=":material/tune:"),
            st.Page(P["batch"], title="Batch predict", icon=":material/table_view:", url_path="batch"),
        ],
        "Operate": [
            st.Page(
                P["registry"], title="Registry & deploy", icon=":material/inventory_2:", url_path="registry"
            ),
            st.Page(P["monitoring"], title="Monitoring", icon=":material/monitoring:"),
        ],
    }
)

with st.sidebar:
    state = st.session_state
    if state.data_name:
        st.caption(f":material/table: **{state.data_name}**" + (f" → {state.target}" if state.target else ""))
    if state.model_ref:
        st.caption(f":material/analytics: **{state.model_ref}**")
    st.caption(f"Home: `{ui.home()}`")

navigation.run()
