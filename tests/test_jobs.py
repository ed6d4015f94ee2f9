"""Registration with lineage, reproduce/retrain, and background jobs through the store."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest

from automl_core.jobs import JobManager, default_workers
from automl_core.registration import default_model_name
from automl_core.training import TrainRequest, reproduce, retrain, run_training
from tests.conftest import ROOT, dataset_path

LINEAGE_KEYS = {
    "data", "target", "task", "metric", "cv_plan", "seed", "time_budget", "chosen_model", "chosen_params",
    "leaderboard", "libraries", "git_commit", "job_id", "parent",
}


@pytest.fixture()
def store(tmp_path):
    from store import Store

    return Store(tmp_path / "home")


def small_request(**kw) -> TrainRequest:
    base = dict(data=str(dataset_path("titanic", "train")), target="survived", time_budget=4,
                include=("linear", "lightgbm"), cv=3, name="titanic")
    base.update(kw)
    return TrainRequest(**base)


def test_registered_version_answers_what_data_and_settings_made_it(store):
    result = run_training(store, small_request())
    version = result.version
    assert version.ref == "titanic@1.0.0"
    lineage = version.lineage
    assert LINEAGE_KEYS <= set(lineage)
    assert lineage["data"]["rows"] == 981 and len(lineage["data"]["fingerprint_sha256"]) == 64
    assert {c["name"] for c in lineage["data"]["columns"]} >= {"pclass", "sex", "age"}
    assert lineage["libraries"]["scikit-learn"]
    assert version.recipe["trials"] and version.recipe["settings"]["random_state"] == 0
    docs = store.registry.documents(version.ref)
    assert {"meta", "assessment", "caveats", "leaderboard", "profile"} <= set(docs)
    assert docs["assessment"]["metrics"]["roc_auc"] == pytest.approx(version.cv_score, abs=1e-9)
    assert version.metrics["cv"]["accuracy"] > 0.6
    model = store.registry.load(version.ref)
    frame = pd.read_csv(dataset_path("titanic", "test"))
    assert model.predict_proba(frame).shape == (len(frame), 2)


def test_retrain_is_a_child_minor_version_and_reproduce_matches(store, tmp_path):
    # cv="auto" with a small budget: the replay must reuse the same folds although it has more time.
    first = run_training(store, small_request(cv="auto", time_budget=5)).version
    assert first.lineage["time_budget"] == 5 and first.recipe["settings"]["cv_resolved"] == 3
    again = reproduce(store, first.ref)
    assert again.version.version == "1.1.0"
    assert again.version.parent_version_id == first.id
    assert again.automl.best_score_ == pytest.approx(first.cv_score, rel=1e-9)
    newer = tmp_path / "newer.csv"
    pd.read_csv(dataset_path("titanic", "test")).to_csv(newer, index=False)
    child = retrain(store, first.ref, str(newer)).version
    assert child.version == "1.2.0" and child.lineage["parent"] == first.ref
    edges = store.registry.family_tree("titanic")
    assert {(e.parent, e.child) for e in edges} >= {(first.ref, "titanic@1.1.0"), (first.ref, "titanic@1.2.0")}


def test_a_new_input_schema_is_a_new_major_version(store, tmp_path):
    run_training(store, small_request())
    fewer = tmp_path / "fewer.csv"
    pd.read_csv(dataset_path("titanic", "train")).drop(columns=["parch"]).to_csv(fewer, index=False)
    assert run_training(store, small_request(data=str(fewer))).version.version == "2.0.0"


def test_five_jobs_submitted_at_once_all_finish(store):
    manager = JobManager(store, max_workers=2)
    ids = [manager.submit(small_request(time_budget=4, name=f"t{i}", include=("linear",))) for i in range(5)]
    for job_id in ids:
        manager.wait(job_id, timeout=180)
    statuses = [store.jobs.get(j).status for j in ids]
    assert statuses == ["succeeded"] * 5
    assert {store.jobs.get(j).result["ref"] for j in ids} == {f"t{i}@1.0.0" for i in range(5)}
    manager.shutdown()


def test_importance_is_computed_after_a_job_and_cached_for_every_process(store):
    manager = JobManager(store, max_workers=1)
    job_id = manager.submit(small_request(time_budget=3, include=("linear",)))
    ref = manager.wait(job_id, timeout=120)["ref"]
    assert manager.wait_aftercare(job_id, timeout=120) is True
    manager.shutdown()
    importance = store.registry.get_document(ref, "importance")
    columns = {row["column"] for row in importance}
    assert {"sex", "pclass"} <= columns  # original columns, not one-hot pieces
    assert not any("__" in column for column in columns)
    by_column = {row["column"]: row for row in importance}
    assert by_column["sex"]["permutation_mean"] > 0  # sex matters on titanic
    shap = store.registry.get_document(ref, "shap_summary")
    # One linear pipeline gets the exact linear explainer; an ensemble of them the model-agnostic one.
    if store.registry.get(ref).lineage["chosen_model"].startswith("ensemble"):
        assert shap["method"] in ("exact", "permutation") and shap["n_rows"] > 0
    else:
        assert shap["method"] == "linear" and shap["n_rows"] == 500
    assert set(shap["importance"]["column"]) == columns


def test_no_aftercare_when_it_is_switched_off_or_the_job_fails(store):
    manager = JobManager(store, max_workers=1, aftercare=False)
    job_id = manager.submit(small_request(time_budget=3, include=("linear",)))
    ref = manager.wait(job_id, timeout=120)["ref"]
    assert manager.wait_aftercare(job_id) is None
    assert store.registry.get_document(ref, "importance") is None
    manager.shutdown()


def test_progress_and_leaderboard_are_readable_from_another_store_handle(store):
    from store import Store

    manager = JobManager(store, max_workers=1)
    job_id = manager.submit(small_request(time_budget=4))
    other = Store(store.root)
    seen = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = other.jobs.progress(job_id) or seen
        if other.jobs.get(job_id).status in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert other.jobs.get(job_id).status == "succeeded"
    assert seen is not None and {"percent", "stage", "time_left"} <= set(seen)
    trials = [e for e in other.jobs.events(job_id).events if e["type"] == "trial"]
    assert trials and all("score" in t for t in trials)
    manager.shutdown()


def test_a_failing_job_is_recorded_and_the_host_goes_on(store):
    manager = JobManager(store, max_workers=1)
    bad = manager.submit(small_request(target="survive"))
    assert manager.wait(bad, timeout=180) is None
    job = store.jobs.get(bad)
    assert job.status == "failed" and "Did you mean 'survived'" in job.error
    good = manager.submit(small_request(time_budget=3, include=("linear",)))
    assert manager.wait(good, timeout=180)["ref"] == "titanic@1.0.0"
    manager.shutdown()


def test_a_running_job_can_be_cancelled(store):
    manager = JobManager(store, max_workers=1)
    job_id = manager.submit(small_request(time_budget=60, include=None))
    deadline = time.monotonic() + 30
    while store.jobs.get(job_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    manager.cancel(job_id)
    manager.wait(job_id, timeout=60)
    assert store.jobs.get(job_id).status == "cancelled"
    assert store.registry.models() == []
    manager.shutdown()


def test_default_workers_follow_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOML_JOB_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.delenv("AUTOML_JOB_WORKERS")
    assert default_workers() >= 2


def test_model_names_come_from_file_names():
    assert default_model_name("loans_messy.train.csv") == "loans_messy"
    assert default_model_name("/x/My Data (v2).csv") == "My-Data-v2"
    assert default_model_name(None) == "model"


def test_cli_registry_commands_while_another_process_trains(tmp_path):
    """The CLI trains in one process while this one reads the same home: no lock error reaches anyone."""
    import os

    env = {**os.environ, "AUTOML_HOME": str(tmp_path / "shared-home")}
    cli = [sys.executable, "-m", "automl_core.cli"]
    train = subprocess.Popen(
        cli + ["train", str(dataset_path("titanic", "train")), "--target", "survived", "--time-budget", "12",
               "--quiet", "--include", "linear,lightgbm"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    from store import Store

    reader = Store(tmp_path / "shared-home")
    while train.poll() is None:
        reader.registry.models()
        reader.jobs.list()
        time.sleep(0.2)
    out, err = train.communicate()
    assert train.returncode == 0, err
    assert "registered as titanic@1.0.0" in out
    run = lambda *a: subprocess.run(cli + list(a), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    assert "titanic" in run("models").stdout
    shown = run("models", "show", "titanic", "--json")
    assert '"ref": "titanic@1.0.0"' in shown.stdout
    assert run("models", "promote", "titanic@1.0.0", "--alias", "production").returncode == 0
    pred = run("predict", "titanic@production", str(dataset_path("titanic", "test")))
    assert pred.returncode == 0 and pred.stdout.startswith("prediction,proba_died,proba_survived")
    missing = run("models", "show", "nope")
    assert missing.returncode == 1 and "error:" in missing.stderr and "Traceback" not in missing.stderr
    export = tmp_path / "t.zip"
    assert run("models", "export", "titanic@production", "--out", str(export)).returncode == 0
    imported = run("models", "import", str(export), "--name", "copy")
    assert imported.returncode == 0 and "copy@1.0.0" in imported.stdout
    assert "succeeded" not in run("jobs").stderr
    assert run("models", "delete", "copy").returncode == 0


def test_aftercare_of_a_version_deleted_meanwhile_logs_one_line_and_goes_on(store, caplog):
    manager = JobManager(store, max_workers=1)
    with caplog.at_level("WARNING", logger="automl_core.jobs"):
        assert manager._cache_explanations("gone@1.0.0") is False
    manager.shutdown()
    assert "gone@1.0.0" in caplog.text and "Traceback" not in caplog.text
