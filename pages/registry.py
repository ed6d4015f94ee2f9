"""Registry & deploy: versions, lineage and family tree; promote, reproduce, retrain, export, A/B, serve."""

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from automl_core.training import reproduce_request, retrain_request
from pages import ui
from store import read_card

ui.init_state()
state = st.session_state
st.title("Registry & deploy")
store = ui.get_store()
registry = store.registry


def clear_reads() -> None:
    ui.model_summaries.clear()
    ui.model_versions.clear()


def act(action, *args) -> None:
    """Button callback: run a registry change before the page is drawn, so the page shows its result."""
    try:
        message = action(*args)
    except ui.USER_ERRORS as exc:
        state.registry_notice = ("error", str(exc))
    else:
        clear_reads()
        state.registry_notice = ("success", message)


def notice() -> None:
    kind, message = state.pop("registry_notice", (None, None))
    if kind == "success":
        st.success(message, icon=":material/check:")
    elif kind == "error":
        st.error(message, icon=":material/error:")


def import_upload() -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / state.import_upload.name
        path.write_bytes(state.import_upload.getvalue())
        imported = registry.import_archive(path)
    state.model_ref = imported.ref
    return f"Imported as **{imported.ref}**."


def promote(ref: str) -> str:
    alias = state.alias_pick if state.alias_pick != "other…" else state.get("alias_custom", "")
    version = registry.set_alias(ref, alias)
    return (
        f"**{version.name}@{alias}** now serves {version.version}; running servers pick it up without a "
        "restart."
    )


def deploy(name: str) -> str:
    challenger = None if state.challenger == "(none)" else state.challenger
    registry.deploy(
        name,
        state.champion,
        challenger,
        mode=state.deploy_mode,
        challenger_weight=state.get("challenger_weight", 20) / 100 if state.deploy_mode == "ab" else 0.0,
    )
    return "Deployment saved; the server routes by it from its next request."


def undeploy(name: str) -> str:
    registry.undeploy(name)
    return "Deployment removed."


def delete(ref: str) -> str:
    registry.delete_version(ref)
    state.model_ref = None
    return f"Deleted {ref}."


# ---------------------------------------------------------------- import (works on an empty home too)
with st.expander("Import a model file (.zip exported from a workbench)", icon=":material/upload:"):
    archive = st.file_uploader("Model archive", type=["zip"], key="import_upload")
    if archive is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / archive.name
            path.write_bytes(archive.getvalue())
            try:
                card = read_card(path)  # read and hash-checked without unpickling anything
            except ui.USER_ERRORS as exc:
                st.error(f"**{archive.name}** is not a valid model archive: {exc}")
            else:
                st.markdown(
                    f"**{card['name']}@{card['version']}** · {card.get('task')} · {card.get('metric_name')} "
                    f"{ui.fmt(card.get('cv_score'))} · trained on `{(card.get('data_summary') or {}).get('file')}`"
                )
                with st.popover("Model card"):
                    st.json(card, expanded=1)
                st.button(
                    "Import",
                    key="import",
                    icon=":material/download_done:",
                    on_click=act,
                    args=(import_upload,),
                )

notice()
summaries = ui.model_summaries(ui.home())
if not summaries:
    ui.no_models_guard()

# ---------------------------------------------------------------- all models
st.dataframe(
    pd.DataFrame(
        [
            {
                "model": m.name,
                "latest": m.latest_version,
                "versions": m.version_count,
                "aliases": ", ".join(f"{a} → {v}" for a, v in m.aliases.items()),
                "deployment": ""
                if m.deployment is None
                else (
                    f"{m.deployment.champion}"
                    + (
                        f" + {m.deployment.challenger} ({m.deployment.mode}, "
                        f"{m.deployment.challenger_weight:.0%})"
                        if m.deployment.challenger
                        else ""
                    )
                ),
                "created": m.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for m in summaries
        ]
    ),
    hide_index=True,
    key="models_table",
    height=min(400, 40 + 35 * len(summaries)),
)

version = ui.pick_version("registry")
versions = ui.model_versions(ui.home(), version.name)
by_id = {v.id: v for v in versions}

# ---------------------------------------------------------------- versions and family tree
left, right = st.columns([3, 2])
with left:
    st.markdown(f"**Versions of {version.name}**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "version": v.version,
                    "aliases": ", ".join(v.aliases),
                    version.metric_name or "score": v.cv_score,
                    "created": v.created_at.strftime("%Y-%m-%d %H:%M"),
                    "parent": by_id[v.parent_version_id].version
                    if v.parent_version_id in by_id
                    else ("other model" if v.parent_version_id else ""),
                    "data": ((v.lineage or {}).get("data") or {}).get("file"),
                    "description": v.description,
                }
                for v in reversed(versions)
            ]
        ),
        hide_index=True,
        key="versions_table",
    )
