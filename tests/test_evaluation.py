"""Tests for automl_core.evaluation: values are checked against scikit-learn and scipy on known data."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import label_binarize

from automl_core import evaluation as ev

# ------------------------------------------------------------------------------------------------ data


@pytest.fixture(scope="module")
def binary():
    """Labels "no"/"yes" with informative but imperfect probabilities; columns in ["no", "yes"] order."""
    rng = np.random.default_rng(0)
    y = rng.choice(np.array(["no", "yes"]), size=400, p=[0.6, 0.4])
    p_yes = np.clip(0.35 * (y == "yes") + 0.65 * rng.random(400), 0, 1)
    proba = np.column_stack([1 - p_yes, p_yes])
    pred = np.where(p_yes >= 0.5, "yes", "no")
    return y, pred, proba


@pytest.fixture(scope="module")
def multiclass():
    """Integer labels 0, 1, 2; every class present; probabilities from a Dirichlet nudged towards the truth."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=300)
    proba = rng.dirichlet([1, 1, 1], size=300) + 0.8 * np.eye(3)[y]
    proba /= proba.sum(axis=1, keepdims=True)
    return y, proba.argmax(axis=1), proba


# ------------------------------------------------------------------------------------- classification


def test_binary_metrics_match_scikit_learn_for_string_labels(binary):
    y, pred, proba = binary
    got = ev.classification_metrics(y, pred, proba)
    is_yes = y == "yes"
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label="yes"),
        "recall": skm.recall_score(y, pred, pos_label="yes"),
        "f1": skm.f1_score(y, pred, pos_label="yes"),
        "specificity": skm.recall_score(y, pred, pos_label="no"),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_macro": skm.recall_score(y, pred, average="macro"),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "precision_weighted": skm.precision_score(y, pred, average="weighted"),
        "recall_weighted": skm.recall_score(y, pred, average="weighted"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "jaccard_macro": skm.jaccard_score(y, pred, average="macro"),
        "matthews_corrcoef": skm.matthews_corrcoef(y, pred),
        "cohen_kappa": skm.cohen_kappa_score(y, pred),
        "roc_auc": skm.roc_auc_score(is_yes, proba[:, 1]),
        "pr_auc": skm.average_precision_score(is_yes, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba, labels=["no", "yes"]),
        "brier": skm.brier_score_loss(is_yes, proba[:, 1]),
    }
    assert got == pytest.approx(expected)
    assert len(got) >= 15


def test_binary_positive_class_can_be_the_first_column(binary):
    y, pred, proba = binary
    got = ev.classification_metrics(y, pred, proba, positive_class="no")
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="no"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "no", proba[:, 0]))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y == "no", proba[:, 0]))


def test_multiclass_metrics_match_scikit_learn_one_vs_rest(multiclass):
    y, pred, proba = multiclass
    got = ev.classification_metrics(y, pred, proba)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "precision_weighted": skm.precision_score(y, pred, average="weighted"),
        "matthews_corrcoef": skm.matthews_corrcoef(y, pred),
        "cohen_kappa": skm.cohen_kappa_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "roc_auc_weighted": skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted"),
        "roc_auc_ovo": skm.roc_auc_score(y, proba, multi_class="ovo"),
        "pr_auc": skm.average_precision_score(label_binarize(y, classes=[0, 1, 2]), proba, average="macro"),
        "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, proba),
    }
    assert {name: got[name] for name in expected} == pytest.approx(expected)
    assert "precision" not in got  # positive-class metrics are binary only
    assert len(got) >= 15


def test_classes_in_a_custom_order_line_up_with_proba_columns(multiclass):
    y, pred, proba = multiclass
    names = np.array(["ant", "bee", "cat"])
    order = [2, 0, 1]
    reordered = ev.classification_metrics(names[y], names[pred], proba[:, order], classes=names[order])
    assert reordered == pytest.approx(ev.classification_metrics(y, pred, proba))


def test_probability_metrics_are_omitted_without_proba(binary):
    y, pred, _ = binary
    got = ev.classification_metrics(y, pred)
    assert not {"roc_auc", "pr_auc", "log_loss", "brier"} & set(got)
    assert len(got) == 15


