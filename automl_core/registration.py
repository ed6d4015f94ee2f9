"""Turning a fitted `AutoML` into a registered, reproducible model version.

The registry stores the pipeline, a structural input schema (columns and kinds: a change means a
new major version), metrics, the full lineage (data fingerprint and a copy of the data, settings,
leaderboard, CV plan, seed, library versions, git commit, job, parent) and the recipe that
reproduces the run. Computed results (assessment, caveats, leaderboard) are stored as documents
so every process can show them without recomputing.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from .assessment import _plain, assess, assess_clustering, find_caveats
from .modelfile import library_versions

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    """The project's git commit, when it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def structural_schema(automl) -> dict:
    """Columns and kinds the model needs, in order; statistics live in the pipeline and documents."""
    return {
        "columns": [{"name": name, "kind": info["kind"]} for name, info in automl.input_schema_.items()],
        "task": automl.task_,
        "target": automl.problem_.target,
    }


def model_meta(automl) -> dict:
    """The small description a server or CLI needs beside the pipeline."""
    return {
        "task": automl.task_,
        "metric": automl.metric_,
        "target": automl.problem_.target,
        "classes": None if automl.classes_ is None else [_plain(c) for c in automl.classes_],
        "positive_class": _plain(automl.problem_.positive_class),
        "input_columns": list(automl.input_schema_),
        "time_column": automl.problem_.time_column,
    }


def build_lineage(
    automl,
    *,
    source: str | None,
    fingerprint: str | None,
    data_sha256: str | None,
    n_rows: int,
    job_id: str | None = None,
    parent: str | None = None,
) -> dict:
    """Everything needed to answer "what data and settings made this model?"."""
    profile = automl.profile_
    return _plain(
        {
            "data": {
                "file": source,
                "fingerprint_sha256": fingerprint,
                "stored_copy_sha256": data_sha256,
                "rows": n_rows,
                "rows_used": int(len(automl.oof_y_)) if automl.oof_y_ is not None else n_rows,
                "unlabeled_rows_dropped": int(getattr(automl, "unlabeled_rows_dropped_", 0)),
                "columns": [{"name": c.name, "kind": c.kind, "role": c.role, "reason": c.reason} for c in profile.columns],
            },
            "target": automl.problem_.target,
            "task": automl.task_,
            "task_reason": automl.problem_.reason,
            "metric": automl.metric_,
            "cv_plan": None if automl.cv_plan_ is None else automl.cv_plan_.to_dict(),
            "revalidation": None if automl.revalidation_ is None else automl.revalidation_.to_dict(),
            "seed": automl.random_state,
            "time_budget": automl.time_budget,
            "chosen_model": automl.best_model_name_,
            "chosen_params": _chosen_params(automl),
            "ensemble": None if automl.ensemble_ is None else automl.ensemble_.to_dict(),
            "skipped_families": automl.skipped_families_,
            "leaderboard": automl.summary()["leaderboard"],
            "libraries": library_versions(),
            "python": platform.python_version(),
            "git_commit": git_commit(),
            "job_id": job_id,
            "parent": parent,
        }
    )


def _chosen_params(automl) -> dict:
    board = automl.leaderboard_
    row = board.iloc[0]
    return _plain(row["params"]) if isinstance(row["params"], dict) else {}


def register_automl(
    store,
    automl,
    name: str,
    *,
    frame=None,
    target_values=None,
    data_bytes: bytes | None = None,
    source: str | None = None,
    job_id: str | None = None,
    parent: str | None = None,
    description: str = "",
    time_budget: float | None = None,
):
    """Register the fitted model as the next version of `name`; returns the `ModelVersion`.

    `frame` (the features as read) enables the caveat checks; `data_bytes` (the file as read)
    is stored content-addressed so the version can be reproduced from the registry alone.
    """
    data_sha = store.artifacts.save_bytes(data_bytes).sha256 if data_bytes is not None else None
    fingerprint = automl.profile_.fingerprint
    n_rows = automl.profile_.n_rows
    lineage = build_lineage(
        automl, source=source, fingerprint=fingerprint, data_sha256=data_sha, n_rows=n_rows, job_id=job_id,
        parent=parent,
    )
    recipe = automl.recipe_
    if time_budget is not None:
        # The budget the person asked for, not what was left for the search after reading the data.
        lineage["time_budget"] = time_budget
        recipe = {**recipe, "settings": {**recipe["settings"], "time_budget": time_budget}}
    if automl.task_ == "clustering" and frame is not None:
        assessment = assess_clustering(automl, frame)
    else:
        assessment = assess(automl)
    caveats = []
    if frame is not None and target_values is not None and automl.task_ != "clustering":
        caveats = find_caveats(automl, frame, target_values)
    documents = {
        "meta": model_meta(automl),
        "assessment": assessment,
        "caveats": caveats,
        "leaderboard": _plain(automl.leaderboard_.drop(columns=["fold_scores"], errors="ignore").to_dict(orient="records")),
        "fold_scores": _plain({row["model"]: row.get("fold_scores") for row in automl.leaderboard_.to_dict(orient="records")}),
        "profile": automl.profile_.to_dict(),
        "input_stats": _plain(automl.input_schema_),
        "search": _plain([t.to_dict() if hasattr(t, "to_dict") else t for t in automl.trials_]),
    }
    metrics = {"cv": {k: v for k, v in assessment.get("metrics", {}).items() if isinstance(v, (int, float))}}
    version = store.registry.register(
        name,
        automl.best_estimator_,
        input_schema=structural_schema(automl),
        task=automl.task_,
        metric_name=automl.metric_,
        cv_score=float(automl.best_score_),
        metrics=metrics,
        params=_chosen_params(automl),
        lineage=lineage,
        recipe=recipe,
        description=description,
        parent=parent,
        job_id=job_id,
        documents=documents,
        data_sha256=data_sha,
    )
    if frame is not None:
        from .monitoring import training_reference

        try:
            store.monitoring.set_reference(version.ref, training_reference(automl.best_estimator_, frame))
        except Exception:  # noqa: BLE001 - drift monitoring is optional; the version is registered
            pass
    return version


def labelled_rows(automl, frame):
    """(input columns, target values) of the rows the model was trained on: rows without a target are left out.

    These are what a version stores for explanations and importance; clustering has no target (None).
    """
    if automl.problem_.target is None:
        return frame, None
    from .problem import target_values

    labels = target_values(frame, automl.problem_.target, automl.profile_, automl.task_)
    keep = labels.notna().to_numpy()
    features = frame.loc[keep].drop(columns=[automl.problem_.target]).reset_index(drop=True)
    return features, labels[keep].reset_index(drop=True)


def default_model_name(source: str | None) -> str:
    """A registry name from a file name: its stem, with characters the registry refuses replaced."""
    import re

    stem = Path(source or "model").stem
    for suffix in (".train", ".test"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"
    return name[:64]

