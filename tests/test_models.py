"""Every model family fits and predicts for every task it declares; metrics agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from automl_core.models import FAMILIES, FamilyModel, families_for
from automl_core.samples import get_sample, list_samples
from automl_core.scoring import CLASSIFICATION_METRICS, REGRESSION_METRICS, check_metric, get_metric

RNG = np.random.default_rng(0)
X = RNG.normal(size=(160, 4))
Y_REG = X[:, 0] * 2 + RNG.normal(scale=0.1, size=160)
Y_BIN = np.where(X[:, 0] > 0, "yes", "no")
Y_MULTI = np.array(["a", "b", "c"])[np.digitize(X[:, 1], [-0.5, 0.5])]
SUPERVISED = [f for f in FAMILIES.values() if "regression" in f.tasks]


@pytest.mark.parametrize("family", SUPERVISED, ids=lambda f: f.name)
@pytest.mark.parametrize("task, y", [("regression", Y_REG), ("binary", Y_BIN), ("multiclass", Y_MULTI)])
def test_every_family_fits_and_predicts(family, task, y):
    params = dict(family.portfolio[0])
    if family.early_stopping:
        params["n_estimators"] = 30
    if family.name in ("random_forest", "extra_trees"):
        params["n_estimators"] = 20
    model = FamilyModel(family.name, params, task, n_jobs=1).fit(X[:120], y[:120])
    pred = model.predict(X[120:])
    assert len(pred) == 40
    if task == "regression":
        assert pred.dtype == float
    else:
        proba = model.predict_proba(X[120:])
        assert proba.shape == (40, len(set(y))) and np.allclose(proba.sum(axis=1), 1)
        assert set(pred) <= set(y) and set(model.classes_) == set(y)
    assert 0 <= model.score(X[120:], y[120:]) or task == "regression"


def test_a_target_never_negative_in_training_is_never_predicted_negative():
    amounts = np.exp(X[:120, 0] * 3)  # positive, heavy-tailed: a straight line dips below zero
    far = X[120:] * 4
    linear = FamilyModel("linear", {"alpha": 1e-3}, "regression").fit(X[:120], amounts)
    assert linear.predict(far).min() == 0.0 and linear.estimator_.predict(far).min() < 0
    signed = FamilyModel("linear", {"alpha": 1e-3}, "regression").fit(X[:120], amounts - 5)
    assert signed.predict(far).min() < 0  # a target that can be negative is left alone


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_boosted_families_stop_early_on_validation_data(family):
    model = FamilyModel(family, {"learning_rate": 0.3}, "binary").fit(X[:120], Y_BIN[:120], X[120:], Y_BIN[120:])
    assert model.best_iteration_ is not None and model.best_iteration_ < 3000


def test_a_deadline_cuts_boosting_and_forests():
    import time

    from automl_core.models import TrialTimeout

    for family, params in (("lightgbm", {"learning_rate": 0.001}), ("xgboost", {"learning_rate": 0.001}),
                           ("random_forest", {"n_estimators": 500})):
        with pytest.raises(TrialTimeout):
            FamilyModel(family, params, "regression").fit(
                X, Y_REG, X[:20], Y_REG[:20], deadline=time.monotonic() - 1
            )


def test_a_slow_solver_stops_at_its_deadline_and_otherwise_reaches_the_same_fit():
    import time

    from automl_core.models import TrialTimeout

    rng = np.random.default_rng(1)
    Xw = rng.normal(size=(1500, 30))
    yw = np.array([f"c{i}" for i in range(12)])[np.argmax(Xw[:, :12] + rng.normal(size=(1500, 12)), axis=1)]
    params = {"penalty": "l1", "C": 10.0}  # saga, many classes: hundreds of epochs
    with pytest.raises(TrialTimeout, match="solver iterations"):
        FamilyModel("linear", params, "multiclass").fit(Xw, yw, deadline=time.monotonic() - 1)
    chunked = FamilyModel("linear", {"penalty": "l2", "C": 1.0}, "multiclass").fit(
        Xw, yw, deadline=time.monotonic() + 60
    )
    whole = FamilyModel("linear", {"penalty": "l2", "C": 1.0}, "multiclass").fit(Xw, yw)
    assert np.allclose(chunked.predict_proba(Xw), whole.predict_proba(Xw), atol=1e-3)
    assert chunked.estimator_.max_iter == whole.estimator_.max_iter and not chunked.estimator_.warm_start
    # Only linear solvers are chunked: warm-starting boosting or a network would change what they learn.
    for family in ("hist_gb", "mlp"):
        timed = FamilyModel(family, {}, "multiclass").fit(Xw[:300], yw[:300], deadline=time.monotonic() + 60)
        plain = FamilyModel(family, {}, "multiclass").fit(Xw[:300], yw[:300])
        assert timed.estimator_.n_iter_ == plain.estimator_.n_iter_


def test_lightgbm_uses_categorical_positions():
    Xc = RNG.normal(size=(2000, 3))
    Xc[:, 0] = RNG.integers(0, 6, size=2000)
    y = np.where(Xc[:, 0] == 2, 5.0, 0.0)
    model = FamilyModel("lightgbm", {"n_estimators": 20, "min_child_samples": 2}, "regression",
                        categorical_features=(0,)).fit(Xc, y)
    assert model.estimator_.booster_.dump_model()["tree_info"][0]["tree_structure"]["decision_type"] == "=="


def test_family_choice_explains_what_it_skipped():
    chosen, skipped = families_for("binary", 500_000)
    names = {f.name for f in chosen}
    assert "svm" not in names and "too slow" in skipped["svm"]
    chosen, skipped = families_for("regression", 1000, include=["lightgbm"])
    assert {f.name for f in chosen} == {"lightgbm", "baseline"}
    assert skipped["xgboost"] == "not in the families you allowed"
    chosen, skipped = families_for("timeseries", 1000)
    assert {"trend", "seasonal_naive"} <= {f.name for f in chosen} and "svm" in skipped
    with pytest.raises(ValueError, match="unknown model families"):
        families_for("binary", 10, include=["catboost"])


def test_at_least_ten_supervised_families_with_spaces_and_portfolios():
    assert len(SUPERVISED) >= 10
    for family in SUPERVISED:
        assert family.portfolio and family.description and family.cost > 0


@pytest.mark.parametrize("name", list(CLASSIFICATION_METRICS))
def test_classification_metrics_agree_with_scikit_learn(name):
    y = np.array(["a", "b", "b", "a", "b", "a"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    labels = proba.argmax(axis=1)
    expected = {
        "roc_auc": skm.roc_auc_score(y == "b", proba[:, 1]),
        "log_loss": skm.log_loss(y, proba, labels=["a", "b"]),
        "accuracy": skm.accuracy_score(y, np.array(["a", "b"])[labels]),
        "balanced_accuracy": skm.balanced_accuracy_score(y, np.array(["a", "b"])[labels]),
        "f1": skm.f1_score(y, np.array(["a", "b"])[labels], pos_label="b"),
        "pr_auc": skm.average_precision_score(y == "b", proba[:, 1]),
    }[name]
    assert get_metric("binary", name)(y, proba, ("a", "b")) == pytest.approx(expected)


def test_multiclass_metrics_handle_absent_classes():
    y = np.array(["a", "b", "a", "b"])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.2, 0.6, 0.2]])
    classes = ("a", "b", "c")
    assert get_metric("multiclass", "roc_auc")(y, proba, classes) == pytest.approx(1.0)
    assert get_metric("multiclass", "f1")(y, proba, classes) == pytest.approx(1.0)
    assert get_metric("multiclass", "pr_auc")(y, proba, classes) > 0.5


@pytest.mark.parametrize("name", list(REGRESSION_METRICS))
def test_regression_metrics_agree_with_scikit_learn(name):
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.1, 1.9, 3.5, 3.0])
    expected = {
        "rmse": np.sqrt(skm.mean_squared_error(y, p)),
        "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p),
        "mape": skm.mean_absolute_percentage_error(y, p),
    }[name]
    metric = get_metric("regression", name)
    assert metric(y, p) == pytest.approx(expected)
    assert metric.signed(y, p) == pytest.approx(expected if metric.greater_is_better else -expected)


def test_metric_names_are_checked_per_task():
    assert check_metric("binary", "auto") == "roc_auc"
    assert check_metric("clustering", None) == "silhouette"
    with pytest.raises(ValueError, match="does not fit a regression"):
        check_metric("regression", "log_loss")


def test_bundled_samples_exist_and_are_described():
    samples = list_samples()
    assert {"loans_messy", "titanic", "co2", "penguins"} <= {s.name for s in samples}
    assert all(s.path.exists() and s.description for s in samples)
    assert get_sample("titanic").target == "survived"
    with pytest.raises(KeyError, match="no sample dataset"):
        get_sample("nope")
