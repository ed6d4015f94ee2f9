"""Monitoring: traffic, latency, drift per feature and accuracy per variant, with a promotion proposal."""

import streamlit as st

from pages import charts, ui

ui.init_state()
st.title("Monitoring")
st.caption(
    "What the prediction server logged for a model: requests, latency, input drift against the "
    "training data and, once outcomes are posted back, accuracy per variant."
)

summaries = ui.model_summaries(ui.home())
if not summaries:
    ui.no_models_guard()
names = [m.name for m in summaries]
current = (st.session_state.model_ref or "").partition("@")[0]
left, window_box, middle, right, refresh = st.columns([2.6, 1.6, 1.6, 1.8, 1.4], vertical_alignment="bottom")
name = left.selectbox(
    "Model", names, index=names.index(current) if current in names else 0, key="monitor_model"
)
WINDOWS = {"24 hours": 86400.0, "7 days": 7 * 86400.0, "30 days": 30 * 86400.0, "90 days": 90 * 86400.0,
           "all": None}
window = window_box.selectbox("Last", list(WINDOWS), index=1, key="monitor_window")
BUCKETS = {"1min": "1 minute", "5min": "5 minutes", "15min": "15 minutes", "1h": "1 hour", "1d": "1 day"}
bucket = middle.selectbox(
    "Time bucket", list(BUCKETS), index=3, format_func=BUCKETS.get, key="monitor_bucket"
)
live = right.toggle("Refresh every 10 s", key="monitor_live")
refresh.button(
    "Refresh", key="monitor_refresh", on_click=ui.monitoring_overview.clear, icon=":material/refresh:"
)

summary = next(m for m in summaries if m.name == name)
if summary.deployment is not None:
    d = summary.deployment
    st.markdown(
        f"Deployment: champion **{d.champion}**"
        + (f", challenger **{d.challenger}** ({d.mode}, {d.challenger_weight:.0%})" if d.challenger else "")
    )


@st.fragment(run_every=10 if live else None)
def overview() -> None:
    try:
        data = ui.monitoring_overview(ui.home(), name, bucket, WINDOWS[window])
    except ui.USER_ERRORS as exc:
        st.error(str(exc))
        return
    for note in data.notes:
        st.caption(note)
    if data.traffic.empty:
        st.info(
            f"No predictions logged for {name}{'' if window == 'all' else f' in the last {window}'}. Start the "
            "server (see Registry & deploy → Serve) and send it requests; they appear here."
        )
        return
    proposal = data.proposal
    if proposal:
        box = st.success if proposal.get("promote") else st.info
        box(f"**Proposal**: {proposal['message']}", icon=":material/how_to_vote:")
    totals = st.columns(3)
    totals[0].metric("Requests", f"{int(data.traffic['requests'].sum()):,}")
    totals[1].metric("Latency p50 (ms, last bucket)", ui.fmt(float(data.traffic["latency_p50"].iloc[-1]), 3))
    totals[2].metric("Latency p99 (ms, last bucket)", ui.fmt(float(data.traffic["latency_p99"].iloc[-1]), 3))
    left, right = st.columns(2)
    left.altair_chart(charts.traffic(data.traffic), width="stretch")
    right.altair_chart(charts.latency(data.traffic), width="stretch")
    st.subheader("Drift")
    if data.drift.empty:
        st.caption("Not enough requests per time bucket to measure drift yet.")
    else:
        st.altair_chart(charts.drift(data.drift), width="stretch")
        st.caption("PSI below 0.1: stable; 0.1–0.25: moderate shift; above 0.25: the inputs changed.")
        st.dataframe(data.drift_latest, hide_index=True, key="drift_latest")
    st.subheader("Accuracy over time")
    if data.performance.empty:
        st.caption(
            "No outcomes posted back yet (POST /api/v1/feedback with the request id and the actual value)."
        )
    else:
        metric = str(data.performance["metric"].iloc[0])
        st.altair_chart(charts.performance(data.performance, "value", metric), width="stretch")


overview()
