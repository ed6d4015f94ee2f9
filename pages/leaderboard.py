"""Leaderboard & compare: every model a run tried (live while it runs), trade-offs, the ensemble, tests."""

import pandas as pd
import streamlit as st

from automl_core.comparison import compare_fold_scores, compare_versions, different_folds
from pages import charts, ui

ui.init_state()
state = st.session_state
st.title("Leaderboard & compare")

BOARD_COLUMNS = {
    "model": st.column_config.TextColumn("model"),
    "family": st.column_config.TextColumn("family"),
    "score": st.column_config.NumberColumn("CV score", format="%.4f"),
    "std": st.column_config.NumberColumn("± std", format="%.4f", help="spread of the score over the folds"),
    "search_score": st.column_config.NumberColumn(
        "search score", format="%.4f",
        help="the score on the search's own folds; the finalists were scored again on fresh folds (CV score), "
        "which ranks them, because the search's best score is optimistic after many trials",
    ),
    "fit_time": st.column_config.NumberColumn("fit s / fold", format="%.3f"),
    "predict_ms_per_row": st.column_config.NumberColumn("predict ms / row", format="%.4f"),
    "size_kb": st.column_config.NumberColumn("size KB", format="%.1f"),
    "in_ensemble": st.column_config.CheckboxColumn("in ensemble"),
    "chosen": st.column_config.CheckboxColumn("chosen"),
}


def long_folds(board: pd.DataFrame, fold_scores: dict) -> pd.DataFrame:
    families = dict(zip(board["model"], board["family"], strict=True))
    rows = [
        {"model": model, "family": families.get(model, ""), "fold": i + 1, "score": score}
        for model, scores in fold_scores.items()
        if model in families
        for i, score in enumerate(scores or [])
        if score is not None
    ]
    return pd.DataFrame(rows, columns=["model", "family", "fold", "score"])


def show_board(board: pd.DataFrame, fold_scores: dict, metric: str, *, key: str) -> None:
    """The table, the fold spread and the score-versus-speed chart."""
    higher = ui.greater_is_better(metric)
    if "rank" in board.columns:  # the engine's order: re-validated finalists first, by their fresh-fold score
        board = board.sort_values("rank").reset_index(drop=True)
    else:
        board = board.sort_values("score", ascending=not higher, na_position="last").reset_index(drop=True)
    shown = [c for c in BOARD_COLUMNS if c in board.columns]
    if "search_score" in shown and board["search_score"].isna().all():
        shown.remove("search_score")  # nothing was re-validated: the CV score is the search's own
    st.dataframe(board[shown], hide_index=True, column_config=BOARD_COLUMNS, key=f"{key}_table")
    left, right = st.columns(2)
    with left:
        st.markdown(
            f"**{metric} per fold** of the best models of each family "
            f"({'higher' if higher else 'lower'} is better)"
        )
        folds = long_folds(
            board.groupby("family", sort=False).head(3).head(12), fold_scores
        )  # the best of each family
        if not folds.empty:
            st.altair_chart(charts.score_spread(folds, metric, higher), width="stretch")
    with right:
        st.markdown("**Score against prediction time** (dot size: model size)")
        st.altair_chart(charts.tradeoff(board, metric), width="stretch")


