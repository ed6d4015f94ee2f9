"""Validation plans, the budgeted search, events, ensembles and reproducibility."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML, BudgetError, Cancelled
from automl_core.ensemble import WeightedEnsemble, choose_ensemble, greedy_selection
from automl_core.scoring import get_metric
from automl_core.search import Budget, FoldCache
from automl_core.validation import make_cv_plan


@pytest.mark.parametrize(
    "task, rows, budget, kind, folds",
    [
        ("binary", 300, 60, "stratified_kfold", 10),
        ("binary", 5000, 60, "stratified_kfold", 5),
        ("regression", 5000, 60, "kfold", 5),
        ("regression", 40000, 60, "kfold", 3),
        ("regression", 200000, 60, "holdout", 1),
        ("timeseries", 2000, 60, "time_series", 3),
    ],
)
def test_fold_plan_depends_on_task_rows_and_budget(task, rows, budget, kind, folds):
    y = np.arange(rows) % 2
    plan = make_cv_plan(task, rows, budget, y)
    assert (plan.kind, plan.n_splits) == (kind, folds)
    assert plan.reason


def test_time_series_folds_always_validate_on_the_future():
    y = np.arange(300, dtype=float)
    order = np.random.default_rng(0).permutation(300)  # rows shuffled; order gives time
    plan = make_cv_plan("timeseries", 300, 60)
    for train, val in plan.splits(y, order=np.argsort(order)):
        assert order[train].max() < order[val].min()


def test_a_rare_class_keeps_the_folds_and_is_explained():
    from automl_core import AutoMLError

    y = np.array(["a"] * 50 + ["b"] * 3)
    plan = make_cv_plan("binary", 53, 60, y, cv=5)
    assert plan.n_splits == 5 and "'b' has only 3 row(s)" in plan.reason
    splits = plan.splits(y)
    assert len(splits) == 5 and sorted(np.concatenate([v for _, v in splits]).tolist()) == list(range(53))
    single = np.array(["a"] * 50 + ["b"])
    assert len(make_cv_plan("binary", 51, 60, single).splits(single)) == 10
    with pytest.raises(AutoMLError, match="at least 2"):
        make_cv_plan("binary", 51, 60, y, cv=1)


def test_a_singleton_class_still_trains():
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "z": rng.normal(size=60)})
    frame["y"] = ["a"] * 30 + ["b"] * 29 + ["c"]
    model = AutoML(time_budget=4, include=["linear"]).fit(frame, "y")
    assert list(model.classes_) == ["a", "b", "c"]
    assert model.predict_proba(frame[["x", "z"]]).shape == (60, 3)


def test_holdout_split_is_stratified():
    y = np.array([0] * 90 + [1] * 10)
    (train, val), = make_cv_plan("binary", 100, 60, y, cv="holdout").splits(y)
    assert len(val) == 20 and y[val].sum() == 2


def test_budget_reports_elapsed_and_remaining():
    clock = iter([0.0, 0.0, 3.0, 12.0]).__next__
    budget = Budget(10, clock=clock)
    assert budget.elapsed() == 0.0
    assert budget.remaining() == 7.0
    assert budget.fraction() == 1.0


def test_a_small_budget_is_respected(titanic_frame):
    start = time.monotonic()
    model = AutoML(time_budget=4, random_state=0).fit(titanic_frame, "survived")
    elapsed = time.monotonic() - start
    # No trial starts after the deadline; the wall clock has room for a loaded machine (the
    # benchmarks measure how close runs come to their budget).
    assert model.trials_ and all(t.elapsed < 4 for t in model.trials_)
    assert elapsed < 4 * 2 + 2, elapsed
    assert len(model.leaderboard_) >= 2


def test_boosting_costs_are_estimated_per_class():
    from automl_core.models import FAMILIES
    from automl_core.search import Search

    y = np.array([f"k{i % 40}" for i in range(2000)])
    folds = FoldCache(pd.DataFrame({"a": np.arange(2000.0)}), y, [], build_prep=None)

    def search(classes):
        return Search([], folds, get_metric("multiclass", "log_loss"), "multiclass", classes, budget=Budget(60))

    many, two = search(tuple(sorted(set(y)))), search(("k0", "k1"))
    ratio = many.estimate_seconds(FAMILIES["hist_gb"]) / two.estimate_seconds(FAMILIES["hist_gb"])
    assert ratio == pytest.approx(40)  # one tree per class and round, and nothing stops it early
    # LightGBM stops at its deadline: before a measurement it is tried, not skipped on a guess.
    assert many.estimate_seconds(FAMILIES["lightgbm"]) == two.estimate_seconds(FAMILIES["lightgbm"])
    assert many.estimate_seconds(FAMILIES["random_forest"]) == two.estimate_seconds(FAMILIES["random_forest"])
    many._reference_seconds = two._reference_seconds = 0.5  # measured (per class): boosting scales again
    ratio = many.estimate_seconds(FAMILIES["xgboost"]) / two.estimate_seconds(FAMILIES["xgboost"])
    assert ratio == pytest.approx(40)


def test_progress_events_cover_stages_trials_and_the_end(titanic_frame):
    events = []
    AutoML(time_budget=4, include=["lightgbm", "linear"], cv=3).fit(titanic_frame, "survived", on_event=events.append)
    types = [e.type for e in events]
    assert types[0] == "stage" and types[-1] == "done"
    assert "trial_started" in types and "trial_finished" in types
    finished = [e for e in events if e.type == "trial_finished"]
    assert all(e.trial["family"] in ("lightgbm", "linear", "baseline") for e in finished)
    assert events[-1].percent == 100.0
    lefts = [e.time_left for e in events]
    assert lefts[-1] <= lefts[0]
    assert any(e.best_score is not None for e in finished)
    assert set(events[-1].to_dict()) >= {"type", "stage", "percent", "time_left", "best_score"}


def test_a_callback_can_cancel_the_search(titanic_frame):
    seen = []

    def cancel_after_two(event):
        if event.type == "trial_finished":
            seen.append(event)
            if len(seen) >= 2:
                raise Cancelled("stop")

    with pytest.raises(Cancelled):
        AutoML(time_budget=20).fit(titanic_frame, "survived", on_event=cancel_after_two)


def test_no_model_in_time_is_a_clear_error(titanic_frame):
    with pytest.raises(BudgetError, match="positive"):
        AutoML(time_budget=0).fit(titanic_frame, "survived")


def test_ensemble_is_chosen_only_when_it_beats_the_best_single_model():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    metric = get_metric("regression", "rmse")
    a = y + rng.normal(scale=0.5, size=400)
    b = y + rng.normal(scale=0.5, size=400)
    plan = choose_ensemble(["a", "b"], [a, b], y, metric, "regression")
    assert plan is not None and plan.score < min(metric(y, a), metric(y, b))
    # A copy of an already calibrated prediction adds nothing: no ensemble.
    signal = rng.normal(size=400)
    target = signal + rng.normal(scale=0.5, size=400)
    assert choose_ensemble(["s", "s2"], [signal, signal.copy()], target, metric, "regression") is None
    # A much worse model is not worth mixing in.
    bad = y + rng.normal(scale=5.0, size=400)
    plan = choose_ensemble(["a", "bad"], [a, bad], y, metric, "regression")
    assert plan is None or plan.score <= metric(y, a)


def test_greedy_selection_weights_follow_the_better_model():
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    metric = get_metric("regression", "rmse")
    good = y + rng.normal(scale=0.3, size=500)
    worse = y + rng.normal(scale=0.6, size=500)
    weights, score = greedy_selection([good, worse], y, metric)
    assert weights[0] > weights[1] and score <= metric(y, good)


def test_weighted_ensemble_averages_member_probabilities():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(100, 2))
    y = (X[:, 0] > 0).astype(int)
    ens = WeightedEnsemble([("a", LogisticRegression()), ("b", LogisticRegression(C=0.01))], [0.5, 0.5], task="binary")
    ens.fit(X, y)
    members = [est.predict_proba(X) for _, est in ens.estimators_]
    assert np.allclose(ens.predict_proba(X), 0.5 * members[0] + 0.5 * members[1])
    assert set(ens.predict(X)) <= {0, 1}


def test_replaying_the_recipe_reproduces_the_leaderboard(titanic_frame):
    first = AutoML(time_budget=4, include=["lightgbm", "linear", "xgboost"], cv=3, random_state=3).fit(
        titanic_frame, "survived"
    )
    again = AutoML(time_budget=30, include=["lightgbm", "linear", "xgboost"], cv=3, random_state=3,
                   replay=first.recipe_["trials"]).fit(titanic_frame, "survived")
    a = first.leaderboard_[first.leaderboard_.family != "ensemble"]
    b = again.leaderboard_[again.leaderboard_.family != "ensemble"]
    assert list(a.model) == list(b.model)
    assert np.allclose(a.score.to_numpy(dtype=float), b.score.to_numpy(dtype=float))


def test_leaderboard_carries_spread_time_speed_and_size(titanic_model):
    board = titanic_model.leaderboard_
    for column in ("score", "std", "fit_time", "predict_ms_per_row", "size_kb", "params"):
        assert column in board.columns
    singles = board[board.family != "ensemble"]
    assert singles["fit_time"].gt(0).all() and singles["predict_ms_per_row"].gt(0).all()
    assert board.iloc[0]["chosen"]


def test_large_data_is_searched_on_a_sample_and_refit_on_all_rows():
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    frame["y"] = frame.x * 3 + rng.normal(scale=0.1, size=n)
    model = AutoML(time_budget=5, include=["linear"], max_search_rows=1000, cv=3, ensemble=False).fit(frame, "y")
    assert len(model.search_index_) == 1000
    assert model.best_estimator_.named_steps["model"].estimator_.n_features_in_ == 2
    assert model.score(frame[["x", "z"]], frame.y) < 0.2


def test_a_wide_table_is_searched_on_fewer_rows_and_the_stage_says_why():
    rng = np.random.default_rng(1)
    n, width = 3000, 40
    frame = pd.DataFrame(rng.normal(size=(n, width)), columns=[f"c{i}" for i in range(width)])
    frame["y"] = frame.c0 * 2 + rng.normal(scale=0.1, size=n)
    events = []
    model = AutoML(time_budget=5, include=["linear"], max_search_cells=60_000, cv=3, ensemble=False).fit(
        frame, "y", on_event=events.append
    )
    assert len(model.search_index_) == 1500  # 60,000 cells / 40 columns
    assert any("3,000 rows x 40 columns: searching on a sample of 1,500 rows" in (e.message or "") for e in events)
    assert model.best_estimator_.named_steps["model"].estimator_.n_features_in_ == width  # refit on all columns
    assert model.recipe_["settings"]["max_search_cells"] == 60_000


def test_the_refit_reserve_counts_only_the_leading_families():
    from automl_core.search import Trial

    def trial(i, family, score, fit_time):
        return Trial(trial_id=i, family=family, params={}, source="portfolio", status="ok", score=score,
                     fit_time=fit_time)

    signed = get_metric("regression", "rmse").signed_score  # lower RMSE leads
    trials = [trial(1, "lightgbm", 0.51, 2.0), trial(2, "hist_gb", 0.515, 3.0), trial(3, "xgboost", 0.52, 1.0),
              trial(4, "mlp", 0.54, 20.0), trial(5, "lightgbm", 0.56, 4.0)]
    reserve = AutoML._reserve_seconds(trials, n_folds=1, row_ratio=1.0, signed=signed)
    per_second = AutoML._reserve_seconds([trial(9, "x", 1.0, 1.0)], n_folds=1, row_ratio=1.0) - 0.5
    # lightgbm at its slowest (4 s), hist_gb and xgboost: the fourth-ranked 20 s MLP is not waited for.
    assert reserve == pytest.approx(0.5 + per_second * (4.0 + 3.0 + 1.0))
    trials.append(trial(6, "mlp", 0.505, 20.0))  # now the MLP leads: its refit must fit
    assert AutoML._reserve_seconds(trials, n_folds=1, row_ratio=1.0, signed=signed) == pytest.approx(
        0.5 + per_second * (20.0 + 4.0 + 3.0))
    assert AutoML._reserve_seconds([], n_folds=3, row_ratio=1.0) == 0.5