def test_metrics_undefined_on_the_data_are_omitted_rather_than_raised():
    got = ev.classification_metrics(
        [1, 1, 1], [1, 1, 1], [[0.2, 0.8], [0.3, 0.7], [0.1, 0.9]], classes=[0, 1]
    )
    assert "roc_auc" not in got and "pr_auc" not in got  # one class present
    assert "cohen_kappa" not in got  # 0 / 0
    assert got["log_loss"] == pytest.approx(
        skm.log_loss([1, 1, 1], [[0.2, 0.8], [0.3, 0.7], [0.1, 0.9]], labels=[0, 1])
    )


def test_multiclass_auc_averages_over_the_classes_present_in_y_true():
    y, pred = np.array([0, 1, 0, 1]), np.array([0, 1, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3]])
    got = ev.classification_metrics(y, pred, proba, classes=[0, 1, 2])
    expected = np.mean([skm.roc_auc_score(y == j, proba[:, j]) for j in (0, 1)])
    assert got["roc_auc"] == pytest.approx(expected)


def test_labels_of_mixed_types_keep_their_first_appearance_order():
    y = np.array(["cat", 1, "cat", 1], dtype=object)
    details = ev.classification_details(y, y)
    assert details.classes == ["cat", 1]
    assert ev.classification_metrics(y, y)["accuracy"] == 1.0


def test_a_single_column_frame_counts_as_one_label_per_row():
    got = ev.classification_metrics(pd.DataFrame({"y": [0, 1, 1]}), np.array([[0], [1], [0]]))
    assert got["accuracy"] == pytest.approx(2 / 3)


def test_proba_rows_slightly_off_one_are_renormalised():
    proba = np.array([[0.3, 0.7001], [0.6, 0.4]])
    got = ev.classification_metrics([1, 0], [1, 0], proba)
    assert got["log_loss"] == pytest.approx(skm.log_loss([1, 0], proba / proba.sum(axis=1, keepdims=True)))


CLASSIFICATION_ERRORS = [
    (dict(y_true=[0, 1, 1, 0], y_pred=[0, 1, 1]), r"y_true has 4 values but y_pred has 3"),
    (
        dict(y_true=[0, 1, 1, 0], y_pred=[0, 1, 1, 0], proba=np.full((4, 3), 1 / 3)),
        r"proba has shape \(4, 3\) but expected \(4, 2\)",
    ),
    (dict(y_true=[0, 1], y_pred=[0, 1], proba=[[0.5, 0.9], [0.5, 0.5]]), r"row 0 sums to 1\.4"),
    (dict(y_true=[0, 1], y_pred=[0, 1], proba=[[-0.5, 1.5], [0.5, 0.5]]), r"probabilities in \[0, 1\]"),
    (dict(y_true=[0, 1], y_pred=[0, 1], proba=[["a", "b"], ["c", "d"]]), r"proba must be a numeric"),
    (dict(y_true=[0, 1], y_pred=[0, 1], proba=[[np.nan, 1.0], [0.5, 0.5]]), r"proba has missing"),
    (
        dict(y_true=["a", "b"], y_pred=["a", "z"], classes=["a", "b"]),
        r"y_pred has labels \['z'\] that are not in",
    ),
    (dict(y_true=["a", "b"], y_pred=["a", "b"], positive_class="c"), r"positive_class 'c' is not one of"),
    (
        dict(y_true=[0, 1, 2], y_pred=[0, 1, 2], positive_class=1),
        r"only used for binary problems, but there are 3",
    ),
    (dict(y_true=["a", None], y_pred=["a", "b"]), r"y_true has 1 missing labels \(first at position 1\)"),
    (dict(y_true=[], y_pred=[]), r"y_true is empty"),
    (dict(y_true=np.zeros((2, 2)), y_pred=[0, 1]), r"y_true must be one-dimensional .* shape \(2, 2\)"),
    (dict(y_true=[0, 1], y_pred=[0, 1], classes=[0, 1, 1]), r"classes has duplicates: \[1\]"),
    (dict(y_true=[0, 1], y_pred=None), r"y_pred is required"),
]