with right:
    st.markdown("**Family tree**")
    edges = registry.family_tree(version.name)
    lines = ["digraph { rankdir=LR; node [shape=box, style=rounded, fontname=Helvetica];"]
    for v in versions:
        label = v.version + (f"\\n{', '.join(v.aliases)}" if v.aliases else "")
        bold = ", penwidth=2" if v.id == version.id else ""
        lines.append(f'"{v.ref}" [label="{label}"{bold}];')
    lines += [f'"{e.parent}" -> "{e.child}";' for e in edges]
    st.graphviz_chart("\n".join(lines + ["}"]))

lineage = version.lineage or {}
data = lineage.get("data") or {}
st.caption(
    f"**{version.ref}** was trained on `{data.get('file')}` ({data.get('rows')} rows, SHA-256 "
    f"`{str(data.get('fingerprint_sha256'))[:12]}…`), target `{lineage.get('target')}`, {lineage.get('metric')}, "
    f"seed {lineage.get('seed')}, budget {ui.fmt(lineage.get('time_budget'), 3)} s"
    + (f", by job `{lineage['job_id'][:8]}`" if lineage.get("job_id") else "")
    + ". "
    "The Model page shows the full lineage."
)

tab_promote, tab_rerun, tab_deploy, tab_share, tab_serve, tab_delete = st.tabs(
    ["Promote", "Reproduce / retrain", "A/B & shadow", "Export", "Serve", "Delete"]
)

# ---------------------------------------------------------------- promote
with tab_promote:
    aliases = registry.aliases(version.name)
    if aliases:
        st.markdown("Aliases of this model: " + ", ".join(f"**{a}** → {v}" for a, v in aliases.items()))
    alias = st.selectbox("Alias", ["production", "staging", "other…"], key="alias_pick")
    if alias == "other…":
        alias = st.text_input("Alias name", key="alias_custom", placeholder="canary")
    st.button(
        f"Point {alias or '…'} at {version.version}",
        key="promote",
        type="primary",
        icon=":material/rocket_launch:",
        disabled=not alias,
        on_click=act,
        args=(promote, version.ref),
    )

# ---------------------------------------------------------------- reproduce and retrain
with tab_rerun:
    st.markdown(
        "**Reproduce**: re-run this version's recorded trials on its own stored data with the same seed."
    )
    if st.button("Reproduce", key="reproduce", icon=":material/replay:"):
        try:
            request = reproduce_request(store, version.ref)
            state.job_id = ui.get_manager().submit(request, kind="reproduce")
        except ui.USER_ERRORS as exc:
            st.error(str(exc))
        else:
            st.success("Reproduction started: it becomes a child version.")
            st.page_link(
                ui.PAGES["jobs"], label="Follow it on the Jobs page", icon=":material/pending_actions:"
            )
    st.markdown("**Retrain on new data**: the same recipe (settings and trial order) on a newer file.")
    newer = st.file_uploader(
        "Newer data with the same columns", type=["csv", "tsv", "parquet"], key="retrain_upload"
    )
    if st.button("Retrain", key="retrain", icon=":material/model_training:", disabled=newer is None):
        try:
            request = retrain_request(store, version.ref, newer.getvalue(), source=newer.name)
            state.job_id = ui.get_manager().submit(request, kind="retrain")
        except ui.USER_ERRORS as exc:
            st.error(str(exc))
        else:
            st.success(f"Retraining started on {newer.name}: it becomes a child of {version.ref}.")
            st.page_link(
                ui.PAGES["jobs"], label="Follow it on the Jobs page", icon=":material/pending_actions:"
            )

