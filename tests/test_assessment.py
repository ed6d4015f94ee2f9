"""Assessment, caveats, comparison, the HTML report and the evaluation commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from automl_core import AutoML
from automl_core.assessment import assess, evaluate_predictions, find_caveats
from automl_core.cli import main
from automl_core.training import TrainRequest, run_training
from tests.conftest import dataset_path


def test_out_of_fold_metrics_match_scikit_learn(titanic_model):
    result = assess(titanic_model)
    y = np.asarray(titanic_model.oof_y_)
    proba = np.asarray(titanic_model.oof_)
    assert result["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "survived", proba[:, 1]))
    assert result["metrics"]["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=["died", "survived"]))
    assert len([k for k in result["metrics"]]) >= 15
    assert result["confusion_matrix"]["labels"] == ["died", "survived"]
    assert sum(map(sum, result["confusion_matrix"]["values"])) == len(y)
    assert result["thresholds"]["best"]["f1"] is not None


def test_regression_assessment_has_intervals_with_measured_coverage(diabetes_model):
    result = assess(diabetes_model)
    assert len(result["metrics"]) >= 15
    intervals = result["intervals"]
    assert 0.8 <= intervals["coverage"] <= 0.97 and intervals["half_width"] > 0
    y = np.asarray(diabetes_model.oof_y_, dtype=float)
    assert result["metrics"]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, diabetes_model.oof_)))


def test_multiclass_assessment(wine_model):
    result = assess(wine_model)
    assert {"accuracy", "log_loss", "roc_auc", "f1_macro"} <= set(result["metrics"])
    assert len(result["confusion_matrix"]["labels"]) == 3


def test_forecast_metrics_are_named_consistently():
    y = np.arange(50, dtype=float)
    result = evaluate_predictions("timeseries", y, y + 1.0, y_train=y)
    assert result["metrics"]["mae"] == pytest.approx(1.0)
    assert {"mase", "smape", "rmse"} <= set(result["metrics"])


def test_a_planted_leaking_column_is_flagged(titanic_frame):
    frame = titanic_frame.copy()
    frame["outcome_code"] = np.where(frame["survived"] == "survived", "S-1", "D-0")
    model = AutoML(time_budget=4, include=["linear"], cv=3).fit(frame, "survived")
    caveats = find_caveats(model, frame.drop(columns=["survived"]), frame["survived"])
    leaks = [c for c in caveats if c["kind"] == "possible_leak"]
    assert [c["column"] for c in leaks] == ["outcome_code"]
    assert "outcome_code" in leaks[0]["message"]


def test_imbalance_and_little_data_are_flagged():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=80), "z": rng.normal(size=80)})
    frame["y"] = np.where(np.arange(80) < 6, "rare", "common")
    model = AutoML(time_budget=3, include=["linear"], cv=3).fit(frame, "y")
    kinds = {c["kind"] for c in find_caveats(model, frame[["x", "z"]], frame["y"])}
    assert {"class_imbalance", "little_data"} <= kinds


@pytest.fixture(scope="module")
def home_with_two_versions(tmp_path_factory):
    from store import Store

    home = tmp_path_factory.mktemp("home")
    store = Store(home)
    data = str(dataset_path("titanic", "train"))
    # Re-validation is switched off: whether a 6 s run has time for it depends on the machine's load,
    # and one re-validated version against one that was not would (rightly) share no folds.
    base = dict(data=data, target="survived", time_budget=6, cv=3, name="titanic")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("automl_core.automl.applies_to", lambda plan: False)
        a = run_training(store, TrainRequest(include=("linear",), **base)).version
        b = run_training(store, TrainRequest(include=("lightgbm",), **base)).version
    return home, store, a, b


def test_versions_on_the_same_folds_get_a_corrected_t_test(home_with_two_versions):
    from automl_core.comparison import compare_versions

    _, store, a, b = home_with_two_versions
    result = compare_versions(store, [a.ref, b.ref])
    assert [row["model"] for row in result["table"]] == [a.ref, b.ref]
    test = result["tests"][0]
    assert test["method"].startswith("corrected") and 0 <= test["p_value"] <= 1
    assert len(result["fold_scores"][a.ref]) == 3


def test_a_version_scored_on_other_shuffles_is_not_compared_fold_by_fold(home_with_two_versions):
    import dataclasses

    from automl_core.comparison import _fold_test
    from automl_core.scoring import get_metric

    _, store, a, b = home_with_two_versions
    folds = {a.ref: [0.8, 0.81, 0.82], b.ref: [0.83, 0.84, 0.85]}
    metric = get_metric(a.task, a.metric_name)
    assert _fold_test(a, b, folds, metric)["method"].startswith("corrected")
    reshuffled = dataclasses.replace(b, lineage={**b.lineage, "revalidation": {"seeds": [11, 12]}})
    assert _fold_test(a, reshuffled, folds, metric)["method"] is None


def test_offline_ab_on_a_file_uses_a_paired_bootstrap(home_with_two_versions):
    from automl_core.comparison import compare_versions

    _, store, a, b = home_with_two_versions
    result = compare_versions(store, [a.ref, b.ref], data=str(dataset_path("titanic", "test")))
    assert result["data_rows"] == 328
    assert "bootstrap" in result["tests"][0]["method"]
    assert {"roc_auc", "accuracy"} <= set(result["data_table"][0])


def test_report_is_one_self_contained_html_file(home_with_two_versions, tmp_path, monkeypatch):
    home, _, a, _ = home_with_two_versions
    monkeypatch.setenv("AUTOML_HOME", str(home))
    out = tmp_path / "report.html"
    assert main(["report", a.ref, "--out", str(out), "--json-out", str(tmp_path / "r.json")]) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    assert "<script" not in text and not re.search(r"(src|href)=\"https?://", text)
    assert "Confusion matrix" in text and "Feature importance" in text
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["model"]["ref"] == a.ref and data["importance"]


def test_evaluate_explain_and_compare_commands(home_with_two_versions, monkeypatch, capsys):
    home, _, a, b = home_with_two_versions
    monkeypatch.setenv("AUTOML_HOME", str(home))
    test_file = str(dataset_path("titanic", "test"))
    assert main(["evaluate", a.ref, test_file, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert len(metrics) >= 15 and 0.5 < metrics["roc_auc"] <= 1
    assert main(["explain", b.ref, test_file, "--rows", "0:2", "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    row = explained["rows"][0]
    assert set(row["contributions"]) == {"pclass", "sex", "age", "sibsp", "parch"}
    assert row["base_value"] + sum(row["contributions"].values()) == pytest.approx(row["output"], abs=1e-4)
    assert main(["compare", a.ref, b.ref]) == 0
    assert "vs" in capsys.readouterr().out
    assert main(["explain", a.ref, test_file, "--rows", "999:1000"]) == 1