@pytest.mark.parametrize(("kwargs", "message"), CLASSIFICATION_ERRORS)
def test_classification_input_errors_name_the_culprit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ev.classification_metrics(**kwargs)


def test_inferred_classes_hint_at_passing_classes_when_proba_has_more_columns():
    with pytest.raises(ValueError, match=r"pass classes= in proba column order"):
        ev.classification_details([0, 1], [0, 1], np.full((2, 3), 1 / 3))


def test_details_tables_match_scikit_learn(multiclass):
    y, pred, proba = multiclass
    details = ev.classification_details(y, pred, proba)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred)
    assert details.per_class["class"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(
        details.per_class[["precision", "recall", "f1", "support"]], np.column_stack([p, r, f, s])
    )
    np.testing.assert_array_equal(details.confusion_matrix.to_numpy(), skm.confusion_matrix(y, pred))
    assert (
        details.confusion_matrix.index.name == "actual"
        and details.confusion_matrix.columns.name == "predicted"
    )
    assert details.class_balance["count"].tolist() == np.bincount(y).tolist()
    assert details.class_balance["share"].sum() == pytest.approx(1.0)
    assert details.positive_class is None and details.thresholds is None
    assert set(details.roc_curve["class"]) == {0, 1, 2} == set(details.calibration["class"])


def test_binary_curves_match_scikit_learn_on_small_data(binary):
    y, pred, proba = binary
    y, pred, proba = y[:60], pred[:60], proba[:60]
    details = ev.classification_details(y, pred, proba)
    fpr, tpr, thr = skm.roc_curve(y == "yes", proba[:, 1])
    roc = details.roc_curve
    assert set(roc["class"]) == {"yes"}
    np.testing.assert_allclose(roc[["fpr", "tpr"]], np.column_stack([fpr, tpr]))
    np.testing.assert_allclose(roc["threshold"], np.where(np.isfinite(thr), thr, np.nan))  # inf -> NaN
    precision, recall, thr = skm.precision_recall_curve(y == "yes", proba[:, 1], drop_intermediate=True)
    np.testing.assert_allclose(
        details.pr_curve[["recall", "precision"]], np.column_stack([recall, precision])
    )
    np.testing.assert_allclose(details.pr_curve["threshold"], np.append(thr, np.nan))
    prob_true, prob_pred = calibration_curve(y == "yes", proba[:, 1], n_bins=10)
    np.testing.assert_allclose(details.calibration["fraction_positive"], prob_true)
    np.testing.assert_allclose(details.calibration["mean_predicted"], prob_pred)
    assert details.calibration["count"].sum() == 60


def test_curves_are_thinned_to_a_small_number_of_points_keeping_the_ends():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.2 * y + 0.8 * rng.random(5000), 0, 1)
    details = ev.classification_details(y, (p > 0.5).astype(int), np.column_stack([1 - p, p]))
    assert len(details.roc_curve) <= 200 and len(details.pr_curve) <= 200
    assert details.roc_curve.iloc[[0, -1]][["fpr", "tpr"]].to_numpy().tolist() == [[0, 0], [1, 1]]
    assert len(details.thresholds.table) <= 200 + len(ev.THRESHOLD_METRICS)


def test_curves_skip_classes_without_both_outcomes_in_y_true():
    y, pred = np.array([0, 1, 0, 1]), np.array([0, 1, 1, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5]])
    details = ev.classification_details(y, pred, proba, classes=[0, 1, 2])
    assert set(details.roc_curve["class"]) == {0, 1} == set(details.pr_curve["class"])
    assert set(details.calibration["class"]) == {0, 1, 2}  # calibration needs no negatives
    one_class = ev.classification_details([1, 1], [1, 0], [[0.2, 0.8], [0.6, 0.4]], classes=[0, 1])
    assert one_class.roc_curve.empty and list(one_class.roc_curve.columns) == [
        "class",
        "fpr",
        "tpr",
        "threshold",
    ]
    assert one_class.thresholds is None