def compare(
    board: pd.DataFrame, fold_scores: dict, metric: str, cv_plan: dict | None, rows: int | None, *, key: str
) -> None:
    """Side by side: chosen models' rows, their fold-by-fold scores and the corrected resampled t-test."""
    st.subheader("Compare models")
    if "rank" in board.columns:
        board = board.sort_values("rank")
    else:
        board = board.sort_values("score", ascending=not ui.greater_is_better(metric), na_position="last")
    models = board["model"].tolist()
    same_folds = board if "folds" not in board.columns else board[board["folds"] == board["folds"].iloc[0]]
    rival = (same_folds.loc[same_folds["family"] != board["family"].iloc[0], "model"].head(1).tolist()
             or same_folds["model"].iloc[1:2].tolist() or models[1:2])  # testable against the best: same folds
    picked = st.multiselect(  # default: the best model against the best of another family
        "Models to compare", models, default=models[:1] + rival, key=f"{key}_compare", max_selections=6
    )
    if len(picked) < 2:
        st.info("Pick two or more models.")
        return
    side = board.set_index("model").loc[picked].reset_index()
    shown = [c for c in BOARD_COLUMNS if c in side.columns]
    st.dataframe(side[shown], hide_index=True, column_config=BOARD_COLUMNS, key=f"{key}_side")
    folds = long_folds(side, {m: fold_scores.get(m) for m in picked})
    if not folds.empty:
        st.altair_chart(charts.fold_lines(folds, metric), width="stretch")
    if cv_plan is None or rows is None:
        st.caption("The significance test runs once the job has finished (it needs the validation plan).")
        return
    higher = ui.greater_is_better(metric)
    first = picked[0]
    folds_of = dict(zip(board["model"], board["folds"], strict=True)) if "folds" in board.columns else {}
    for other in picked[1:]:
        if folds_of.get(first) != folds_of.get(other):
            st.caption(different_folds(first, other))
            continue
        try:
            test = compare_fold_scores(
                fold_scores.get(first) or [],
                fold_scores.get(other) or [],
                n_rows=int(rows),
                cv_plan=cv_plan,
                greater_is_better=higher,
                labels=(first, other),
            )
        except ui.USER_ERRORS as exc:
            st.caption(f"{first} vs {other}: {exc}")
            continue
        show_test(test, first, other, higher)


def show_test(test: dict, a: str, b: str, higher: bool) -> None:
    """One significance result: the verdict in words, then the test's own summary."""
    if test.get("significant") is None:
        st.info(f"{a} vs {b}: {test.get('summary')}")
        return
    better = a if (float(test["mean_difference"]) > 0) == higher else b
    verdict = f"**{better}** is significantly better" if test["significant"] else "no significant difference"
    box = st.success if test["significant"] else st.info
    box(f"{a} vs {b}: {verdict} (p = {float(test['p_value']):.3g}). {test.get('summary', '')}")


# ---------------------------------------------------------------- what to show
jobs = ui.job_list(ui.home())
active = [job for job in jobs if job.active]
sources = ["A registered model", "A running job"]
default = 1 if any(job.id == state.job_id for job in active) else 0
if "board_finished" in state:  # the followed job just ended: show its registered version
    state.board_source = sources[0]
    st.success(state.pop("board_finished"), icon=":material/check:")
source = st.segmented_control("Show", sources, default=sources[default], key="board_source") or sources[0]

if source == "A running job":
    if not active:
        st.info("No job is running. Finished runs are registered models: choose 'A registered model'.")
        st.stop()
    ids = [job.id for job in active]
    job_id = st.selectbox(
        "Job",
        ids,
        index=ids.index(state.job_id) if state.job_id in ids else 0,
        format_func=lambda i: f"{ui.job_title(next(j for j in active if j.id == i))} ({i[:8]})",
        key="board_job",
    )
    state.job_id = job_id
    job = next(j for j in active if j.id == job_id)
    metric = (job.params or {}).get("metric") or "score"

    @st.fragment(run_every=1.5)
    def live() -> None:
        store = ui.get_store()
        current = store.jobs.get(job_id)
        if not current.active:
            result = current.result or {}
            if result.get("ref"):
                state.model_ref = result["ref"]
                state.board_finished = (
                    f"The job finished and registered **{result['ref']}**: its final leaderboard."
                )
                st.rerun()  # the whole page, now on the registered version
            else:
                st.warning(f"The job ended: {current.status}. {current.error or ''}")
            return
        progress = store.jobs.progress(job_id) or {}
        st.progress(
            min(float(progress.get("percent") or 0), 100) / 100,
            text=f"{progress.get('stage', 'queued')} · {float(progress.get('percent') or 0):.0f}% · "
            f"{float(progress.get('time_left') or 0):.0f} s left",
        )
        board = ui.trials_frame(store.jobs.events(job_id).events)
        if board.empty:
            st.caption("Waiting for the first finished trial…")
            return
        live_metric = progress.get("metric") or metric  # "auto" resolves once the task is known
        st.caption(f"Live: {len(board)} models scored so far; the final leaderboard adds the ensemble.")
        fold_scores = dict(zip(board["model"], board["fold_scores"], strict=True))
        show_board(board, fold_scores, live_metric, key="live")
        compare(board, fold_scores, live_metric, None, None, key="live")

    live()
    st.stop()

