"""Explanations: importance and Shapley contributions in the file's own columns, for every model shape."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from automl_core import explain
from automl_core.clustering import ClusterModel
from automl_core.ensemble import WeightedEnsemble
from automl_core.errors import SchemaError
from automl_core.explain import Explainer, feature_importance, local_surrogate, shap_summary
from automl_core.forecasting import TimeFeatures
from automl_core.models import FamilyModel
from automl_core.preprocess import TableCleaner, build_preprocessor, categorical_indices

SMALL = {family: {"n_estimators": 60} for family in ("lightgbm", "xgboost", "random_forest", "extra_trees")}
SMALL["hist_gb"] = {"max_iter": 60, "early_stopping": False}


def fit_pipeline(frame, target, families, task, weights=None):
    """A pipeline shaped like AutoML's: clean + prep + model, or clean + WeightedEnsemble of (prep + model)."""
    frame = frame[frame[target].notna()].reset_index(drop=True)
    cleaner = TableCleaner(exclude=[target]).fit(frame)
    X = cleaner.transform(frame)
    y = frame[target].to_numpy()
    y = y.astype(object) if task in ("binary", "multiclass") else y.astype(float)
    members = []
    for family in families:
        style = (
            "tree"
            if family in ("lightgbm", "xgboost", "random_forest", "extra_trees", "hist_gb")
            else "linear"
        )
        prep = build_preprocessor(cleaner.kinds_, X, style, task=task)
        Xt = np.asarray(prep.fit_transform(X, y), dtype=np.float64)
        params = SMALL.get(family, {})
        cats = tuple(categorical_indices(prep)) if style == "tree" else ()
        model = FamilyModel(family, params, task, categorical_features=cats, n_jobs=1).fit(Xt, y)
        members.append((family, Pipeline([("prep", prep), ("model", model)])))
    if len(members) == 1:
        return Pipeline([("clean", cleaner), *members[0][1].steps])
    ensemble = WeightedEnsemble(members, weights=weights, task=task).fit(X, y, fitted=True)
    return Pipeline([("clean", cleaner), ("model", ensemble)])


def member_pipelines(pipeline):
    """Each ensemble member as a full pipeline (with the shared cleaner)."""
    cleaner = pipeline.steps[0]
    return [Pipeline([cleaner, *member.steps]) for _, member in pipeline.named_steps["model"].estimators_]


def model_output(pipeline, rows, task, explanation):
    """The pipeline's own output for the class each row's explanation is about."""
    if task in ("binary", "multiclass"):
        proba = pipeline.predict_proba(rows)
        k = [list(pipeline.classes_).index(c) for c in explanation.explained_class]
        return proba[np.arange(len(rows)), k]
    return pipeline.predict(rows)