def test_details_without_proba_have_no_curves(binary):
    y, pred, _ = binary
    details = ev.classification_details(y, pred)
    assert details.roc_curve is None and details.pr_curve is None and details.calibration is None
    assert details.thresholds is None and details.positive_class == "yes"


@pytest.mark.parametrize(
    ("metric", "score_fn"),
    [
        ("f1", skm.f1_score),
        ("accuracy", skm.accuracy_score),
        ("balanced_accuracy", skm.balanced_accuracy_score),
        ("youden_j", lambda t, p: skm.recall_score(t, p) + skm.recall_score(t, p, pos_label=0) - 1),
    ],
)
def test_best_threshold_matches_a_brute_force_search(metric, score_fn):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    # ~100 distinct scores, thinned to 20 rows: the best rows must survive the thinning
    p = np.round(np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1), 2)
    proba = np.column_stack([1 - p, p])
    analysis = ev.classification_details(y, (p >= 0.5).astype(int), proba, max_curve_points=20).thresholds
    assert len(analysis.table) <= 20 + len(ev.THRESHOLD_METRICS)
    candidates = np.unique(p)
    scores = [score_fn(y, (p >= t).astype(int)) for t in candidates]
    best = analysis.best_threshold(metric)
    assert score_fn(y, (p >= best).astype(int)) == pytest.approx(max(scores))
    row = analysis.table.loc[analysis.table["threshold"] == best].iloc[0]
    assert row[metric] == pytest.approx(max(scores))
    assert analysis.positive_class == 1


