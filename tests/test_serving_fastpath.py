"""The single-row fast path gives the pipeline's own numbers, for every kind of model it compiles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer

from automl_core.ensemble import make_stacker
from automl_core.intake import read_table
from automl_core.models import FamilyModel
from automl_core.parsing import NumberRule, parse_numbers
from automl_core.serving import fastpath
from automl_core.serving.core import load_model
from automl_core.serving.fastpath import FastPath, Unsupported
from automl_core.serving.validation import InputSchema, _scalar_number
from tests.conftest import SPLITS
from tests.test_serving_support import ensemble_of, fit_pipeline, messy_csv, messy_frame, raw_rows

CHECKED_ROWS = 8
DROP = ("approved", "grade")


@pytest.fixture(scope="module")
def train():
    return messy_frame(400, seed=0)


@pytest.fixture(scope="module")
def test_csv():
    return messy_csv(40, seed=7)


@pytest.fixture(scope="module")
def models(train):
    """Pipelines of several kinds on the same messy data: trees, linear (one-hot, scaling, target encoding), ensembles."""
    reg = dict(frame=train.drop(columns=list(DROP)), target="rate", task="regression")
    binary = dict(frame=train.drop(columns=["rate", "grade"]), target="approved", task="binary")
    multi = dict(frame=train.drop(columns=["rate", "approved"]), target="grade", task="multiclass")
    out = {
        "lightgbm_regression": (fit_pipeline(family="lightgbm", **reg), "regression"),
        "linear_regression": (fit_pipeline(family="linear", **reg), "regression"),
        "lightgbm_binary": (fit_pipeline(family="lightgbm", **binary), "binary"),
        "linear_binary": (fit_pipeline(family="linear", **binary), "binary"),
        "xgboost_binary": (fit_pipeline(family="xgboost", **binary), "binary"),
        "forest_binary": (fit_pipeline(family="random_forest", **binary), "binary"),
        "lightgbm_multiclass": (fit_pipeline(family="lightgbm", **multi), "multiclass"),
        "knn_multiclass": (fit_pipeline(family="knn", **multi), "multiclass"),
    }
    weighted = ensemble_of(
        [out["lightgbm_binary"][0], out["linear_binary"][0]],
        binary["frame"],
        "approved",
        "binary",
        weights=[0.7, 0.3],
    )
    out["weighted_ensemble_binary"] = (weighted, "binary")
    stacked = ensemble_of(
        [out["lightgbm_regression"][0], out["linear_regression"][0]], reg["frame"], "rate", "regression"
    )
    members = stacked.named_steps["model"]
    clean = stacked.named_steps["clean"].transform(reg["frame"].drop(columns=["rate"]))
    stacker = make_stacker("regression").fit(
        np.column_stack(members._member_outputs(clean)), reg["frame"]["rate"]
    )
    members.stacker = stacker
    out["stacked_ensemble_regression"] = (stacked, "regression")
    return out


def _expected(pipeline, task, frame):
    if task in ("binary", "multiclass"):
        return np.asarray(pipeline.predict_proba(frame), dtype=float)
    return np.asarray(pipeline.predict(frame), dtype=float)


KINDS = [
    "lightgbm_regression",
    "linear_regression",
    "lightgbm_binary",
    "linear_binary",
    "xgboost_binary",
    "forest_binary",
    "lightgbm_multiclass",
    "knn_multiclass",
    "weighted_ensemble_binary",
    "stacked_ensemble_regression",
]


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_gives_exactly_the_pipelines_numbers_row_by_row(models, test_csv, kind):
    pipeline, task = models[kind]
    schema = InputSchema.from_pipeline(pipeline)
    fast = FastPath(pipeline, schema, task)
    frame = read_table(test_csv, name="test.csv")  # what `automl predict` would read
    rows = raw_rows(test_csv)  # what a client sends: every cell as written
    for i in range(CHECKED_ROWS):
        typed = schema.type_row(rows[i])
        got = fast.outputs(typed.values)
        want = _expected(pipeline, task, frame.iloc[[i]])
        np.testing.assert_array_equal(got, want, err_msg=f"{kind}, row {i}: {rows[i]}")
        prediction, _ = fast.predict(typed.values)
        if task in ("binary", "multiclass"):
            assert prediction == pipeline.classes_[np.argmax(want[0])]
        else:
            assert prediction == want[0]
    batch = _expected(pipeline, task, frame)
    every = (
        np.concatenate([np.atleast_2d(fast.outputs(schema.type_row(r).values)) for r in rows])
        if task in ("binary", "multiclass")
        else np.concatenate([fast.outputs(schema.type_row(r).values) for r in rows])
    )
    np.testing.assert_allclose(every, batch, rtol=1e-12, atol=1e-12)


def test_numbers_written_as_text_or_as_numbers_give_the_same_answer(models, test_csv):
    pipeline, task = models["lightgbm_regression"]
    schema = InputSchema.from_pipeline(pipeline)
    fast = FastPath(pipeline, schema, task)
    row = raw_rows(test_csv)[3]
    written = {
        **row,
        "Annual Income": "$52,000.00",
        "term": "36 months",
        "emp_length": "< 1 year",
        "amount": "12,000",
    }
    plain = {**row, "Annual Income": 52000, "term": 36, "emp_length": 0.5, "amount": 12000.0}
    padded = {
        **row,
        "Annual Income": "  $52,000.00 ",
        "term": "36 Months",
        "emp_length": "<1 year",
        "amount": "12000",
    }
    outputs = [fast.outputs(schema.type_row(r).values) for r in (written, plain, padded)]
    assert outputs[0] == outputs[1] == outputs[2]


def test_missing_values_unseen_labels_and_unseen_texts_match_the_pipeline(models, test_csv):
    for kind in ("lightgbm_binary", "linear_binary", "weighted_ensemble_binary"):
        pipeline, task = models[kind]
        schema = InputSchema.from_pipeline(pipeline)
        fast = FastPath(pipeline, schema, task)
        row = raw_rows(test_csv)[0]
        odd = {
            **row,
            "state": "ZZ",
            "branch": None,
            "emp_title": "astronaut on mars",
            "ratio": "",
            "issued": "n/a",
            "owns_home": None,
        }
        typed = schema.type_row(odd)
        assert any("'ZZ'" in w for w in typed.warnings)
        frame = fastpath.typed_frame(schema, [typed.values])
        np.testing.assert_array_equal(fast.outputs(typed.values), pipeline[1:].predict_proba(frame))


def test_an_unknown_step_is_refused_and_the_pipeline_answers_instead(models, train):
    pipeline, task = models["lightgbm_regression"]
    cleaner = pipeline.named_steps["clean"]
    numeric = [c for c, k in cleaner.kinds_.items() if k == "numeric"]
    prep = ColumnTransformer([("q", QuantileTransformer(n_quantiles=50), numeric)])
    frame = train.drop(columns=list(DROP))
    Xt = prep.fit_transform(cleaner.transform(frame.drop(columns=["rate"])))
    model = FamilyModel("lightgbm", {"n_estimators": 20}, task="regression", n_jobs=1).fit(
        Xt, frame["rate"].to_numpy()
    )
    odd = Pipeline([("clean", cleaner), ("prep", prep), ("model", model)])
    with pytest.raises(Unsupported, match="QuantileTransformer"):
        FastPath(odd, InputSchema.from_pipeline(odd), "regression")
    loaded = load_model(odd, "0" * 64, "regression")
    assert loaded.fast is None and "QuantileTransformer" in loaded.fast_reason
    row = frame.drop(columns=["rate"]).iloc[[5]]
    typed = loaded.schema.type_row({k: (None if pd.isna(v) else str(v)) for k, v in row.iloc[0].items()})
    prediction, proba = loaded.predict_typed_row(typed.values)
    assert proba is None and prediction == pytest.approx(odd.predict(row)[0], rel=1e-12)


def test_the_self_check_refuses_a_compiled_path_that_drifts_from_the_pipeline(models, monkeypatch):
    pipeline, task = models["linear_binary"]
    original = fastpath._NumericBlock.fill

    def off_by_a_bit(self, vector, values):
        original(self, vector, values)
        vector[self.positions] += 1e-3

    monkeypatch.setattr(fastpath._NumericBlock, "fill", off_by_a_bit)
    with pytest.raises(Unsupported, match="self-check"):
        FastPath(pipeline, InputSchema.from_pipeline(pipeline), task)


def test_a_pipeline_without_a_column_transformer_or_of_another_shape_is_refused(models):
    pipeline, task = models["lightgbm_binary"]
    schema = InputSchema.from_pipeline(pipeline)
    with pytest.raises(Unsupported, match="steps"):
        FastPath(Pipeline(pipeline.steps[:1] + pipeline.steps[2:]), schema, task)
    with pytest.raises(Unsupported, match="not a ColumnTransformer"):
        fastpath.VectorPlan(object(), schema)


def test_probe_rows_cover_missing_and_unseen_values(models):
    schema = InputSchema.from_pipeline(models["linear_binary"][0])
    rows = fastpath.probe_rows(schema)
    assert any(r["state"] is None for r in rows) and any(r["state"] == fastpath.UNSEEN_LABEL for r in rows)
    assert any(isinstance(r["ratio"], float) and math.isnan(r["ratio"]) for r in rows)


NUMBER_RULES = [
    NumberRule(thousands=""),
    NumberRule(decimal=".", thousands=",", currency=True),
    NumberRule(decimal=".", thousands="", unit="month"),
    NumberRule(decimal=".", thousands="", unit="year"),
    NumberRule(decimal=",", thousands="."),
    NumberRule(decimal=".", thousands=",", percent=True),
]
TEXTS = [
    "$1,234.50",
    "-$12.00",
    "($1,200.00)",
    "36 months",
    "60 Months",
    "< 1 year",
    "10+ years",
    "1 year",
    "3 kg",
    "1.234,5",
    "12,5",
    "45%",
    "~ 12",
    "abc",
    "",
    "12 months.",
    "1 2 3",
    "$",
    ".5",
    "5.",
    "−7",
    "≈ 3",
    "1'000",
    "12 years",
    "< 0.5 years",
    "1,2,3",
    "0",
    "(12)",
    "12.5.3",
    "€1.000,00",
    "1e5",
    "١٢",
    "12 ½",
]


@pytest.mark.parametrize("rule", NUMBER_RULES, ids=lambda r: r.describe())
def test_the_scalar_number_reader_reads_text_exactly_like_the_column_reader(rule):
    texts = list(TEXTS)
    loans = SPLITS / "loans_messy.train.csv"
    if loans.exists():
        frame = pd.read_csv(loans, dtype=str, keep_default_na=False)
        for column in ("Annual Income", "term", "emp_length", "Loan Amount", "total_credit_limit"):
            texts += frame[column].unique().tolist()[:400]
    texts = [t for t in texts if t.strip()]
    want = parse_numbers(pd.Series(texts, dtype=object), rule).to_numpy()
    got = np.array([_scalar_number(t.strip(), rule) for t in texts])
    mismatched = [
        (t, g, w)
        for t, g, w in zip(texts, got, want, strict=True)
        if not (g == w or (math.isnan(g) and math.isnan(w)))
    ]
    assert not mismatched


@pytest.mark.parametrize("kind", KINDS)
def test_the_compiled_batch_path_gives_exactly_the_pipelines_numbers(models, test_csv, kind):
    pipeline, task = models[kind]
    schema = InputSchema.from_pipeline(pipeline)
    fast = FastPath(pipeline, schema, task)
    typed = schema.type_frame(pd.DataFrame(raw_rows(test_csv), dtype=object))
    got = fast.outputs_batch(typed.columns, len(typed))
    want = _expected(pipeline, task, read_table(test_csv, name="test.csv"))
    np.testing.assert_array_equal(got, want)
    loaded = load_model(pipeline, "1" * 64, task)
    labels, proba = loaded.outputs_for_typed(typed)
    np.testing.assert_array_equal(labels, pipeline.predict(read_table(test_csv, name="test.csv")))


def test_large_batches_use_every_core_and_still_give_the_same_numbers(models):
    pipeline, task = models["lightgbm_binary"]
    schema = InputSchema.from_pipeline(pipeline)
    fast = FastPath(pipeline, schema, task)
    csv = messy_csv(fastpath._THREADED_ROWS + 100, seed=31)
    typed = schema.type_frame(pd.DataFrame(raw_rows(csv), dtype=object))
    np.testing.assert_array_equal(
        fast.outputs_batch(typed.columns, len(typed)), pipeline.predict_proba(read_table(csv, name="big.csv"))
    )