version = ui.pick_version("board")
if version is None:
    ui.no_models_guard()
docs = ui.documents(ui.home(), version.id, version.ref)
board = pd.DataFrame(docs.get("leaderboard") or [])
if board.empty:
    st.info(f"{version.ref} has no leaderboard (it may have been imported without one).")
    st.stop()
metric = version.metric_name or "score"
lineage = version.lineage or {}
st.caption(
    f"{len(board)} models tried for **{version.ref}** · metric **{metric}** · "
    f"validation: {(lineage.get('cv_plan') or {}).get('reason', 'unknown')}"
    + (
        f" · the {len(lineage['revalidation']['models'])} finalists re-validated on "
        f"{lineage['revalidation']['repeats']} fresh shuffles of the folds"
        if lineage.get("revalidation") else ""
    )
)
fold_scores = docs.get("fold_scores") or {}
show_board(board, fold_scores, metric, key="final")

ensemble = lineage.get("ensemble")
if ensemble:
    st.subheader("The ensemble")
    members, weights = ensemble.get("members") or [], ensemble.get("weights") or []
    st.markdown(
        f"A **{ensemble.get('kind')}** ensemble of {len(members)} models scores **{ui.fmt(ensemble.get('score'))}** "
        f"out of fold; it is what gets deployed when it ranks first."
    )
    if members and len(members) == len(weights):
        st.altair_chart(charts.ensemble_weights(members, weights), width="stretch")
else:
    chosen = board.loc[board.get("chosen", pd.Series(False, index=board.index)).astype(bool), "model"]
    st.caption(
        f"No ensemble beat the best single model; the chosen model is "
        f"**{chosen.iloc[0] if len(chosen) else board['model'].iloc[0]}**."
    )

rows = (lineage.get("data") or {}).get("rows_used")
compare(board, fold_scores, metric, lineage.get("cv_plan"), rows, key="final")

# ---------------------------------------------------------------- versions side by side
st.subheader("Compare registered versions")
summaries = ui.model_summaries(ui.home())
same_model = [v.ref for v in reversed(ui.model_versions(ui.home(), version.name))]
refs = same_model + [f"{m.name}@{m.latest_version}" for m in summaries if m.name != version.name]
picked = st.multiselect(
    "Versions (the first is the baseline)",
    refs,
    default=[version.ref],
    key="compare_versions",
    max_selections=6,
)
data_file = st.file_uploader(
    "Optional: a labelled file to score them on (offline A/B test)",
    type=["csv", "tsv", "parquet"],
    key="compare_data",
)
if len(picked) < 2:
    st.caption(
        "Pick two or more versions: the same data and folds are compared fold by fold, "
        "anything else on the labelled file."
    )
    st.stop()
try:
    with st.spinner("Comparing…"):
        result = compare_versions(ui.get_store(), picked, data=data_file.getvalue() if data_file else None)
except ui.USER_ERRORS as exc:
    st.error(str(exc))
    st.stop()
st.dataframe(pd.DataFrame(result["table"]), hide_index=True, key="versions_table")
if result.get("data_table"):
    st.markdown(f"**Scored on {data_file.name}** ({result.get('data_rows', 0):,} labelled rows)")
    st.dataframe(pd.DataFrame(result["data_table"]), hide_index=True, key="versions_data_table")
folds = pd.DataFrame(
    [
        {"model": ref, "fold": i + 1, "score": score}
        for ref, scores in result["fold_scores"].items()
        for i, score in enumerate(scores or [])
    ]
)
if not folds.empty:
    st.altair_chart(charts.fold_lines(folds, result["metric"]), width="stretch")
for test in result.get("tests") or []:
    show_test(test, test["a"], test["b"], bool(result["greater_is_better"]))