def test_threshold_analysis_table_matches_scikit_learn_at_each_threshold():
    y = np.array(["b", "a", "b", "a", "b", "b"])
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    table = ev.threshold_analysis(y, scores, positive_class="b").table
    assert table["threshold"].tolist() == sorted(scores.tolist())
    for _, row in table.iterrows():
        pred = np.where(scores >= row["threshold"], "b", "a")
        assert row["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="b"))
        assert row["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="b"))
        assert row["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="b"))
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


THRESHOLD_ERRORS = [
    (
        lambda: ev.threshold_analysis([0, 1], [0.2, 0.3], positive_class=1, max_points=0),
        r"max_points must be a positive integer, got 0",
    ),
    (
        lambda: ev.classification_details([0, 1], [0, 1], max_curve_points=2.5),
        r"max_curve_points must be a positive integer, got 2.5",
    ),
    (lambda: ev.residual_analysis([1.0], [1.0], bins=0), r"bins must be a positive integer, got 0"),
    (
        lambda: ev.threshold_analysis([1, 1], [0.2, 0.3], positive_class=1),
        r"needs both classes .* has 2 of 2",
    ),
    (
        lambda: ev.threshold_analysis([0, 1], [0.2, 0.3], positive_class=1).best_threshold("auc"),
        r"metric must be one of .* got 'auc'",
    ),
]


@pytest.mark.parametrize(("call", "message"), THRESHOLD_ERRORS)
def test_threshold_and_curve_settings_errors_name_the_culprit(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------------------ regression


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(4)
    y = rng.gamma(2.0, 3.0, 500)
    return y, np.abs(y + rng.normal(0, 1.5, 500))


def test_regression_metrics_match_scikit_learn(regression):
    y, p = regression
    got = ev.regression_metrics(y, p, n_features=4)
    r2 = skm.r2_score(y, p)
    expected = {
        "mae": skm.mean_absolute_error(y, p),
        "mse": skm.mean_squared_error(y, p),
        "rmse": skm.root_mean_squared_error(y, p),
        "r2": r2,
        "adjusted_r2": 1 - (1 - r2) * (500 - 1) / (500 - 4 - 1),
        "mape": skm.mean_absolute_percentage_error(y, p),
        "median_absolute_error": skm.median_absolute_error(y, p),
        "max_error": skm.max_error(y, p),
        "explained_variance": skm.explained_variance_score(y, p),
        "d2_absolute_error": skm.d2_absolute_error_score(y, p),
        "mean_error": np.mean(p - y),
        "rmsle": skm.root_mean_squared_log_error(y, p),
        "residual_std": np.std(y - p, ddof=1),
        "residual_skew": stats.skew(y - p),
        "within_10pct": np.mean(np.abs(y - p) <= 0.1 * y),
    }
    assert {name: got[name] for name in expected} == pytest.approx(expected)
    assert len(got) >= 15


def test_regression_percentage_errors_on_a_hand_computed_example():
    got = ev.regression_metrics([1.0, 0.0, 4.0], [3.0, 0.0, 4.2])
    assert got["mape"] == pytest.approx((2 / 1 + 0.2 / 4) / 2)  # the zero target is ignored
    assert got["smape"] == pytest.approx((2 * 2 / 4 + 0 + 2 * 0.2 / 8.2) / 3)  # 0/0 counts as a perfect row
    assert got["within_10pct"] == pytest.approx(2 / 3)
    assert got["mean_error"] == pytest.approx(2.2 / 3)  # positive: over-prediction


def test_regression_metrics_undefined_on_the_data_are_omitted():
    assert "mape" not in ev.regression_metrics([0.0, 0.0, 0.0], [0.1, 0.0, 0.2])
    assert "rmsle" not in ev.regression_metrics([-1.0, 2.0, 3.0], [0.0, 2.0, 3.0])
    constant = ev.regression_metrics([5.0, 5.0, 5.0], [4.0, 5.0, 6.0], n_features=1)
    assert not {"r2", "adjusted_r2", "explained_variance"} & set(constant)
    assert "adjusted_r2" not in ev.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], n_features=2)
    single = ev.regression_metrics([1.0], [2.0])
    assert single["mae"] == 1.0 and "residual_std" not in single and "r2" not in single


REGRESSION_ERRORS = [
    (dict(y_true=[1.0, 2.0], y_pred=[1.0]), r"y_true has 2 values but y_pred has 1"),
    (
        dict(y_true=[1.0, 2.0], y_pred=[1.0, np.nan]),
        r"y_pred has 1 missing or infinite values \(first at position 1\)",
    ),
    (dict(y_true=["a", "b"], y_pred=[1.0, 2.0]), r"y_true must be numeric"),
    (dict(y_true=[1.0, 2.0], y_pred=[1.0, 2.0], n_features=-1), r"n_features must be a non-negative integer"),
]


@pytest.mark.parametrize(("kwargs", "message"), REGRESSION_ERRORS)
def test_regression_input_errors_name_the_culprit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ev.regression_metrics(**kwargs)


def test_regression_accepts_nullable_pandas_columns():
    got = ev.regression_metrics(pd.Series([1.0, 2.0], dtype="Float64"), pd.Series([1, 3], dtype="Int64"))
    assert got["mae"] == pytest.approx(0.5)


def test_residual_analysis_thins_points_deterministically_and_keeps_all_rows_in_the_histogram():
    rng = np.random.default_rng(5)
    y = rng.normal(size=5000)
    p = y + rng.normal(size=5000)
    first, again = ev.residual_analysis(y, p), ev.residual_analysis(y, p)
    assert len(first.points) == 2000 and first.n_samples == 5000
    pd.testing.assert_frame_equal(first.points, again.points)
    row = first.points.iloc[10]
    assert row["actual"] == y[int(row["row"])] and row["residual"] == pytest.approx(
        y[int(row["row"])] - p[int(row["row"])]
    )
    assert first.histogram["count"].sum() == 5000 and first.histogram["share"].sum() == pytest.approx(1.0)
    assert len(ev.residual_analysis([1.0, 2.0], [1.5, 2.5]).points) == 2


# ----------------------------------------------------------------------------------- conformal intervals


def test_conformal_quantile_is_the_finite_sample_corrected_order_statistic():
    residuals = np.arange(1.0, 20.0)  # 19 residuals: rank ceil(20 * 0.9) = 18
    model = ev.ConformalIntervals(alpha=0.1).fit(residuals, np.zeros(19))
    assert model.quantile_ == 18.0 and model.n_calibration_ == 19
    assert ev.ConformalIntervals(alpha=0.1).fit(np.arange(1.0, 10.0), np.zeros(9)).quantile_ == 9.0
    lower, upper = model.predict_interval([0.0, 10.0])
    np.testing.assert_allclose(lower, [-18.0, -8.0])
    np.testing.assert_allclose(upper, [18.0, 28.0])


def test_conformal_coverage_on_fresh_exchangeable_data_is_close_to_one_minus_alpha():
    rng = np.random.default_rng(6)

    def draw(n):
        x = rng.uniform(0, 10, n)
        return 3 * x + rng.standard_t(df=4, size=n), 3 * x  # truth with heavy-tailed noise, the prediction

    assert ev.ConformalIntervals(alpha=0.1).fit(*draw(2000)).coverage(*draw(20000)) == pytest.approx(
        0.9, abs=0.02
    )
    assert ev.ConformalIntervals(alpha=0.2).fit(*draw(2000)).coverage(*draw(20000)) == pytest.approx(
        0.8, abs=0.02
    )


def test_conformal_intervals_follow_the_scikit_learn_estimator_contract():
    with pytest.raises(NotFittedError):
        ev.ConformalIntervals().predict_interval([1.0])
    model = ev.ConformalIntervals(alpha=0.05)
    assert model.get_params() == {"alpha": 0.05}
    assert clone(model).alpha == 0.05 and not hasattr(clone(model), "quantile_")


CONFORMAL_ERRORS = [
    (
        lambda: ev.ConformalIntervals(alpha=1.5).fit([1.0] * 20, [1.0] * 20),
        r"alpha must be a number strictly between",
    ),
    (
        lambda: ev.ConformalIntervals(alpha=0.1).fit([1.0] * 8, [1.0] * 8),
        r"needs at least 9 out-of-fold residuals for a finite interval, got 8",
    ),
    (
        lambda: ev.ConformalIntervals().fit([1.0] * 20, [1.0] * 19),
        r"y_true_oof has 20 values but y_pred_oof has 19",
    ),
    (
        lambda: ev.ConformalIntervals().fit([1.0] * 20, [1.0] * 20).coverage([1.0], [1.0, 2.0]),
        r"y_true has 1 values",
    ),
]


@pytest.mark.parametrize(("call", "message"), CONFORMAL_ERRORS)
def test_conformal_errors_name_the_culprit(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------------------ clustering


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=300, centers=3, random_state=0)


def test_clustering_metrics_match_scikit_learn(blobs):
    X, labels = blobs
    got = ev.clustering_metrics(X, labels)
    assert got == pytest.approx(
        {
            "n_clusters": 3,
            "noise_share": 0.0,
            "silhouette": skm.silhouette_score(X, labels),
            "calinski_harabasz": skm.calinski_harabasz_score(X, labels),
            "davies_bouldin": skm.davies_bouldin_score(X, labels),
        }
    )


def test_clustering_noise_is_counted_and_left_out_of_the_scores(blobs):
    X, labels = blobs
    labels = labels.copy()
    labels[:30] = -1
    got = ev.clustering_metrics(X, labels)
    assert got["noise_share"] == pytest.approx(0.1) and got["n_clusters"] == 3
    assert got["silhouette"] == pytest.approx(skm.silhouette_score(X[30:], labels[30:]))


def test_clustering_silhouette_is_sampled_above_sample_size(blobs):
    X, labels = blobs
    got = ev.clustering_metrics(X, labels, sample_size=100, random_state=7)
    assert got["silhouette"] == pytest.approx(
        skm.silhouette_score(X, labels, sample_size=100, random_state=7)
    )


def test_clustering_with_one_cluster_omits_scores_that_need_two(blobs):
    X, _ = blobs
    assert ev.clustering_metrics(X, np.zeros(len(X), dtype=int)) == {"n_clusters": 1, "noise_share": 0.0}
    assert ev.clustering_metrics(X[:3], [-1, -1, -1]) == {"n_clusters": 0, "noise_share": 1.0}


def test_cluster_sizes_lists_largest_first_with_noise_kept():
    table = ev.cluster_sizes([2, 2, 0, -1, 2, 0, 1])
    assert table["cluster"].tolist() == [2, 0, -1, 1]
    assert table["size"].tolist() == [3, 2, 1, 1]
    assert table["share"].sum() == pytest.approx(1.0)
    mixed = ev.cluster_sizes(np.array(["b", 1, "b"], dtype=object))  # labels with no order still count
    assert mixed["cluster"].tolist() == ["b", 1] and mixed["size"].tolist() == [2, 1]


CLUSTERING_ERRORS = [
    (dict(X=[1.0, 2.0], labels=[0, 1]), r"X must be two-dimensional .* shape \(2,\)"),
    (dict(X=[["a"], ["b"]], labels=[0, 1]), r"X must be numeric"),
    (dict(X=[[1.0], [np.nan]], labels=[0, 1]), r"X has missing or infinite values"),
    (dict(X=[[1.0], [2.0]], labels=[0, 1, 1]), r"X has 2 values but labels has 3"),
    (dict(X=[[1.0], [2.0]], labels=[0, 1], sample_size=0), r"sample_size must be a positive integer"),
]


@pytest.mark.parametrize(("kwargs", "message"), CLUSTERING_ERRORS)
def test_clustering_input_errors_name_the_culprit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ev.clustering_metrics(**kwargs)


# ----------------------------------------------------------------------------------------- forecasting


def test_forecast_mase_is_scaled_by_the_in_sample_naive_forecast():
    y_train = [1.0, 2.0, 3.0, 4.0]
    got = ev.forecast_metrics([5.0, 6.0], [5.5, 6.5], y_train=y_train)
    assert got["mase"] == pytest.approx(0.5 / 1.0)
    assert ev.forecast_metrics([5.0, 6.0], [5.5, 6.5], y_train=y_train, season=2)["mase"] == pytest.approx(
        0.5 / 2.0
    )
    assert got["bias"] == pytest.approx(0.5)
    assert set(got) == {"mae", "rmse", "mape", "smape", "mase", "r2", "bias"}


def test_forecast_point_metrics_match_scikit_learn(regression):
    y, p = regression
    got = ev.forecast_metrics(y, p)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, p))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))
    assert "mase" not in got


