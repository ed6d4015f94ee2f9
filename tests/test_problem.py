"""Problem detection: the task, its reason, and checked overrides."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automl_core import DataError, TargetError, profile_table, read_table
from automl_core.problem import choose_positive_class, describe_step, detect_problem, split_target
from tests.conftest import SPLITS, VENDORED, dataset_path

_MANIFEST_FILE = SPLITS / "manifest.json" if (SPLITS / "manifest.json").exists() else VENDORED / "manifest.json"
MANIFEST = json.loads(_MANIFEST_FILE.read_text())["datasets"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_detection_is_right_on_every_shared_dataset(entry):
    frame = read_table(dataset_path(entry["name"]))
    target = None if entry["task"] == "clustering" else entry["target"]
    if target is None:
        frame = frame.drop(columns=[entry["target"]])
    profile = profile_table(frame, target)
    problem = detect_problem(frame, target, profile)
    assert problem.task == entry["task"], problem.reason
    assert problem.reason
    if entry["task"] == "binary":
        assert str(problem.positive_class) == entry["positive_class"]
    if entry["task"] == "timeseries":
        assert problem.time_column == entry["time_column"]


def test_reasons_read_as_sentences():
    frame = read_table(dataset_path("loans_messy"))
    problem = detect_problem(frame, "interest_rate", profile_table(frame, "interest_rate"))
    assert problem.reason.startswith("target 'interest_rate' is a number with")
    assert "→ regression" in problem.reason
    wine = read_table(dataset_path("wine"))
    problem = detect_problem(wine, "cultivar", profile_table(wine, "cultivar"))
    assert "3 distinct labels" in problem.reason and problem.metric == "log_loss"


def test_override_is_kept_and_marked():
    frame = read_table(dataset_path("diabetes"))
    profile = profile_table(frame, "progression")
    problem = detect_problem(frame, "progression", profile, task="regression", metric="mae")
    assert problem.overridden and problem.metric == "mae" and "chosen by you" in problem.reason


def _frame(values, extra=None):
    frame = pd.DataFrame({"x": np.arange(len(values), dtype=float) % 7, "y": values})
    if extra:
        for k, v in extra.items():
            frame[k] = v
    return frame


@pytest.mark.parametrize(
    "values, task, error, match",
    [
        (["a", "b", "c"] * 10, "regression", TargetError, "holds text"),
        (["a", "b", "c"] * 10, "binary", TargetError, "exactly 2"),
        ([1.5, 2.5, 3.1] * 10, "timeseries", DataError, "date column"),
        ([1.5, 2.5, 3.1] * 10, "sideways", TargetError, "not one of"),
    ],
)
def test_impossible_overrides_are_refused(values, task, error, match):
    frame = _frame(values)
    with pytest.raises(error, match=match):
        detect_problem(frame, "y", profile_table(frame, "y"), task=task)


def test_wrong_metric_for_the_task_is_refused():
    from automl_core import AutoMLError

    frame = _frame([1.5, 2.5, 3.1] * 10)
    with pytest.raises(AutoMLError, match="does not fit a regression"):
        detect_problem(frame, "y", profile_table(frame, "y"), metric="roc_auc")


def test_multiclass_override_with_two_classes_becomes_binary():
    frame = _frame(["a", "b"] * 15)
    problem = detect_problem(frame, "y", profile_table(frame, "y"), task="multiclass")
    assert problem.task == "binary"


def test_small_whole_numbers_are_classes_and_many_are_a_regression():
    classes = _frame([1.0, 2.0, 3.0, 4.0] * 20)
    assert detect_problem(classes, "y", profile_table(classes, "y")).task == "multiclass"
    counts = _frame(list(np.arange(200) % 50))
    assert detect_problem(counts, "y", profile_table(counts, "y")).task == "regression"


def test_whole_number_classes_read_as_floats_are_integer_classes():
    frame = _frame([0.0, 1.0, 1.0] * 20)  # how a CSV's 0/1 column arrives
    problem = detect_problem(frame, "y", profile_table(frame, "y"))
    assert problem.classes == (0, 1) and all(type(c) is int for c in problem.classes)
    assert "(0, 1)" in problem.reason and problem.positive_class == 1  # "1" means positive, though rarer is 0
    _, y, _ = split_target(frame, problem, profile_table(frame, "y"))
    assert y.dtype == "int64"


def test_identifier_like_text_target_is_refused():
    frame = _frame([f"user-{i}" for i in range(300)])
    with pytest.raises(TargetError, match="identifier or free text"):
        detect_problem(frame, "y", profile_table(frame, "y"))


def test_no_target_means_clustering_and_clustering_ignores_a_target():
    frame = _frame([1.0, 2.0] * 15)
    assert detect_problem(frame, None, profile_table(frame)).task == "clustering"
    problem = detect_problem(frame, "y", profile_table(frame, "y"), task="clustering")
    assert problem.task == "clustering" and problem.target is None
    with pytest.raises(TargetError, match="needs a target"):
        detect_problem(frame, None, profile_table(frame), task="binary")


def test_positive_class_prefers_yes_then_the_rarer_class():
    assert choose_positive_class(pd.Series(["No", "Yes", "No"])) == "Yes"
    assert choose_positive_class(pd.Series(["died", "survived", "died"])) == "survived"
    assert choose_positive_class(pd.Series([0, 1, 1])) == 1


def test_time_steps_are_named():
    assert describe_step(pd.Timedelta(days=7)) == "weekly"
    assert describe_step(pd.Timedelta(days=1)) == "daily"
    assert describe_step(pd.Timedelta(hours=1)) == "every 0 days 01:00:00"
    assert describe_step(pd.Timedelta(days=3)) == "every 3 days"


@pytest.mark.parametrize(
    "dates, step",
    [
        (pd.date_range("2001-03-31", periods=40, freq="QE").strftime("%m/%d/%Y"), "quarterly"),
        (pd.date_range("1990-12-31", periods=30, freq="YE").strftime("%Y-%m-%d"), "yearly"),
        (pd.date_range("1949-01-01", periods=60, freq="MS").strftime("%Y-%m"), "monthly"),
        (pd.Series(range(1950, 2000), dtype="int64"), "yearly"),  # whole-number years in a column named 'year'
    ],
)
def test_calendar_steps_of_varying_length_are_a_time_index(dates, step):
    values = np.linspace(100, 200, len(dates)) + np.random.default_rng(0).normal(size=len(dates))
    frame = pd.DataFrame({"year" if step == "yearly" and not isinstance(dates[0], str) else "when": dates,
                          "sales": values})
    problem = detect_problem(frame, "sales", profile_table(frame, "sales"))
    assert problem.task == "timeseries", problem.reason
    assert f"the {step} dates" in problem.reason


def test_explicit_time_column_must_hold_dates():
    frame = pd.DataFrame({"when": np.arange(50.0) * 3.5, "y": np.linspace(0, 1, 50)})
    with pytest.raises(DataError, match="time column 'when' .* was read as numeric, not as dates"):
        detect_problem(frame, "y", profile_table(frame, "y"), task="timeseries", time_column="when")


def test_explicit_time_column_must_exist():
    frame = _frame([1.5, 2.5, 3.1] * 10)
    with pytest.raises(DataError, match="time column 'when'"):
        detect_problem(frame, "y", profile_table(frame, "y"), time_column="when")


def test_yes_no_targets_in_mixed_case_are_two_classes():
    frame = _frame(["Yes", "yes", "No", "no", "YES", "No"] * 10)
    profile = profile_table(frame, "y")
    problem = detect_problem(frame, "y", profile)
    assert problem.task == "binary" and set(problem.classes) == {"Yes", "No"}
    assert problem.positive_class == "Yes"