# ---------------------------------------------------------------- deployment
with tab_deploy:
    current = registry.deployment(version.name)
    if current is not None:
        st.info(
            f"Deployed: champion **{current.champion}**"
            + (
                (f", challenger **{current.challenger}** on {current.challenger_weight:.0%} of the traffic (A/B)"
                 if current.mode == "ab" else f", challenger **{current.challenger}** in shadow on every request")
                if current.challenger
                else ""
            )
        )
    targets = [f"{version.name}@{a}" for a in aliases] + [v.ref for v in reversed(versions)]
    champion = st.selectbox("Champion", targets, key="champion")
    challenger = st.selectbox(
        "Challenger", ["(none)", *[t for t in targets if t != champion]], key="challenger"
    )
    mode = st.radio(
        "Mode",
        ["ab", "shadow"],
        horizontal=True,
        key="deploy_mode",
        format_func={
            "ab": "A/B split: the challenger answers its share",
            "shadow": "Shadow: the challenger also runs, only the champion answers",
        }.get,
    )
    if mode == "ab":
        st.slider("Challenger share of the traffic (%)", 0, 100, 20, step=5, key="challenger_weight")
    else:
        st.caption("In shadow mode every request also goes to the challenger; only the champion answers.")
    go_left, go_right = st.columns(2)
    go_left.button(
        "Deploy",
        key="deploy",
        type="primary",
        icon=":material/call_split:",
        on_click=act,
        args=(deploy, version.name),
    )
    if current is not None:
        go_right.button(
            "Undeploy",
            key="undeploy",
            icon=":material/link_off:",
            on_click=act,
            args=(undeploy, version.name),
        )

# ---------------------------------------------------------------- export
with tab_share:

    def archive_bytes() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            return registry.export_version(version.ref, Path(folder) / "model.zip").read_bytes()

    st.markdown(
        "One file with the pipeline, its input schema, the library versions it needs and a model card "
        "that can be read without unpickling. Import it on another machine above, or with "
        f"`automl models import {version.name}-{version.version}.zip`."
    )
    st.download_button(
        f"Export {version.ref}",
        archive_bytes,
        file_name=f"{version.name}-{version.version}.zip",
        mime="application/zip",
        key="export",
        icon=":material/download:",
    )

# ---------------------------------------------------------------- serve
with tab_serve:
    docs = ui.documents(ui.home(), version.id, version.ref)
    schema = docs.get("input_stats") or {}
    example = {}
    for column, info in schema.items():
        if info.get("kind") == "numeric" and info.get("median") is not None:
            median = float(info["median"])
            example[column] = int(round(median)) if info.get("integer") else round(median, 4)
        elif info.get("kind") == "categorical":
            example[column] = info.get("most_frequent")
        elif info.get("kind") == "boolean":
            example[column] = True
        elif info.get("kind") == "datetime":
            example[column] = str(info.get("median", ""))[:10]
        else:
            example[column] = (info.get("examples") or [""])[0]
    ref = f"{version.name}@{next(iter(version.aliases), version.version)}"
    st.markdown("Start the server in a terminal, from the project folder (same home folder):")
    st.code(
        f"export AUTOML_HOME={ui.home()}\nuv run automl serve --host 127.0.0.1 --port 8000",
        language="bash",
        wrap_lines=True,
    )
    st.markdown("Predict one row:")
    body = json.dumps({"inputs": example})
    st.code(
        f"curl -s -X POST http://127.0.0.1:8000/api/v1/predict/{ref} \\\n  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'",
        language="bash",
    )
    st.markdown("Predict a CSV file (the answer is CSV):")
    st.code(
        f"curl -s -X POST http://127.0.0.1:8000/api/v1/predict/{ref}/batch \\\n  -H 'Content-Type: text/csv' "
        "--data-binary @rows.csv",
        language="bash",
    )
    st.caption(
        "A missing column or a value of the wrong type is answered with 422 and names the column; "
        f"GET /api/v1/models/{ref}/playground is a small form in the browser."
    )

# ---------------------------------------------------------------- delete
with tab_delete:
    sure = st.checkbox(
        f"I want to delete {version.ref} (its artifact and documents go with it)", key="delete_sure"
    )
    st.button(
        "Delete this version",
        key="delete",
        disabled=not sure,
        icon=":material/delete:",
        on_click=act,
        args=(delete, version.ref),
    )