def test_forecast_mase_is_omitted_when_the_naive_forecast_is_perfect():
    assert "mase" not in ev.forecast_metrics([1.0, 2.0], [1.0, 2.0], y_train=[3.0, 3.0, 3.0])


FORECAST_ERRORS = [
    (
        dict(y_true=[1.0], y_pred=[1.0], y_train=[1.0, 2.0], season=2),
        r"y_train needs more than season=2 values",
    ),
    (dict(y_true=[1.0], y_pred=[1.0], season=0), r"season must be a positive integer"),
    (dict(y_true=[1.0], y_pred=[1.0], y_train=[1.0, np.inf]), r"y_train has 1 missing or infinite"),
]


@pytest.mark.parametrize(("kwargs", "message"), FORECAST_ERRORS)
def test_forecast_input_errors_name_the_culprit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ev.forecast_metrics(**kwargs)


# ------------------------------------------------------------------------------------------ comparison


def test_ttest_with_identical_scores_finds_no_difference():
    result = ev.corrected_resampled_ttest([0.8, 0.82, 0.79], [0.8, 0.82, 0.79], n_train=800, n_test=200)
    assert result.p_value == 1.0 and not result.significant and result.t_statistic == 0.0
    assert result.mean_difference == 0.0
    assert "not significant" in result.summary


