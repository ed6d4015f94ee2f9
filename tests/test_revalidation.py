"""Re-validation of the finalists on fresh folds: honest scores decide the winner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.preprocess import build_preprocessor
from automl_core.revalidation import (
    REPEATS,
    ReservePlanner,
    affordable,
    applies_to,
    finalists,
    passes_that_fit,
    revalidate,
)
from automl_core.scoring import get_metric
from automl_core.search import Budget, FoldCache, Search, Trial
from automl_core.validation import make_cv_plan


def _trial(trial_id, family, score, oof, fit_time=0.01):
    return Trial(trial_id, family, {}, "optuna", status="ok", score=score, std=0.01, oof=np.asarray(oof, float),
                 fit_time=fit_time)


def test_finalists_are_distinct_and_at_most_three_per_family():
    rng = np.random.default_rng(0)
    ranked = [_trial(i, "lightgbm", 0.9 - i / 100, rng.normal(size=20)) for i in range(5)]
    ranked.insert(1, _trial(9, "lightgbm", 0.895, ranked[0].oof.copy()))  # the same predictions as the best
    ranked.append(_trial(20, "baseline", 0.5, np.zeros(20)))
    ranked.append(_trial(21, "linear", 0.8, rng.normal(size=20)))
    names = [t.name for t in finalists(ranked)]
    assert names == ["lightgbm_0", "lightgbm_1", "lightgbm_2", "linear_21"]


def test_finalists_tell_apart_models_that_only_scored_the_last_rows():
    # A holdout or time-ordered windows leave the first rows without predictions.
    rng = np.random.default_rng(1)
    ranked = []
    for i in range(3):
        oof = np.full(500, np.nan)
        oof[300:] = rng.normal(size=200)
        ranked.append(_trial(i, "trend", 0.9 - i / 100, oof))
    assert len(finalists(ranked)) == 3


def test_only_shuffled_kfold_plans_are_revalidated():
    y = np.arange(400) % 2
    assert applies_to(make_cv_plan("binary", 400, 60, y))
    assert not applies_to(make_cv_plan("regression", 200_000, 60))
    assert not applies_to(make_cv_plan("timeseries", 400, 60))
    assert not applies_to(None)


def test_the_reserve_covers_the_best_finalists_that_fit_or_none():
    rng = np.random.default_rng(0)
    cheap = [_trial(i, "linear", 0.8, rng.normal(size=50), fit_time=0.1) for i in range(3)]
    prep = {"linear": 0.1, "tree": 0.1}
    # 60 s budget: 15 s for re-validation; one pass over the three cheap models costs 1.6 s.
    assert passes_that_fit(cheap, 15, 5, 50, prep) == REPEATS
    assert ReservePlanner(60, 5, 50, prep)(cheap, float) == pytest.approx(1.5 * REPEATS * 1.6)  # with slack
    forests = [_trial(10 + i, "random_forest", 0.7, rng.normal(size=50), fit_time=0.8) for i in range(3)]
    # 1.6 + 12.1 s: one pass over all fits in 15 s, but not with the slack kept for an overrunning last
    # trial (10 s); the three cheap models and the two best forests (9.7 s) do.
    assert passes_that_fit(cheap + forests, 15, 5, 50, prep) == 1
    assert [t.name for t in affordable(cheap + forests, 10, 5, 50, prep)] == [t.name for t in cheap + forests[:2]]
    assert ReservePlanner(60, 5, 50, prep)(cheap + forests, float) == pytest.approx(1.5 * 9.7)
    # Five of nine finalists fit: under two thirds, so none are re-validated (the ensemble's pool would shrink).
    more = [_trial(30 + i, "extra_trees", 0.6, rng.normal(size=50), fit_time=0.8) for i in range(3)]
    assert len(affordable(cheap + forests + more, 10, 5, 50, prep)) == 5
    assert ReservePlanner(60, 5, 50, prep)(cheap + forests + more, float) == 0.0
    slow = [_trial(20 + i, "random_forest", 0.9, rng.normal(size=50), fit_time=5.0) for i in range(3)]
    # The best finalists do not fit: cheaper, worse ones are not re-validated in their place (they would outrank them).
    assert affordable(slow + cheap, 10, 5, 50, prep) == []
    assert ReservePlanner(60, 5, 50, prep)(cheap + slow, float) == 0.0
    assert ReservePlanner(60, 5, 50, prep)(cheap[:2], float) == 0.0  # too few finalists


def _regression_folds(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = 3 * X["a"].to_numpy() - 2 * X["b"].to_numpy() + rng.normal(scale=0.5, size=n)
    kinds = dict.fromkeys(X.columns, "numeric")

    def build(style, part):
        return build_preprocessor(kinds, part, style, task="regression"), ()

    plan = make_cv_plan("regression", n, 60, cv=5)
    return FoldCache(X, y, plan.splits(y), build), plan


def test_a_lucky_search_score_does_not_win_after_revalidation():
    folds, plan = _regression_folds()
    metric = get_metric("regression", "rmse")
    from automl_core.models import FAMILIES

    search = Search([FAMILIES["linear"]], folds, metric, "regression", budget=Budget(60))
    good = search.evaluate(FAMILIES["linear"], {"penalty": "l2", "alpha": 0.01}, "portfolio")
    bad = search.evaluate(FAMILIES["linear"], {"penalty": "l1", "alpha": 3.0}, "optuna")
    middle = search.evaluate(FAMILIES["linear"], {"penalty": "l1", "alpha": 1.0}, "optuna")
    honest_bad = bad.score
    lucky = good.score * 0.9
    bad.score = lucky  # as if the tuner had fitted the folds' noise
    ranked = [bad, good, middle]
    result = revalidate(ranked, plan, folds, metric, "regression", (), budget=Budget(60),
                        refit_reserve=lambda: 0.0)
    assert result is not None and result.repeats == REPEATS
    assert set(result.scores) == {bad.name, good.name, middle.name}
    assert result.scores[bad.name] == pytest.approx(honest_bad, rel=0.25)  # the honest level, not the lucky one
    reordered = result.apply(ranked, folds.y, metric, ())
    assert [t.name for t in reordered] == [good.name, middle.name, bad.name]
    assert reordered[2].search_score == lucky
    assert all(t.revalidated == REPEATS for t in reordered)
    assert len(reordered[0].fold_scores) == REPEATS * plan.n_splits
    assert not np.isnan(reordered[0].oof).any()


def test_revalidation_is_skipped_when_the_time_left_is_too_short():
    folds, plan = _regression_folds()
    metric = get_metric("regression", "rmse")
    from automl_core.models import FAMILIES

    search = Search([FAMILIES["linear"]], folds, metric, "regression", budget=Budget(60))
    trials = [search.evaluate(FAMILIES["linear"], {"alpha": a}, "portfolio") for a in (0.1, 1.0, 10.0)]
    assert revalidate(trials, plan, folds, metric, "regression", (), budget=Budget(0.01),
                      refit_reserve=lambda: 0.0) is None


def test_only_the_best_finalists_that_fit_are_revalidated():
    folds, plan = _regression_folds()
    metric = get_metric("regression", "rmse")
    from automl_core.models import FAMILIES

    search = Search([FAMILIES["linear"]], folds, metric, "regression", budget=Budget(60))
    trials = [search.evaluate(FAMILIES["linear"], {"alpha": a}, "portfolio") for a in (0.1, 1.0, 10.0, 30.0)]
    trials[3].fit_time = 100.0  # as if the fourth were a slow model: its pass would not fit
    result = revalidate(trials, plan, folds, metric, "regression", (), budget=Budget(60),
                        refit_reserve=lambda: 0.0)
    assert result is not None
    assert list(result.scores) == [t.name for t in trials[:3]]
    assert [t.revalidated for t in result.apply(trials, folds.y, metric, ())] == [REPEATS] * 3 + [0]


def test_a_replay_revalidates_exactly_what_was_recorded(titanic_frame, monkeypatch):
    # Most of the budget may go to re-validation, so that it happens however loaded the machine is.
    monkeypatch.setattr("automl_core.revalidation.BUDGET_SHARE", 0.6)
    settings = dict(include=["lightgbm", "linear"], cv=3, random_state=5)
    first = AutoML(time_budget=8, **settings).fit(titanic_frame, "survived")
    assert first.revalidation_ is not None, "small data and a cheap pass: re-validation should run"
    board = first.leaderboard_
    singles = board[board.family != "ensemble"]
    top = singles.iloc[0]
    assert not np.isnan(top["search_score"])
    assert len(top["fold_scores"]) == first.revalidation_.repeats * 3
    marked = [e for e in first.recipe_["trials"] if e["revalidated"]]
    assert len(marked) == len(first.revalidation_.scores)
    again = AutoML(time_budget=60, replay=first.recipe_["trials"], **settings).fit(titanic_frame, "survived")
    # The ensemble too: the replay rebuilds the recorded one although it has time for members the first run dropped.
    assert again.best_model_name_ == first.best_model_name_
    assert list(again.leaderboard_.model) == list(board.model)
    assert np.allclose(again.leaderboard_.score.to_numpy(float), board.score.to_numpy(float))
    assert np.allclose(again.leaderboard_.search_score.to_numpy(float), board.search_score.to_numpy(float),
                       equal_nan=True)


def test_a_replay_rebuilds_a_recorded_stacker(titanic_frame):
    settings = dict(include=["lightgbm", "linear"], cv=3, random_state=0)
    first = AutoML(time_budget=4, **settings).fit(titanic_frame, "survived")
    recipe = [dict(e) for e in first.recipe_["trials"]]
    chosen = [e for e in recipe if e["family"] in ("lightgbm", "linear")][:2]
    for entry in recipe:
        entry["ensemble"] = None
    for position, entry in enumerate(chosen):
        entry["ensemble"] = {"kind": "stacking", "weight": 0.5, "position": position}
    again = AutoML(time_budget=60, replay=recipe, **settings).fit(titanic_frame, "survived")
    assert again.ensemble_.kind == "stacking"
    assert again.ensemble_.members == [f"{e['family']}_{e['trial_id']}" for e in chosen]
    assert again.best_estimator_.predict_proba(titanic_frame.head(5)).shape == (5, 2)


def test_holdout_plans_keep_the_search_scores(titanic_frame):
    model = AutoML(time_budget=4, include=["linear"], cv="holdout", random_state=0).fit(titanic_frame, "survived")
    assert model.revalidation_ is None
    assert model.leaderboard_["search_score"].isna().all()


def test_a_replay_can_ask_for_several_shuffles_and_each_counts():
    folds, plan = _regression_folds()
    metric = get_metric("regression", "rmse")
    from automl_core.models import FAMILIES

    search = Search([FAMILIES["linear"]], folds, metric, "regression", budget=Budget(60))
    trials = [search.evaluate(FAMILIES["linear"], {"alpha": a}, "portfolio") for a in (0.1, 1.0, 10.0)]
    result = revalidate(trials, plan, folds, metric, "regression", (), budget=Budget(60),
                        refit_reserve=lambda: 0.0, repeats=2)
    assert result.repeats == 2 and result.seeds == [1, 2]
    assert len(result.fold_scores(result.oof[trials[0].name], folds.y, metric, ())) == 2 * plan.n_splits


def test_fold_scores_of_different_lengths_are_refused_by_name():
    from automl_core.comparison import compare_fold_scores
    from automl_core.errors import AutoMLError

    with pytest.raises(AutoMLError, match="lightgbm_3 and linear_2 were scored on different folds"):
        compare_fold_scores([0.8, 0.81, 0.79], [0.8] * 6, n_rows=900, cv_plan={"n_splits": 3},
                            greater_is_better=True, labels=("lightgbm_3", "linear_2"))
