"""Model: metrics, charts, caveats, importance, SHAP, per-row explanations, lineage and downloads."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from automl_core import report
from pages import charts, ui

ui.init_state()
st.title("Model")

version = ui.pick_version("model")
if version is None:
    ui.no_models_guard()
home = ui.home()
store = ui.get_store()
docs = ui.documents(home, version.id, version.ref)
meta = docs.get("meta") or {}
assessment = docs.get("assessment") or {}
metrics = assessment.get("metrics") or {}
task = meta.get("task") or version.task
metric = version.metric_name
lineage = version.lineage or {}

aliases = " ".join(f":blue-badge[{alias}]" for alias in version.aliases)
st.markdown(
    f"### {version.ref} {aliases}\n"
    f"**{task}** on `{(lineage.get('data') or {}).get('file', '?')}` → target **{meta.get('target') or '–'}** · "
    f"{metric} **{ui.fmt(version.cv_score)}** (cross-validated) · chosen: {lineage.get('chosen_model', '?')} · "
    f"registered {ui.ago(version.created_at)}"
)
if version.description:
    st.caption(version.description)

for caveat in docs.get("caveats") or []:
    show = st.error if caveat.get("severity") == "danger" else st.warning
    show(caveat.get("message", ""), icon=":material/report:")

tab_metrics, tab_charts, tab_importance, tab_row, tab_lineage, tab_download = st.tabs(
    ["Metrics", "Charts", "Importance & SHAP", "Explain a row", "Lineage", "Download"]
)

# ---------------------------------------------------------------- metrics
with tab_metrics:
    if assessment.get("scored_on"):
        st.caption(f"Scored on {assessment['scored_on']}: no row is scored by a model that saw it.")
    headline = {
        "binary": ["roc_auc", "accuracy", "f1", "log_loss"],
        "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"],
        "regression": ["rmse", "mae", "r2", "mape"],
        "timeseries": ["rmse", "mae", "mase", "smape"],
        "clustering": ["silhouette", "calinski_harabasz", "davies_bouldin"],
    }.get(task, [])
    shown = [m for m in headline if m in metrics]
    for column, name in zip(st.columns(max(1, len(shown))), shown, strict=False):
        column.metric(name, ui.fmt(metrics[name]))
    left, right = st.columns([2, 3])
    if metrics:
        table = pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})
        left.markdown(f"**All {len(table)} metrics**")
        left.dataframe(
            table,
            hide_index=True,
            key="metrics_table",
            height=min(600, 40 + 35 * len(table)),
            column_config={"value": st.column_config.NumberColumn(format="%.4f")},
        )
    if assessment.get("per_class"):
        right.markdown("**Per class**")
        right.dataframe(pd.DataFrame(assessment["per_class"]), hide_index=True, key="per_class")
    if assessment.get("class_balance"):
        right.markdown("**Class balance** (actual against predicted shares)")
        right.dataframe(pd.DataFrame(assessment["class_balance"]), hide_index=True, key="class_balance")

# ---------------------------------------------------------------- charts
with tab_charts:
    if task in ("binary", "multiclass"):
        left, right = st.columns(2)
        if assessment.get("confusion_matrix"):
            left.markdown("**Confusion matrix**")
            left.altair_chart(charts.confusion_matrix(assessment["confusion_matrix"]))
        if assessment.get("calibration"):
            right.altair_chart(charts.calibration(assessment["calibration"]), width="stretch")
        left, right = st.columns(2)
        if assessment.get("roc_curve"):
            left.altair_chart(charts.roc_curve(assessment["roc_curve"]), width="stretch")
        if assessment.get("pr_curve"):
            right.altair_chart(charts.pr_curve(assessment["pr_curve"]), width="stretch")
        thresholds = assessment.get("thresholds")
        if thresholds and thresholds.get("table"):
            best = thresholds.get("best") or {}
            st.markdown(
                f"**Decision threshold** for the positive class **{thresholds.get('positive_class')}**: "
                f"F1 prefers {ui.fmt(best.get('f1'), 3)}, balanced accuracy {ui.fmt(best.get('balanced_accuracy'), 3)} "
                "(the model's default is 0.5)."
            )
            st.altair_chart(charts.thresholds(thresholds["table"], best.get("f1")), width="stretch")
    elif task in ("regression", "timeseries"):
        intervals = assessment.get("intervals")
        if intervals:
            st.info(
                f"**Prediction intervals**: {1 - intervals['alpha']:.0%} of actual values should fall within "
                f"± {ui.fmt(intervals['half_width'])} of the prediction; measured coverage "
                f"**{intervals['coverage']:.1%}** ({intervals.get('measured_on')}).",
                icon=":material/straighten:",
            )
        left, right = st.columns(2)
        if assessment.get("residuals"):
            half = intervals.get("half_width") if intervals else None
            left.altair_chart(charts.actual_vs_predicted(assessment["residuals"], half), width="stretch")
            right.altair_chart(charts.residuals(assessment["residuals"]), width="stretch")
        if assessment.get("residual_histogram"):
            st.altair_chart(charts.residual_histogram(assessment["residual_histogram"]), width="stretch")
    elif assessment.get("clusters"):
        st.altair_chart(charts.cluster_sizes(assessment["clusters"]), width="stretch")
        st.dataframe(pd.DataFrame(assessment["clusters"]), hide_index=True)

# ---------------------------------------------------------------- importance and SHAP
try:
    features, labels = ui.training_rows(home, version.id, version.ref)
except ui.USER_ERRORS as exc:
    features, labels, data_error = None, None, str(exc)
else:
    data_error = None

with tab_importance:
    if features is None:
        st.info(f"Explanations need the training rows, which this version does not carry: {data_error}")
    else:
        if task != "clustering":
            try:
                summary = ui.shap_summary(home, version.id, version.ref, task)
            except (ValueError, TypeError) as exc:
                st.warning(f"SHAP values are not available for this model: {exc}")
            else:
                st.markdown(
                    f"**SHAP summary**: how much each column moves the {summary.space} "
                    f"({summary.method} explainer, {summary.n_rows:,} rows)"
                )
                order = summary.importance["column"].tolist()
                left, right = st.columns([2, 3])
                left.altair_chart(
                    charts.importance(
                        summary.importance, "mean_abs_shap", f"mean |contribution| to the {summary.space}"
                    ),
                    width="stretch",
                )
                right.altair_chart(charts.beeswarm(summary.values, order, summary.space), width="stretch")

        st.markdown(
            "**Permutation importance**: how much the score drops when a column's values are shuffled"
        )

        if (
            task != "clustering"
            and "importance" not in docs
            and ui.importance_state(home, version.id)[0] == "idle"
        ):
            if store.registry.get_document(version.ref, "importance") is None:
                ui.start_importance(home, version)  # once per version; cached as a document afterwards
        polling = ui.importance_state(home, version.id)[0] == "running"

        @st.fragment(run_every=1.0 if polling else None)
        def permutation() -> None:
            stored = store.registry.get_document(version.ref, "importance")
            status, error = ui.importance_state(home, version.id)
            if polling and status != "running":
                st.rerun()  # finished: redraw once without polling
            if stored:
                frame = pd.DataFrame(stored)
                st.altair_chart(
                    charts.importance(
                        frame, "permutation_mean", "score drop when shuffled", error="permutation_std"
                    ),
                    width="stretch",
                )
                if frame["importance_model"].notna().any():
                    with st.expander("The model's own importance (gain, impurity or |coefficient|)"):
                        st.altair_chart(
                            charts.importance(
                                frame.dropna(subset=["importance_model"]),
                                "importance_model",
                                "share of importance",
                            ),
                            width="stretch",
                        )
            elif status == "running":
                st.caption("Computing in the background (once per version); it appears here when done.")
            else:
                if error:
                    st.error(f"Permutation importance failed: {error}")
                if st.button(
                    "Compute permutation importance", key="compute_importance", icon=":material/calculate:"
                ):
                    ui.start_importance(home, version)
                    st.rerun()

        permutation()

# ---------------------------------------------------------------- explain a row
with tab_row:
    if features is None or task == "clustering":
        st.info("Per-row explanations need the training rows and a supervised model.")
    else:
        row = st.number_input(
            "Training row", min_value=0, max_value=len(features) - 1, value=0, step=1, key="explain_row"
        )
        try:
            explanation = ui.explainer(home, version.id, version.ref, task).explain(features.iloc[[int(row)]])
        except (ValueError, TypeError) as exc:
            st.warning(f"This model cannot be explained row by row: {exc}")
        else:
            contributions = explanation.contributions.iloc[0]
            values = explanation.feature_values.iloc[0]
            frame = pd.DataFrame(
                {
                    "column": contributions.index,
                    "label": [f"{c} = {str(values[c])[:24]}" for c in contributions.index],
                    "contribution": contributions.to_numpy(dtype=float),
                }
            )
            what = (
                f"probability of **{explanation.explained_class.iloc[0]}**"
                if explanation.explained_class is not None
                else "prediction"
            )
            st.markdown(
                f"Prediction **{explanation.prediction.iloc[0]}**"
                + (f" (actual: {labels.iloc[int(row)]})" if labels is not None else "")
                + f". The {what} starts at the average {ui.fmt(float(explanation.base_value.iloc[0]))} and each "
                f"column moves it to {ui.fmt(float(explanation.output.iloc[0]))}."
            )
            st.altair_chart(
                charts.contributions(frame, f"contribution to the {explanation.space}"), width="stretch"
            )

# ---------------------------------------------------------------- lineage
with tab_lineage:
    data = lineage.get("data") or {}
    plan = lineage.get("cv_plan") or {}
    st.markdown(
        f"- **Data**: `{data.get('file')}`, {data.get('rows', '?')} rows ({data.get('rows_used', '?')} used, "
        f"{data.get('unlabeled_rows_dropped', 0)} without target dropped), SHA-256 `{str(data.get('fingerprint_sha256'))[:16]}…`\n"
        f"- **Problem**: {lineage.get('task_reason', task)}\n"
        f"- **Validation**: {plan.get('reason', '?')} · seed {lineage.get('seed')} · budget {lineage.get('time_budget')} s\n"
        f"- **Chosen**: {lineage.get('chosen_model')} with `{lineage.get('chosen_params')}`\n"
        f"- **Made by** job `{lineage.get('job_id')}` · parent {lineage.get('parent') or 'none'} · "
        f"git `{str(lineage.get('git_commit'))[:10]}`"
    )
    columns = pd.DataFrame(data.get("columns") or [])
    if not columns.empty:
        st.dataframe(columns, hide_index=True, key="lineage_columns")
    with st.expander("Libraries and the full lineage record"):
        st.json(lineage, expanded=False)

# ---------------------------------------------------------------- downloads
with tab_download:

    def model_archive() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = store.registry.export_version(
                version.ref, Path(folder) / f"{version.name}-{version.version}.zip"
            )
            return path.read_bytes()

    st.download_button(
        "Download the model (one portable file)",
        model_archive,
        file_name=f"{version.name}-{version.version}.zip",
        mime="application/zip",
        key="download_model",
        icon=":material/download:",
        help="Pipeline, input schema, library versions and a model card readable without unpickling.",
    )

    def html_report() -> str:
        return report.render_html(report.version_report(store, version.ref))

    st.download_button(
        "Download the HTML report",
        html_report,
        file_name=f"{version.name}-{version.version}-report.html",
        mime="text/html",
        key="download_report",
        icon=":material/description:",
        help="One self-contained file (opens offline): data summary, metrics, charts, importance and caveats.",
    )