def test_ttest_with_a_constant_large_difference_is_significant():
    result = ev.corrected_resampled_ttest([0.9] * 5, [0.7] * 5, n_train=800, n_test=200)
    assert result.significant and result.p_value == 0.0 and result.t_statistic == math.inf
    assert result.mean_difference == pytest.approx(0.2)
    assert "model A scores 0.2 higher than model B" in result.summary


def test_ttest_matches_a_hand_computed_example():
    # d = [.01, .02, .03, .04, .05]: mean .03, var 2.5e-4, corrected by (1/5 + 20/80) -> 1.125e-4, t = 2*sqrt(2)
    result = ev.corrected_resampled_ttest(
        [0.81, 0.82, 0.83, 0.84, 0.85], [0.80] * 5, n_train=80, n_test=20, labels=("lightgbm", "ridge")
    )
    assert result.t_statistic == pytest.approx(2 * math.sqrt(2))
    assert result.p_value == pytest.approx(2 * stats.t.sf(2 * math.sqrt(2), df=4))
    half = stats.t.ppf(0.975, df=4) * math.sqrt(1.125e-4)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.03 - half, 0.03 + half))
    assert result.significant and result.summary.startswith("lightgbm scores 0.03 higher than ridge")


def test_ttest_correction_is_more_cautious_than_a_plain_paired_ttest():
    rng = np.random.default_rng(8)
    a = 0.80 + rng.normal(0, 0.01, 10)
    b = a - 0.008 + rng.normal(0, 0.01, 10)
    corrected = ev.corrected_resampled_ttest(a, b, n_train=900, n_test=100)
    assert corrected.p_value > stats.ttest_rel(a, b).pvalue


