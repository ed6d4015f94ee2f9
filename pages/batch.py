"""Batch predict: upload a file, get its predictions as a table and a CSV download."""

import io

import pandas as pd
import streamlit as st

from automl_core.errors import SchemaError
from automl_core.intake import read_table
from automl_core.modelfile import input_warnings, predictions_frame
from automl_core.serving.errors import ApiError
from pages import ui

ui.init_state()
st.title("Batch predict")

version = ui.pick_version("batch")
if version is None:
    ui.no_models_guard()
home = ui.home()
docs = ui.documents(home, version.id, version.ref)
meta = docs.get("meta") or {}
inputs = meta.get("input_columns") or []
st.caption(
    f"{version.ref} needs these columns: "
    + ", ".join(f"`{c}`" for c in inputs)
    + ". Extra columns are ignored; the target may be present."
)

upload = st.file_uploader(
    "A CSV or Parquet file with the rows to predict",
    type=["csv", "tsv", "txt", "parquet"],
    key="batch_upload",
)
if upload is None:
    st.info("Upload a file to predict its rows.")
    st.stop()

data = upload.getvalue()
warnings: list[str] = []
try:
    pipe = ui.pipeline(home, version.artifact.sha256, version.ref)
    with st.spinner(f"Predicting the rows of {upload.name}…"):
        if data[:4] == b"PAR1":
            frame = read_table(data, name=upload.name, drop_empty_rows=False)
            warnings = input_warnings(pipe, frame)
            predictions = predictions_frame(pipe, meta, frame)
        else:  # CSV: exactly the server's batch path (POST /predict/{ref}/batch), checks included
            batch = ui.prediction_service().predict_csv(version.ref, io.BytesIO(data))
            warnings = batch.warnings
            # the rows shown and their predictions come from one reading of the file, chunk by chunk
            chunks = list(batch.outputs())
            frame = pd.concat([rows for rows, _ in chunks], ignore_index=True)
            predictions = pd.concat([predicted for _, predicted in chunks], ignore_index=True)
            frame.attrs["source"] = upload.name
except ApiError as exc:
    st.error(
        f"**{upload.name}** does not fit {version.ref} (the server would answer {exc.status}): {exc.message}",
        icon=":material/error:",
    )
    if exc.details:
        st.dataframe(pd.DataFrame(exc.details), hide_index=True, key="batch_errors")
    st.stop()
except SchemaError as exc:
    st.error(f"**{upload.name}** does not fit {version.ref}: {exc}", icon=":material/error:")
    if exc.details:
        st.dataframe(pd.DataFrame(exc.details), hide_index=True, key="batch_errors")
    st.stop()
except ui.USER_ERRORS as exc:
    st.error(f"**{upload.name}** cannot be used: {exc}", icon=":material/error:")
    st.stop()

st.success(
    f"Predicted {len(predictions):,} rows of **{upload.name}** with {version.ref}.", icon=":material/check:"
)
for warning in warnings:
    st.warning(warning)
result = pd.concat([predictions, frame], axis=1)  # row i of both is row i of the file
st.dataframe(result.head(1000), hide_index=True, key="batch_result")
st.download_button(
    "Download predictions (CSV)",
    result.to_csv(index=False).encode(),
    file_name=f"predictions-{upload.name}".removesuffix(".parquet").removesuffix(".csv") + ".csv",
    mime="text/csv",
    key="batch_download",
    icon=":material/download:",
)

target = meta.get("target")
if target and target in frame.columns:
    from automl_core.assessment import assess_on_data

    st.subheader(f"Scored against `{target}` in the file")
    try:
        scored = assess_on_data(pipe, meta, frame, target)
    except ui.USER_ERRORS as exc:
        st.warning(f"Could not score the file: {exc}")
    else:
        metrics = scored.get("metrics") or {}
        table = pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})
        st.dataframe(
            table,
            hide_index=True,
            key="batch_metrics",
            column_config={"value": st.column_config.NumberColumn(format="%.4f")},
        )
