"""Monitoring analysis: traffic, drift per feature over time, accuracy per variant, promotion proposals."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

from automl_core.monitoring import monitoring_overview
from automl_core.training import TrainRequest, run_training
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from store import Store

    store = Store(tmp_path_factory.mktemp("home"))
    base = dict(data=str(dataset_path("titanic", "train")), target="survived", time_budget=4, cv=3, name="titanic")
    champion = run_training(store, TrainRequest(include=("linear",), **base)).version
    challenger = run_training(store, TrainRequest(include=("lightgbm",), **base)).version
    store.registry.deploy("titanic", champion.ref, challenger.ref, mode="ab", challenger_weight=0.5)
    return store, champion, challenger


def _log(store, rows: pd.DataFrame, version, variant: str, predictions, actuals=None, ts=None):
    model = version.name
    logger = store.monitoring.prediction_logger()
    feedback = store.monitoring.feedback_logger()
    for i, (_, row) in enumerate(rows.iterrows()):
        request_id = uuid.uuid4().hex
        inputs = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        logger.log(request_id=request_id, model=model, version=version.version, variant=variant, inputs=inputs,
                   outputs={"prediction": predictions[i]}, latency_ms=1.5, ts=ts)
        if actuals is not None:
            feedback.log(request_id=request_id, actual=actuals[i])
    logger.close()
    feedback.close()


def test_overview_is_empty_but_explained_before_any_traffic(deployed):
    store, _, _ = deployed
    overview = monitoring_overview(store, "titanic")
    assert overview.traffic.empty and overview.drift.empty and overview.performance.empty
    assert overview.proposal is None


def test_traffic_drift_accuracy_and_proposal(deployed):
    store, champion, challenger = deployed
    test = pd.read_csv(dataset_path("titanic", "test"))
    truth = test.pop("survived").tolist()
    now = time.time()
    # The champion answers with many mistakes; the challenger is always right.
    wrong = ["died" if t == "survived" else "survived" for t in truth]
    mixed = [w if i % 2 else t for i, (w, t) in enumerate(zip(wrong, truth))]
    _log(store, test.iloc[:150], champion, "champion", mixed[:150], truth[:150], ts=now)
    _log(store, test.iloc[150:300], challenger, "challenger", truth[150:300], truth[150:300], ts=now)
    # Drifted traffic an hour later: everyone is 80 years old and in first class.
    shifted = test.iloc[:60].assign(age=80.0, pclass="1st")
    _log(store, shifted, champion, "champion", ["died"] * 60, ts=now + 3600)
    overview = monitoring_overview(store, "titanic", bucket="1h")
    assert overview.traffic["requests"].sum() == 360
    # An hour of traffic has room for minutes: the span starts at the first request, not its week.
    assert monitoring_overview(store, "titanic", bucket="1min").bucket == "1min"
    assert set(overview.traffic["variant"]) == {"champion", "challenger"}
    latest = overview.drift_latest.set_index("column")
    assert latest.loc["age", "level"] == "major" and latest.loc["pclass", "psi"] > 0.25
    assert latest.loc["sibsp", "psi"] < latest.loc["age", "psi"]
    perf = overview.performance
    champion_acc = perf[perf.variant == "champion"]["value"].iloc[0]
    challenger_acc = perf[perf.variant == "challenger"]["value"].iloc[0]
    assert challenger_acc == pytest.approx(1.0) and champion_acc == pytest.approx(0.5, abs=0.05)
    proposal = overview.proposal
    assert proposal["promote"] and proposal["challenger"] == challenger.ref and proposal["p_value"] < 0.05
    assert "promote" in proposal["message"]


def test_no_proposal_without_enough_outcomes(tmp_path):
    from store import Store

    store = Store(tmp_path / "h")
    base = dict(data=str(dataset_path("titanic", "train")), target="survived", time_budget=3, cv=3, name="t",
                include=("linear",))
    a = run_training(store, TrainRequest(**base)).version
    b = run_training(store, TrainRequest(**base)).version
    store.registry.deploy("t", a.ref, b.ref, mode="shadow", challenger_weight=0.0)
    test = pd.read_csv(dataset_path("titanic", "test")).head(10)
    truth = test.pop("survived").tolist()
    _log(store, test, a, "champion", truth, truth)
    proposal = monitoring_overview(store, "t").proposal
    assert proposal is not None and not proposal["promote"] and "more outcomes" in proposal["message"]
    assert np.isfinite(proposal["champion_labelled"])


def test_whole_number_classes_match_however_the_feedback_writes_them():
    from automl_core.monitoring import _hits

    labelled = pd.DataFrame({"prediction": [1, 0, "1", "yes", 2, None],
                             "actual": [1.0, "0", 1, "yes", 3.0, "no"]})
    assert _hits(labelled).tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_a_window_keeps_old_traffic_out_and_drift_is_measured_on_a_sample(tmp_path):
    from automl_core.monitoring import drift_over_time
    from store import Store

    store = Store(tmp_path / "h")
    base = dict(data=str(dataset_path("titanic", "train")), target="survived", time_budget=3, cv=3, name="t",
                include=("linear",))
    version = run_training(store, TrainRequest(**base)).version
    test = pd.read_csv(dataset_path("titanic", "test"))
    truth = test.pop("survived").tolist()
    now = time.time()
    _log(store, test.iloc[:100], version, "champion", truth[:100], truth[:100], ts=now - 20 * 86400)
    _log(store, test.iloc[100:160].assign(age=80.0), version, "champion", truth[100:160], ts=now)
    recent = monitoring_overview(store, "t", bucket="1d", since=now - 7 * 86400)
    assert recent.traffic["requests"].sum() == 60 and recent.performance.empty
    assert set(recent.drift["rows"]) == {60} and recent.drift_latest.set_index("column").loc["age", "level"] == "major"
    everything = monitoring_overview(store, "t", bucket="1d")
    assert everything.traffic["requests"].sum() == 160 and everything.performance["labelled"].sum() == 100
    assert len(everything.drift["bucket"].unique()) == 2
    sampled = drift_over_time(store, "t", bucket="1d", sample_rows=25)
    assert set(sampled["rows"]) == {100, 60}  # every request counted, 25 of each bucket measured
    old_age = sampled[(sampled["rows"] == 100) & (sampled["column"] == "age")]["psi"].iloc[0]
    assert old_age < sampled[(sampled["rows"] == 60) & (sampled["column"] == "age")]["psi"].iloc[0]
    fine = monitoring_overview(store, "t", bucket="1min")  # 20 days of minutes: far too many points
    assert fine.bucket == "1h" and any("shown in 1h buckets" in note for note in fine.notes)


def test_buckets_are_coarsened_only_when_the_window_needs_it():
    from automl_core.monitoring import MAX_BUCKETS, readable_bucket

    day = 86400.0
    assert readable_bucket("1h", 0.0, 30 * day, None) == "1h"  # 720 hours fit
    assert readable_bucket("1h", 0.0, 90 * day, None) == "6h"
    assert readable_bucket("1min", None, 10 * day, 0.0) == "1h"  # from the first request
    assert readable_bucket("1d", 0.0, 5000 * day, None) == "7d"  # the coarsest step, even if still many
    assert readable_bucket("5min", None, None, None) == "5min"  # no traffic: nothing to coarsen
    assert readable_bucket("30d", 0.0, 5000 * day, None) == "30d"  # never finer than asked
    assert 30 * 24 <= MAX_BUCKETS