def test_bootstrap_with_identical_predictions_finds_no_difference(binary):
    y, pred, _ = binary
    result = ev.paired_bootstrap_test(y, pred, pred, skm.accuracy_score, n_boot=200)
    assert result.p_value == 1.0 and not result.significant and result.t_statistic is None
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)


def test_bootstrap_with_a_much_better_model_is_significant_and_reproducible(binary):
    y, pred, proba = binary
    worse = np.where(np.arange(len(y)) % 2 == 0, "no", "yes")
    result = ev.paired_bootstrap_test(y, y, worse, skm.accuracy_score, n_boot=200, random_state=3)
    assert result.significant and result.p_value < 0.05
    assert result.mean_difference == pytest.approx(1 - skm.accuracy_score(y, worse))
    assert result.ci_low <= result.mean_difference <= result.ci_high
    assert result == ev.paired_bootstrap_test(y, y, worse, skm.accuracy_score, n_boot=200, random_state=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 1.0  # type: ignore[misc]


@pytest.mark.filterwarnings("ignore:Only one class is present")
def test_bootstrap_takes_probability_matrices_and_skips_resamples_where_the_metric_is_undefined():
    y = np.array([0] * 18 + [1] * 2)
    p_good = np.column_stack([1 - y * 0.9, y * 0.9])
    p_flat = np.full((20, 2), 0.5)

    def auc(t, p):
        return skm.roc_auc_score(t, p[:, 1])  # raises ValueError when a resample has one class

    result = ev.paired_bootstrap_test(y, p_good, p_flat, auc, n_boot=100)
    assert result.mean_difference == pytest.approx(0.5)
    assert "resamples" in result.summary


def _only_in_order(y_true, y_pred):
    """A metric that is undefined unless the rows come sorted, so almost every resample fails."""
    if not np.array_equal(y_true, np.sort(y_true)):
        raise ValueError("rows out of order")
    return skm.accuracy_score(y_true, y_pred)


COMPARISON_ERRORS = [
    (
        lambda: ev.corrected_resampled_ttest([0.8], [0.7], 80, 20),
        r"need at least 2 paired fold scores, got 1",
    ),
    (
        lambda: ev.corrected_resampled_ttest([0.8, 0.7], [0.7], 80, 20),
        r"scores_a has 2 values but scores_b has 1",
    ),
    (
        lambda: ev.corrected_resampled_ttest([0.8, 0.7], [0.7, 0.6], 0, 20),
        r"n_train must be a positive integer",
    ),
    (
        lambda: ev.corrected_resampled_ttest([0.8, 0.7], [0.7, 0.6], 80, 20, alpha=0),
        r"alpha must be a number",
    ),
    (
        lambda: ev.paired_bootstrap_test([0, 1], [0, 1], [0, 1, 1], skm.accuracy_score),
        r"y_true has 2 values but pred_b has 3",
    ),
    (
        lambda: ev.paired_bootstrap_test([0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1], _only_in_order, n_boot=50),
        r"metric_fn failed on \d+ of 50 bootstrap resamples",
    ),
]


@pytest.mark.filterwarnings("ignore:Only one class is present")
@pytest.mark.parametrize(("call", "message"), COMPARISON_ERRORS)
def test_comparison_errors_name_the_culprit(call, message):
    with pytest.raises(ValueError, match=message):
        call()
