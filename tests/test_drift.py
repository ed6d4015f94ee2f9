"""Tests for automl_core.drift: PSI on hand-computed cases, tests against scipy, profiles through JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from automl_core import drift as dr

EPS = dr.PSI_EPSILON


def psi_by_hand(reference_shares, current_shares):
    return sum(
        (max(c, EPS) - max(r, EPS)) * math.log(max(c, EPS) / max(r, EPS))
        for r, c in zip(reference_shares, current_shares, strict=True)
    )


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    n = 2000
    reference = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
            "member": rng.random(n) > 0.7,
        }
    )
    same = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
            "member": rng.random(n) > 0.7,
        }
    )
    shifted = pd.DataFrame(
        {
            "income": rng.lognormal(10.6, 0.5, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n, p=[0.2, 0.2, 0.2, 0.4]),
            "member": rng.random(n) > 0.7,
        }
    )
    return reference, same, shifted


def test_psi_is_zero_for_identical_data_and_small_for_the_same_distribution(frames):
    reference, same, _ = frames
    assert dr.population_stability_index(reference["income"], reference["income"]) == 0.0
    assert dr.population_stability_index(reference["city"], reference["city"]) == 0.0
    assert dr.population_stability_index(reference["income"], same["income"]) < 0.02
    assert dr.population_stability_index(reference["city"], same["city"]) < 0.02


def test_psi_is_large_for_a_shifted_distribution(frames):
    reference, _, shifted = frames
    assert dr.population_stability_index(reference["income"], shifted["income"]) > dr.PSI_MAJOR
    assert dr.population_stability_index(reference["city"], shifted["city"]) > dr.PSI_MAJOR


def test_numeric_psi_uses_reference_quantile_bins_and_an_epsilon_for_empty_bins():
    reference = np.arange(100.0)  # 4 quantile bins of 25 values each
    current = np.arange(25.0)  # all in the first bin
    got = dr.population_stability_index(reference, current, bins=4)
    assert got == pytest.approx(psi_by_hand([0.25] * 4 + [0.0], [1.0, 0, 0, 0, 0.0]))


def test_numeric_psi_gives_missing_values_their_own_bin():
    reference = np.arange(100.0)
    current = np.append(np.arange(100.0), [np.nan] * 100)  # same spread, half missing
    got = dr.population_stability_index(reference, current, bins=4)
    assert got == pytest.approx(psi_by_hand([0.25] * 4 + [0.0], [0.125] * 4 + [0.5]))
    with_nan = np.append(np.arange(100.0), [np.nan] * 10)
    assert dr.population_stability_index(with_nan, with_nan) == 0.0


def test_categorical_psi_puts_unseen_categories_in_other():
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 50 + ["c"] * 50  # "c" was never seen: it lands in "other", and "b" is empty
    # buckets: a, b, other, missing
    expected = psi_by_hand([0.5, 0.5, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0])
    assert dr.population_stability_index(reference, current) == pytest.approx(expected)


def test_categorical_psi_keeps_the_top_categories_of_the_reference():
    reference = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    current = ["a"] * 60 + ["b"] * 10 + ["c"] * 30
    got = dr.population_stability_index(reference, current, max_categories=2)
    # buckets: a, b, other (c), missing
    assert got == pytest.approx(psi_by_hand([0.6, 0.3, 0.1, 0.0], [0.6, 0.1, 0.3, 0.0]))


def test_ks_test_matches_scipy(frames):
    reference, _, shifted = frames
    result = dr.ks_test(reference["income"], shifted["income"])
    expected = stats.ks_2samp(reference["income"], shifted["income"])
    assert (result.statistic, result.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert result.method == "ks"


def test_chi_square_test_matches_scipy_on_the_category_counts():
    reference = ["x"] * 70 + ["y"] * 30
    current = ["x"] * 40 + ["y"] * 60
    result = dr.chi_square_test(reference, current)
    expected = stats.chi2_contingency([[70, 30], [40, 60]], correction=False)
    assert (result.statistic, result.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert dr.chi_square_test(["x"] * 5, ["x"] * 7).p_value == 1.0  # one bucket: nothing to compare


def test_drift_report_has_one_row_per_column_with_levels(frames):
    reference, _, shifted = frames
    report = dr.drift_report(reference, shifted)
    assert report.columns.tolist() == [
        "column",
        "kind",
        "psi",
        "level",
        "drifted",
        "test",
        "ks_statistic",
        "p_value",
    ]
    rows = report.set_index("column")
    assert rows.loc["income", "kind"] == "numeric" and rows.loc["income", "test"] == "ks"
    assert rows.loc["city", "kind"] == "categorical" and rows.loc["member", "kind"] == "categorical"
    assert rows.loc["income", "level"] == "major" and rows.loc["income", "drifted"]
    assert rows.loc["member", "level"] == "none" and not rows.loc["member", "drifted"]
    assert math.isnan(rows.loc["city", "ks_statistic"])
    assert rows.loc["income", "psi"] == pytest.approx(
        dr.population_stability_index(reference["income"], shifted["income"])
    )
    assert rows.loc["income", "p_value"] == pytest.approx(
        stats.ks_2samp(reference["income"], shifted["income"]).pvalue
    )
    assert rows.loc["city", "p_value"] == pytest.approx(
        dr.chi_square_test(reference["city"], shifted["city"]).p_value
    )


def test_drift_report_can_be_limited_to_some_columns(frames):
    reference, same, _ = frames
    report = dr.drift_report(reference, same, columns=["city"])
    assert report["column"].tolist() == ["city"] and report["level"].tolist() == ["none"]


def test_drift_report_leaves_the_ks_test_empty_when_a_side_has_no_numbers():
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    current = pd.DataFrame({"x": [np.nan, np.nan]})
    row = dr.drift_report(reference, current).iloc[0]
    assert math.isnan(row["p_value"]) and row["level"] == "major"


def test_reference_profile_is_json_serialisable_and_gives_the_same_psi_after_a_round_trip(frames):
    reference, _, shifted = frames
    hours = pd.date_range("2024-01-01", periods=len(reference), freq="h")
    reference, shifted = reference.assign(when=hours), shifted.assign(when=hours + pd.Timedelta(days=60))
    profile = dr.reference_profile(reference)
    restored = json.loads(json.dumps(profile))
    assert restored == profile
    assert (
        restored["columns"]["income"]["kind"] == "numeric"
        and len(restored["columns"]["income"]["edges"]) == 9
    )
    assert restored["columns"]["when"]["kind"] == "numeric"  # datetimes are binned as seconds since 1970
    assert sum(restored["columns"]["city"]["shares"]) == pytest.approx(1.0)
    from_profile = dr.psi_from_profile(restored, shifted)
    report = dr.drift_report(reference, shifted)
    pd.testing.assert_frame_equal(from_profile, report[["column", "kind", "psi", "level", "drifted"]])


def test_profile_keeps_at_most_max_categories_with_the_rest_as_other():
    df = pd.DataFrame({"code": [f"c{i % 80}" for i in range(800)]})
    entry = dr.reference_profile(df)["columns"]["code"]
    assert len(entry["categories"]) == dr.MAX_CATEGORIES
    assert entry["other_share"] == pytest.approx(30 / 80)


def test_psi_from_profile_matches_columns_by_name_and_ignores_extras():
    profile = dr.reference_profile(pd.DataFrame({1: [1.0, 2.0, 3.0, 4.0]}))
    table = dr.psi_from_profile(profile, pd.DataFrame({1: [1.0, 2.0, 3.0, 4.0], "extra": ["a"] * 4}))
    assert table["column"].tolist() == ["1"] and table["psi"].tolist() == [0.0]


def test_numeric_columns_read_as_text_in_current_data_show_up_as_missing():
    reference = pd.DataFrame({"x": np.arange(100.0)})
    current = pd.DataFrame({"x": ["n/a"] * 50 + [str(v) for v in range(50)]})
    assert dr.drift_report(reference, current).loc[0, "level"] == "major"


def test_time_zones_and_booleans_can_be_compared_as_numbers():
    hours = pd.date_range("2024-01-01", periods=48, freq="h")
    paris = pd.Series(hours.tz_localize("Europe/Paris"))
    assert dr.population_stability_index(paris, pd.Series(paris.dt.tz_convert("UTC"))) == 0.0
    flags = pd.Series([True, False] * 10)
    assert dr.population_stability_index(flags, ~flags, kind="numeric") == 0.0
    assert dr.population_stability_index(flags, flags & False, kind="numeric") > dr.PSI_MAJOR


@pytest.mark.parametrize(
    ("psi", "level"),
    [(0.0, "none"), (0.099, "none"), (0.1, "moderate"), (0.249, "moderate"), (0.25, "major")],
)
def test_drift_level_uses_the_usual_psi_thresholds(psi, level):
    assert dr.drift_level(psi) == level


DRIFT_ERRORS = [
    (lambda: dr.population_stability_index([], [1.0]), r"reference is empty"),
    (
        lambda: dr.population_stability_index([1.0], [[1.0]]),
        r"current must be one-dimensional .* shape \(1, 1\)",
    ),
    (
        lambda: dr.population_stability_index([1.0], [1.0], kind="ordinal"),
        r"kind must be one of .* got 'ordinal'",
    ),
    (lambda: dr.population_stability_index([1.0], [1.0], bins=0), r"bins must be a positive integer, got 0"),
    (lambda: dr.ks_test(["a", "b"], [1.0]), r"reference has no numeric values to test"),
    (lambda: dr.reference_profile([1, 2]), r"df must be a pandas DataFrame, got list"),
    (lambda: dr.reference_profile(pd.DataFrame({"x": []})), r"df has no rows"),
    (lambda: dr.psi_from_profile({"rows": []}, pd.DataFrame({"x": [1]})), r"profile must be a dict made by"),
    (
        lambda: dr.psi_from_profile({"version": 99, "columns": {}}, pd.DataFrame({"x": [1]})),
        r"profile has version 99",
    ),
    (
        lambda: dr.psi_from_profile(dr.reference_profile(pd.DataFrame({"x": [1]})), pd.DataFrame({"y": [1]})),
        r"current_df lacks columns \['x'\]",
    ),
    (
        lambda: dr.psi_from_profile(dr.reference_profile(pd.DataFrame({"x": [1]})), pd.DataFrame({"x": []})),
        r"current_df has no rows",
    ),
    (lambda: dr.psi_from_profile(dr.reference_profile(pd.DataFrame({"x": [1]})), [1]), r"current_df must be"),
    (lambda: dr.drift_report(pd.DataFrame({"x": [1]}), [1]), r"current_df must be a pandas DataFrame"),
    (
        lambda: dr.drift_report(pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [1]}), columns=["x", "z"]),
        r"reference_df lacks columns \['z'\]",
    ),
]


@pytest.mark.parametrize(("call", "message"), DRIFT_ERRORS)
def test_drift_errors_name_the_culprit(call, message):
    with pytest.raises(ValueError, match=message):
        call()