def assert_adds_up(explanation, expected):
    scale = max(1.0, float(np.abs(expected).max()))
    total = explanation.base_value + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(total, explanation.output, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(explanation.output, expected, rtol=0, atol=1e-4 * scale)


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """One column decides the target; the others are noise."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "planted": rng.normal(size=n),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.uniform(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    frame["amount"] = 3 * frame["planted"] + 0.1 * rng.normal(size=n)
    frame["label"] = np.where(frame["planted"] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def titanic_lgbm(titanic_frame):
    return fit_pipeline(titanic_frame, "survived", ["lightgbm"], "binary")


@pytest.fixture(scope="module")
def titanic_linear(titanic_frame):
    return fit_pipeline(titanic_frame, "survived", ["linear"], "binary")


@pytest.fixture(scope="module")
def titanic_ensemble(titanic_frame):
    return fit_pipeline(titanic_frame, "survived", ["lightgbm", "linear"], "binary", weights=[0.6, 0.4])


# --------------------------------------------------------------------------- feature importance
def test_importance_is_reported_in_the_files_own_columns_not_one_hot_pieces(titanic_linear, titanic_frame):
    table = feature_importance(
        titanic_linear, titanic_frame, "survived", task="binary", n_repeats=2, max_rows=300
    )
    assert list(table.columns) == ["column", "importance_model", "permutation_mean", "permutation_std"]
    assert set(table["column"]) == {"pclass", "sex", "age", "sibsp", "parch"}
    assert table["permutation_mean"].is_monotonic_decreasing
    assert table["importance_model"].sum() == pytest.approx(1.0)
    assert table.iloc[0]["column"] == "sex"


def test_permutation_importance_equals_shuffling_raw_columns_through_the_whole_pipeline(titanic_ensemble):
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score

    raw = pd.DataFrame(
        {
            "pclass": ["1st", "2nd", "3rd"] * 40,
            "sex": ["male", "female"] * 60,
            # numbers written as text, some missing
            "age": [f"{a:.1f}" if a % 7 else None for a in range(120)],
            "sibsp": np.arange(120) % 3,
            "parch": np.arange(120) % 2,
        }
    )
    y = np.where(np.arange(120) % 5 < 2, "survived", "died")
    table = feature_importance(titanic_ensemble, raw, y, task="binary", n_repeats=3, random_state=4)

    def auc(estimator, X, y_true):
        return roc_auc_score(y_true == "survived", estimator.predict_proba(X)[:, 1])

    direct = permutation_importance(titanic_ensemble, raw, y, scoring=auc, n_repeats=3, random_state=4)
    expected = pd.Series(direct.importances_mean, index=raw.columns)
    np.testing.assert_allclose(table.set_index("column")["permutation_mean"], expected[table["column"]])


def test_importance_of_the_deployed_model_names_titanic_columns(titanic_model, titanic_frame):
    table = feature_importance(
        titanic_model.best_estimator_, titanic_frame, "survived", task="binary", n_repeats=2, max_rows=300
    )
    assert set(table["column"]) == set(titanic_model.best_estimator_.named_steps["clean"].input_columns_)
    assert table["importance_model"].notna().all()


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "random_forest", "linear"])
def test_planted_feature_ranks_first_in_permutation_and_model_importance(planted, family):
    pipeline = fit_pipeline(planted.drop(columns="label"), "amount", [family], "regression")
    table = feature_importance(
        pipeline, planted, planted["amount"], task="regression", n_repeats=3, max_rows=300
    )
    assert table.iloc[0]["column"] == "planted"
    assert table.set_index("column")["importance_model"].idxmax() == "planted"


def test_ensemble_importance_is_the_weight_average_of_member_importances(titanic_ensemble, titanic_frame):
    table = feature_importance(
        titanic_ensemble, titanic_frame, "survived", task="binary", n_repeats=1, max_rows=200
    )
    members = [
        feature_importance(p, titanic_frame, "survived", task="binary", n_repeats=1, max_rows=50).set_index(
            "column"
        )
        for p in member_pipelines(titanic_ensemble)
    ]
    expected = 0.6 * members[0]["importance_model"] + 0.4 * members[1]["importance_model"]
    actual = table.set_index("column")["importance_model"]
    pd.testing.assert_series_equal(actual.sort_index(), expected.sort_index(), check_names=False)


def test_model_without_its_own_importance_reports_nan(titanic_frame):
    pipeline = fit_pipeline(titanic_frame, "survived", ["knn"], "binary")
    table = feature_importance(pipeline, titanic_frame, "survived", task="binary", n_repeats=1, max_rows=200)
    assert table["importance_model"].isna().all()
    assert table["permutation_mean"].notna().all()


def test_clustering_importance_measures_how_much_the_assignment_changes(planted):
    frame = planted[["planted", "noise_a", "colour"]].copy()
    frame["planted"] += np.where(frame["noise_a"].rank() % 2 == 0, -4.0, 4.0)  # two groups along this column
    cleaner = TableCleaner().fit(frame)
    X = cleaner.transform(frame)
    prep = build_preprocessor(cleaner.kinds_, X, "linear", task="clustering")
    Xt = prep.fit_transform(X)
    pipeline = Pipeline([("clean", cleaner), ("prep", prep), ("model", ClusterModel("kmeans", 2).fit(Xt))])
    table = feature_importance(pipeline, frame, task="clustering", n_repeats=2, max_rows=200)
    assert table["importance_model"].isna().all()
    assert table.iloc[0]["column"] == "planted"


# --------------------------------------------------------------------------- Shapley contributions
ADDITIVITY_CASES = [
    ("titanic", "lightgbm", "binary", "tree"),
    ("titanic", "xgboost", "binary", "tree"),
    ("titanic", "linear", "binary", "linear"),
    ("titanic", "lightgbm+linear", "binary", "exact"),
    ("titanic", "hist_gb", "binary", "exact"),  # shap misreads its categorical splits: it must not be used
    ("wine", "lightgbm", "multiclass", "tree"),
    ("wine", "random_forest", "multiclass", "tree"),
    ("wine", "linear", "multiclass", "linear"),
    ("wine", "lightgbm+linear", "multiclass", "permutation"),
    ("diabetes", "lightgbm", "regression", "tree"),
    ("diabetes", "xgboost", "regression", "tree"),
    ("diabetes", "extra_trees", "regression", "tree"),
    ("diabetes", "linear", "regression", "linear"),
    ("diabetes", "knn", "regression", "permutation"),
]
TARGETS = {"titanic": "survived", "wine": "cultivar", "diabetes": "progression"}


@pytest.mark.parametrize(("data", "families", "task", "method"), ADDITIVITY_CASES)
def test_contributions_add_up_to_the_model_output(request, data, families, task, method):
    frame = request.getfixturevalue(f"{data}_frame")
    pipeline = fit_pipeline(frame, TARGETS[data], families.split("+"), task, weights=[0.6, 0.4])
    rows = frame.iloc[[3, 1, 4, 1, 5, 9, 2, 6]]
    explanation = Explainer(pipeline, frame, task).explain(rows)
    assert explanation.method == method
    assert_adds_up(explanation, model_output(pipeline, rows, task, explanation))
    assert list(explanation.contributions.columns) == pipeline.named_steps["clean"].input_columns_
    assert explanation.contributions.index.equals(rows.index)
    assert explanation.space == ("prediction" if task == "regression" else "probability")


def test_one_hot_contributions_are_summed_back_to_the_original_column(titanic_linear, titanic_frame):
    prep = titanic_linear.named_steps["prep"]
    assert prep.transform(titanic_linear[0].transform(titanic_frame.head(2))).shape[1] > 5  # one-hot pieces
    explanation = Explainer(titanic_linear, titanic_frame, "binary").explain(titanic_frame.head(5))
    assert set(explanation.contributions.columns) == {"pclass", "sex", "age", "sibsp", "parch"}
    assert (explanation.contributions["sex"].abs() > 0).all()


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier")
def test_binary_tree_contributions_keep_the_sign_and_order_of_their_log_odds(titanic_lgbm, titanic_frame):
    import shap

    rows = titanic_frame.head(6)
    Xt = titanic_lgbm[:-1].transform(rows)
    log_odds = shap.TreeExplainer(titanic_lgbm.named_steps["model"].estimator_).shap_values(Xt)
    explanation = Explainer(titanic_lgbm, titanic_frame, "binary").explain(rows)
    probability = explanation.contributions.to_numpy()  # tree style: one transformed feature per column
    assert np.array_equal(np.sign(probability), np.sign(log_odds))
    assert np.array_equal(np.argsort(probability, axis=1), np.argsort(log_odds, axis=1))
    assert (explanation.explained_class == "survived").all()


@pytest.mark.parametrize("families", ["lightgbm", "random_forest", "lightgbm+linear"])
def test_multiclass_keeps_every_class_and_probability_moves_between_classes(wine_frame, families):
    pipeline = fit_pipeline(wine_frame, "cultivar", families.split("+"), "multiclass", weights=[0.5, 0.5])
    rows = wine_frame.head(4)
    explanation = Explainer(pipeline, wine_frame, "multiclass").explain(rows)
    proba = pipeline.predict_proba(rows)
    for k, label in enumerate(pipeline.classes_):
        total = explanation.class_base_values[label] + explanation.class_contributions[label].sum(axis=1)
        np.testing.assert_allclose(total, proba[:, k], atol=1e-6)
    moved = sum(explanation.class_contributions[label] for label in pipeline.classes_)
    np.testing.assert_allclose(moved.to_numpy(), 0.0, atol=1e-8)
    assert list(explanation.explained_class) == list(explanation.prediction)


def test_target_class_and_class_names_choose_what_is_explained(titanic_lgbm, titanic_frame):
    rows = titanic_frame.head(3)
    explainer = Explainer(titanic_lgbm, titanic_frame, "binary", classes=["no", "yes"], target_class="no")
    explanation = explainer.explain(rows)
    assert list(explanation.explained_class) == ["no"] * 3
    np.testing.assert_allclose(explanation.output, titanic_lgbm.predict_proba(rows)[:, 0])
    assert set(explanation.prediction) <= {"no", "yes"}


@pytest.mark.parametrize(
    ("data", "families", "task"),
    [("titanic", "linear+linear", "regression"), ("diabetes", "linear+linear", "regression")],
)
def test_model_agnostic_path_equals_the_exact_linear_values_of_its_members(request, data, families, task):
    """For an additive model every Shapley estimate is exact, so the ensemble's values must equal the
    weighted linear values of its members (one-hot pieces summed back) - exact and permutation paths alike."""
    frame = request.getfixturevalue(f"{data}_frame")
    target = {"titanic": "age", "diabetes": "progression"}[data]
    pipeline = fit_pipeline(frame, target, families.split("+"), task, weights=[0.7, 0.3])
    second = pipeline.named_steps["model"].estimators_[1][1]
    second.named_steps["model"].estimator_.coef_ *= -2  # make the members differ
    for _, member in pipeline.named_steps["model"].estimators_:
        member.named_steps["model"].target_floor_ = None  # no floor at zero: keep the members purely additive
    background = frame.iloc[:30]
    rows = frame.iloc[40:45]
    explanation = Explainer(pipeline, background, task).explain(rows)
    assert explanation.method == ("exact" if data == "titanic" else "permutation")
    members = [Explainer(p, background, task).explain(rows) for p in member_pipelines(pipeline)]
    assert {m.method for m in members} == {"linear"}
    expected = 0.7 * members[0].contributions + 0.3 * members[1].contributions
    np.testing.assert_allclose(explanation.contributions, expected, atol=1e-8)


def test_exact_path_equals_shapley_values_computed_on_raw_rows(titanic_ensemble, titanic_frame):
    background, row = titanic_frame.iloc[:12], titanic_frame.iloc[[20]]
    explanation = Explainer(titanic_ensemble, background, "binary").explain(row)
    columns = list(explanation.contributions.columns)
    m = len(columns)

    def value(kept):
        mixed = background.copy()
        for c in kept:
            mixed[c] = row[c].iloc[0]
        return titanic_ensemble.predict_proba(mixed)[:, 1].mean()

    brute = {}
    for c in columns:
        others = [o for o in columns if o != c]
        brute[c] = sum(
            math.factorial(len(s))
            * math.factorial(m - len(s) - 1)
            / math.factorial(m)
            * (value([*s, c]) - value(s))
            for size in range(m)
            for s in itertools.combinations(others, size)
        )
    np.testing.assert_allclose(
        explanation.contributions.iloc[0][columns], [brute[c] for c in columns], atol=1e-10
    )


def test_explanations_are_deterministic_and_safe_to_share_between_threads(wine_frame):
    pipeline = fit_pipeline(wine_frame, "cultivar", ["knn"], "multiclass")
    explainer = Explainer(pipeline, wine_frame, "multiclass", background_rows=10, max_evals=100)
    rows = wine_frame.head(3)
    first = explainer.explain(rows).contributions
    results = [None] * 4

    def run(i):
        results[i] = explainer.explain(rows).contributions

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        pd.testing.assert_frame_equal(result, first)


def test_the_deployed_session_model_is_explained_whatever_its_shape(titanic_model, titanic_frame):
    pipeline = titanic_model.best_estimator_
    rows = titanic_frame.sample(6, random_state=1)
    explanation = Explainer(pipeline, titanic_frame, "binary").explain(rows)
    assert_adds_up(explanation, pipeline.predict_proba(rows)[:, 1])
    assert list(explanation.contributions.columns) == pipeline.named_steps["clean"].input_columns_


def test_text_encoded_numbers_are_explained_in_the_raw_column(planted):
    raw = planted.drop(columns="label").copy()
    # "$1,234.50": numbers written as text, as read from a messy file
    raw["noise_a"] = raw["noise_a"].map(lambda v: f"${v * 1000:,.2f}")
    pipeline = fit_pipeline(raw, "amount", ["lightgbm"], "regression")
    explanation = Explainer(pipeline, raw, "regression").explain(raw.head(3))
    assert_adds_up(explanation, pipeline.predict(raw.head(3)))
    assert explanation.feature_values["noise_a"].dtype == np.float64


def test_a_forecast_is_explained_over_its_date_and_other_columns():
    rng = np.random.default_rng(1)
    dates = pd.date_range("2020-01-04", periods=150, freq="W-SAT")
    years = np.arange(150) / 52.18
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "promo": rng.integers(0, 2, 150).astype(float)})
    frame["sales"] = (
        100 + 5 * years + 3 * np.sin(2 * np.pi * years) + 4 * frame["promo"] + rng.normal(0, 0.2, 150)
    )
    cleaner = TableCleaner(exclude=["sales"]).fit(frame)
    X = cleaner.transform(frame)
    prep = TimeFeatures("date", ("promo",)).fit(X)
    model = FamilyModel("trend", {"degree": 1, "yearly_terms": 2}, "timeseries").fit(
        prep.transform(X), frame["sales"]
    )
    pipeline = Pipeline([("clean", cleaner), ("prep", prep), ("model", model)])
    rows = frame.iloc[[10, 80, 149]]
    explanation = Explainer(pipeline, frame, "timeseries").explain(rows)
    assert explanation.method == "exact"
    assert_adds_up(explanation, pipeline.predict(rows))
    promo = explanation.contributions["promo"]
    assert np.sign(promo.to_numpy()).tolist() == np.sign(rows["promo"] - frame["promo"].mean()).tolist()
    table = feature_importance(pipeline, frame, "sales", task="timeseries", n_repeats=2)
    assert set(table["column"]) == {"date", "promo"} and table["importance_model"].isna().all()


# --------------------------------------------------------------------------- summary
def test_shap_summary_gives_mean_absolute_values_and_a_long_table(titanic_lgbm, titanic_frame):
    summary = shap_summary(titanic_lgbm, titanic_frame, "binary", max_rows=100)
    assert summary.method == "tree" and summary.n_rows == 100
    assert set(summary.importance["column"]) == {"pclass", "sex", "age", "sibsp", "parch"}
    assert summary.importance["mean_abs_shap"].is_monotonic_decreasing
    assert list(summary.values.columns) == ["row", "column", "shap_value", "feature_value", "feature_scaled"]
    assert len(summary.values) == 100 * 5
    from_long = summary.values.groupby("column")["shap_value"].apply(lambda v: v.abs().mean())
    pd.testing.assert_series_equal(
        summary.importance.set_index("column")["mean_abs_shap"],
        from_long[summary.importance["column"]],
        check_names=False,
    )
    scaled = summary.values.set_index("column")["feature_scaled"]
    assert scaled.loc["sex"].isna().all()
    assert scaled.loc["age"].dropna().between(0, 1).all()
    # stored as a JSON document and read back, as every process after the first does
    from store.jsonfiles import dumps, loads

    back = summary.from_dict(loads(dumps(summary.to_dict())))
    pd.testing.assert_frame_equal(back.importance, summary.importance)
    np.testing.assert_allclose(back.values["shap_value"], summary.values["shap_value"])
    np.testing.assert_array_equal(back.values["feature_scaled"].isna(), scaled.isna().to_numpy())
    assert back.values["feature_value"].astype(str).tolist() == summary.values["feature_value"].astype(str).tolist()
    assert (back.method, back.space, back.n_rows) == (summary.method, summary.space, summary.n_rows)


def test_model_agnostic_summary_explains_a_capped_number_of_rows(
    titanic_ensemble, titanic_frame, monkeypatch
):
    monkeypatch.setattr(explain, "AGNOSTIC_SUMMARY_ROWS", 7)
    summary = shap_summary(titanic_ensemble, titanic_frame, "binary")
    assert summary.method == "exact" and summary.n_rows == 7
    assert len(summary.values) == 7 * 5


# --------------------------------------------------------------------------- local surrogate
@pytest.mark.parametrize(("target", "task"), [("amount", "regression"), ("label", "binary")])
def test_local_surrogate_ranks_the_planted_column_first(planted, target, task):
    frame = planted.drop(columns="label" if target == "amount" else "amount")
    pipeline = fit_pipeline(frame, target, ["lightgbm"], task)
    row = frame.iloc[[planted["planted"].abs().idxmax()]]
    table = local_surrogate(pipeline, row, frame, task, n_samples=300, random_state=3)
    assert list(table.columns) == ["column", "weight", "value", "surrogate_r2"]
    assert table.iloc[0]["column"] == "planted"
    assert 0 < table["surrogate_r2"].iloc[0] <= 1
    pd.testing.assert_frame_equal(
        table, local_surrogate(pipeline, row, frame, task, n_samples=300, random_state=3)
    )


def test_local_surrogate_explains_the_predicted_class_of_a_multiclass_row(wine_frame):
    pipeline = fit_pipeline(wine_frame, "cultivar", ["lightgbm"], "multiclass")
    row = wine_frame.iloc[[0]]
    table = local_surrogate(pipeline, row, wine_frame, "multiclass", n_samples=200)
    assert table.attrs["explained_class"] == pipeline.predict(row)[0]
    assert table.attrs["output"] == pytest.approx(pipeline.predict_proba(row).max())
    chosen = local_surrogate(pipeline, row, wine_frame, "multiclass", n_samples=200, target_class="class_2")
    assert chosen.attrs["explained_class"] == "class_2"


# --------------------------------------------------------------------------- errors
def _unfitted():
    return Pipeline([("clean", TableCleaner()), ("prep", "passthrough"), ("model", FamilyModel())])


def _half_fitted(frame):
    return Pipeline([("clean", TableCleaner().fit(frame)), ("model", FamilyModel())])


# fmt: off
ERROR_CASES = [
    ("unfitted pipeline", lambda p, f: Explainer(_unfitted(), f, "binary"), NotFittedError, "not fitted"),
    ("unfitted model", lambda p, f: feature_importance(_half_fitted(f), f, "survived", task="binary"), NotFittedError, "not fitted"),
    ("not a pipeline", lambda p, f: Explainer(p.named_steps["model"], f, "binary"), TypeError, "Pipeline"),
    ("no cleaner", lambda p, f: Explainer(p[1:], f, "binary"), TypeError, "TableCleaner"),
    ("unknown task", lambda p, f: Explainer(p, f, "ranking"), ValueError, "unknown task 'ranking'"),
    ("unknown task for importance", lambda p, f: feature_importance(p, f, "survived", task="forecast"), ValueError, "unknown task"),
    ("clustering", lambda p, f: Explainer(p, f, "clustering"), ValueError, "feature_importance"),
    ("classifier as regression", lambda p, f: Explainer(p, f, "regression"), ValueError, "does not fit a classifier"),
    ("missing column", lambda p, f: Explainer(p, f, "binary").explain(f.drop(columns="sex").head(2)), SchemaError, "missing required column: 'sex'"),
    ("missing column for importance", lambda p, f: feature_importance(p, f.drop(columns="age"), "survived", task="binary"), SchemaError, "'age'"),
    ("missing column for surrogate", lambda p, f: local_surrogate(p, f.head(1).drop(columns="pclass"), f, "binary"), SchemaError, "'pclass'"),
    ("no rows", lambda p, f: Explainer(p, f, "binary").explain(f.head(0)), ValueError, "no rows"),
    ("empty background", lambda p, f: Explainer(p, f.head(0), "binary"), ValueError, "background has no rows"),
    ("empty surrogate background", lambda p, f: local_surrogate(p, f.head(1), f.head(0), "binary"), ValueError, "background has no rows"),
    ("background not a frame", lambda p, f: Explainer(p, f.to_numpy(), "binary"), TypeError, "background must be a pandas DataFrame"),
    ("surrogate background not a frame", lambda p, f: local_surrogate(p, f.head(1), f.to_numpy(), "binary"), TypeError, "background must be"),
    ("background missing a column", lambda p, f: Explainer(p, f.drop(columns="age"), "binary"), SchemaError, "'age'"),
    ("surrogate background missing a column", lambda p, f: local_surrogate(p, f.head(1), f.drop(columns="sex"), "binary"), SchemaError, "'sex'"),
    ("bad background size", lambda p, f: Explainer(p, f, "binary", background_rows=0), ValueError, "background_rows"),
    ("wrong class names", lambda p, f: Explainer(p, f, "binary", classes=["a", "b", "c"]), ValueError, "3 names"),
    ("unknown class", lambda p, f: Explainer(p, f, "binary", target_class="maybe"), ValueError, "'maybe' is not one"),
    ("unknown surrogate class", lambda p, f: local_surrogate(p, f.head(1), f, "binary", target_class="x"), ValueError, "'x' is not one"),
    ("two rows", lambda p, f: local_surrogate(p, f.head(2), f, "binary"), ValueError, "exactly one row, got 2"),
    ("few samples", lambda p, f: local_surrogate(p, f.head(1), f, "binary", n_samples=3), ValueError, "n_samples"),
    ("no target", lambda p, f: feature_importance(p, f, task="binary"), ValueError, "needs the target"),
    ("unknown target", lambda p, f: feature_importance(p, f, "alive", task="binary"), ValueError, "'alive' is not in X"),
    ("short target", lambda p, f: feature_importance(p, f, f["survived"][:5], task="binary"), ValueError, "y has 5"),
    ("not a frame", lambda p, f: feature_importance(p, f.to_numpy(), "survived", task="binary"), TypeError, "DataFrame"),
    ("bad repeats", lambda p, f: feature_importance(p, f, "survived", task="binary", n_repeats=0), ValueError, "n_repeats"),
    ("bad summary size", lambda p, f: shap_summary(p, f, "binary", max_rows=0), ValueError, "max_rows"),
]
# fmt: on


@pytest.mark.parametrize(("case", "call", "error", "match"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_raises_a_clear_error(titanic_lgbm, titanic_frame, case, call, error, match):
    with pytest.raises(error, match=match):
        call(titanic_lgbm, titanic_frame)


def test_task_must_fit_the_pipeline(diabetes_frame, wine_frame):
    regressor = fit_pipeline(diabetes_frame, "progression", ["linear"], "regression")
    with pytest.raises(ValueError, match="needs a classifier"):
        Explainer(regressor, diabetes_frame, "binary")
    multiclass = fit_pipeline(wine_frame, "cultivar", ["linear"], "multiclass")
    with pytest.raises(ValueError, match="knows 3 classes"):
        Explainer(multiclass, wine_frame, "binary")
    with pytest.raises(ValueError, match="not to a regression task"):
        Explainer(regressor, diabetes_frame, "regression", target_class="high")
    assert Explainer(regressor, diabetes_frame, "regression", classes=[]).method == "linear"


# --------------------------------------------------------------------------- what-if
def test_what_if_moves_the_prediction_along_the_planted_column(planted):
    from automl_core.whatif import what_if

    frame = planted.drop(columns="label")
    pipeline = fit_pipeline(frame, "amount", ["linear"], "regression")
    schema = pipeline.named_steps["clean"].schema_
    row = frame.drop(columns="amount").iloc[[0]]
    curve = what_if(pipeline, {"task": "regression"}, row, "planted", schema["planted"])
    assert curve.label == "prediction" and len(curve.values) == 41
    assert curve.values[0] == pytest.approx(frame["planted"].min()) and curve.values[-1] == pytest.approx(
        frame["planted"].max()
    )
    assert np.all(np.diff(curve.output) > 0)  # amount = 3 x planted: the prediction rises with it
    slope = (curve.output[-1] - curve.output[0]) / (curve.values[-1] - curve.values[0])
    assert slope == pytest.approx(3, rel=0.05)
    # a noise column barely moves it
    flat = what_if(pipeline, {"task": "regression"}, row, "noise_a", schema["noise_a"])
    assert np.ptp(flat.output) < 0.1 * np.ptp(curve.output)
    assert list(curve.frame().columns) == ["value", "output"]


def test_what_if_follows_the_positive_class_and_sweeps_labels(planted):
    from automl_core.whatif import sweep_values, what_if

    frame = planted.drop(columns="amount")
    pipeline = fit_pipeline(frame, "label", ["linear"], "binary")
    schema = pipeline.named_steps["clean"].schema_
    meta = {"task": "binary", "classes": ["no", "yes"], "positive_class": "yes"}
    row = frame.drop(columns="label").iloc[[0]]
    curve = what_if(pipeline, meta, row, "planted", schema["planted"])
    assert curve.label == "probability of yes"
    assert curve.output[0] < 0.2 < 0.8 < curve.output[-1]
    colours = what_if(pipeline, meta, row, "colour", schema["colour"])
    assert sorted(colours.values) == ["blue", "green", "red"] and colours.kind == "categorical"
    assert what_if(pipeline, meta, row, "planted", schema["planted"], focus_class="no").label == "probability of no"
    assert sweep_values({"kind": "boolean"}) == [False, True]
    with pytest.raises(ValueError, match="kind 'text' cannot be swept"):
        sweep_values({"kind": "text"})
    with pytest.raises(ValueError, match="exactly one row"):
        what_if(pipeline, meta, frame.drop(columns="label").head(2), "planted", schema["planted"])
    with pytest.raises(ValueError, match="'missing' is not an input"):
        what_if(pipeline, meta, row, "missing", schema["planted"])
