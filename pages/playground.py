"""Playground: a form built from the model's input schema, the prediction, why, and what-if."""

import datetime as dt
import math

import pandas as pd
import streamlit as st

from automl_core.modelfile import predictions_frame
from automl_core.whatif import SWEEP_KINDS, what_if
from pages import charts, ui

ui.init_state()
state = st.session_state
st.title("Playground")

version = ui.pick_version("playground")
if version is None:
    ui.no_models_guard()
home = ui.home()
docs = ui.documents(home, version.id, version.ref)
meta = docs.get("meta") or {}
task = meta.get("task") or version.task
pipe = ui.pipeline(home, version.artifact.sha256, version.ref)
schema = docs.get("input_stats") or getattr(pipe.named_steps.get("clean"), "schema_", {})
if not schema:
    st.info(f"{version.ref} carries no input schema, so no form can be built for it.")
    st.stop()

if state.get("playground_for") != version.id:  # another model: start from its typical row
    for key in [k for k in state.keys() if str(k).startswith("pg_")]:
        del state[key]
    state.playground_for = version.id


def nice_step(low: float, high: float, integer: bool) -> float:
    if integer:
        return (
            max(1.0, float(10 ** math.floor(math.log10(max(high - low, 1) / 100))))
            if high - low > 200
            else 1.0
        )
    span = high - low
    return float(10 ** math.floor(math.log10(span / 100))) if span > 0 else 0.01


def input_widget(column: str, info: dict):
    """One input, chosen by the column's kind and bounded by what the model saw in training."""
    key = f"pg_{ui.slug(column)}"
    kind = info.get("kind")
    if kind == "numeric" and info.get("min") is not None:
        low, high, median = float(info["min"]), float(info["max"]), float(info.get("median", info["min"]))
        integer = bool(info.get("integer"))
        if high <= low:
            return st.number_input(column, value=low, key=key)
        step = nice_step(low, high, integer)
        value = min(max(round(median / step) * step, low), high)
        if integer and step >= 1:
            return float(st.slider(column, int(low), int(high), int(value), step=int(step), key=key))
        return st.slider(column, low, high, value, step=step, key=key, format="%g")
    if kind == "categorical":
        options = list(info.get("categories") or [])
        default = info.get("most_frequent")
        return st.selectbox(
            column, options, index=options.index(default) if default in options else 0, key=key
        )
    if kind == "boolean":
        return st.toggle(column, value=float(info.get("true_share", 0)) >= 0.5, key=key)
    if kind == "datetime" and info.get("min"):
        low, high = pd.Timestamp(info["min"]).date(), pd.Timestamp(info["max"]).date()
        value = pd.Timestamp(info.get("median") or info["min"]).date()
        picked = st.date_input(column, value=value, min_value=low, max_value=high, key=key)
        return pd.Timestamp(picked if isinstance(picked, dt.date) else value)
    examples = info.get("examples") or [""]
    return st.text_input(column, value=str(examples[0]), key=key)


row = {}
columns = list(schema)
form_column, result_column = st.columns([3, 2], gap="large")
with form_column:
    st.caption(
        "Every input starts at the typical training value and stays within the range the model has seen."
    )
    with st.container(border=True, key="playground_form"):
        grid = st.columns(2)
        for i, column in enumerate(columns):
            with grid[i % 2]:
                row[column] = input_widget(column, schema[column])
frame = pd.DataFrame([row])


try:
    predictions = predictions_frame(pipe, meta, frame)
except ui.USER_ERRORS as exc:
    st.error(str(exc))
    st.stop()
prediction = predictions["prediction"].iloc[0]

with result_column, st.container(key="prediction"):
    st.subheader("Prediction")
    if task in ("binary", "multiclass"):
        st.metric("Predicted class", str(prediction))
        proba = {
            c.removeprefix("proba_"): float(predictions[c].iloc[0])
            for c in predictions.columns
            if c.startswith("proba_")
        }
        st.altair_chart(charts.probabilities(proba), width="stretch")
    else:
        st.metric(f"Predicted {meta.get('target') or 'value'}", ui.fmt(float(prediction)))
        intervals = (docs.get("assessment") or {}).get("intervals")
        if intervals and intervals.get("half_width") is not None:
            half = float(intervals["half_width"])
            st.caption(
                f"{1 - intervals['alpha']:.0%} prediction interval: {ui.fmt(float(prediction) - half)} to "
                f"{ui.fmt(float(prediction) + half)} (measured coverage {intervals['coverage']:.1%})"
            )

focus = None  # the input that moves this prediction most: what-if starts there
with result_column:
    st.subheader("Why")
    if task == "clustering":
        st.caption("Clusters have no per-row explanation.")
    else:
        try:
            explanation = ui.explainer(home, version.id, version.ref, task).explain(frame)
        except ui.USER_ERRORS + (ValueError, TypeError) as exc:
            st.caption(f"No explanation for this model: {exc}")
        else:
            contributions = explanation.contributions.iloc[0]
            parts = pd.DataFrame(
                {
                    "column": contributions.index,
                    "label": [
                        f"{c} = {str(explanation.feature_values.iloc[0][c])[:24]}"
                        for c in contributions.index
                    ],
                    "contribution": contributions.to_numpy(dtype=float),
                }
            )
            top = parts.reindex(parts["contribution"].abs().sort_values(ascending=False).index).head(12)
            focus = next(
                (c for c in top["column"] if schema[c].get("kind") == "numeric"), top["column"].iloc[0]
            )
            st.altair_chart(
                charts.contributions(top, f"contribution to the {explanation.space}"), width="stretch"
            )
            st.caption(
                f"Starting from the average {explanation.space} {ui.fmt(float(explanation.base_value.iloc[0]))}, "
                f"these inputs move it to {ui.fmt(float(explanation.output.iloc[0]))} ({explanation.method} SHAP)."
            )
            if st.toggle("Second opinion: a local linear surrogate (LIME)", key="lime"):
                from automl_core.explain import local_surrogate

                features, _ = ui.training_rows(home, version.id, version.ref)
                surrogate = local_surrogate(pipe, frame, features, task)
                st.dataframe(surrogate[["column", "weight", "value"]], hide_index=True, key="lime_table")
                st.caption(
                    f"Surrogate fit R² = {surrogate.attrs['r2']:.2f}: trust the weights less when it is low."
                )

# ---------------------------------------------------------------- what-if
if task != "clustering":
    st.subheader("What if")
    candidates = [c for c in columns if schema[c].get("kind") in SWEEP_KINDS]
    if candidates:
        column = st.selectbox(
            "Change one input",
            candidates,
            index=candidates.index(focus) if focus in candidates else 0,
            key="whatif_column",
        )
        info = schema[column]
        kind = info.get("kind")
        focus_class = prediction if task == "multiclass" else None
        curve = what_if(pipe, {**meta, "task": task}, frame, column, info, focus_class=focus_class)
        label = curve.label
        current = row[column] if kind in ("numeric", "datetime") else None
        st.altair_chart(charts.what_if(curve.frame(), column, label, current, kind), width="stretch")
        st.caption(f"The {label} as {column} varies over its training range, every other input as set above.")
