"""Preprocessing: cleaner, styles, mapping back to columns, and no leakage across folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core import SchemaError
from automl_core.preprocess import (
    DatetimeFeatures,
    TableCleaner,
    TextFeatures,
    build_preprocessor,
    categorical_indices,
    original_column_of,
)
from automl_core.search import FoldCache
from automl_core.validation import make_cv_plan


@pytest.fixture()
def raw():
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "income": [f"${v:,.2f}" for v in rng.uniform(1000, 90000, n)],
            "city": rng.choice(["Paris", "Lyon", "Nice", None], n),
            "code": [f"C{i % 60}" for i in range(n)],
            "joined": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
            "note": rng.choice(["big red car", "small blue bike", "fast red bike", "old car"], n),
            "flag": rng.choice(["yes", "no"], n),
            "id": np.arange(n),
        }
    )


def test_cleaner_reads_raw_text_and_drops_identifiers(raw):
    cleaner = TableCleaner().fit(raw)
    assert "id" not in cleaner.input_columns_
    out = cleaner.transform(raw)
    assert out["income"].dtype == float and out["income"].between(1000, 90000).all()
    assert out["flag"].isin([0.0, 1.0]).all()
    assert str(out["joined"].dtype).startswith("datetime64")
    assert cleaner.schema_["income"]["min"] >= 1000 and cleaner.schema_["income"]["written_as_text"]
    assert set(cleaner.schema_["city"]["categories"]) == {"Paris", "Lyon", "Nice"}


def test_cleaner_names_missing_columns_and_ignores_extra_ones(raw):
    cleaner = TableCleaner().fit(raw)
    with pytest.raises(SchemaError, match="missing required columns: 'income', 'city'") as info:
        cleaner.transform(raw.drop(columns=["income", "city"]))
    assert {d["column"] for d in info.value.details} == {"income", "city"}
    out = cleaner.transform(raw.assign(extra=1))
    assert "extra" not in out.columns
    with pytest.raises(SchemaError, match="DataFrame"):
        cleaner.transform(raw.to_numpy())


def test_cleaner_refuses_a_table_with_no_usable_column():
    with pytest.raises(SchemaError, match="no usable feature"):
        TableCleaner().fit(pd.DataFrame({"id": np.arange(50), "const": ["x"] * 50}))


@pytest.mark.parametrize("style", ["tree", "linear"])
def test_each_style_produces_a_numeric_matrix(raw, style):
    cleaner = TableCleaner().fit(raw)
    X = cleaner.transform(raw)
    y = (X["income"] > 40000).astype(int)
    prep = build_preprocessor(cleaner.kinds_, X, style, task="binary")
    out = prep.fit_transform(X, y)
    assert out.shape[0] == len(raw)
    if style == "linear":
        assert not np.isnan(out).any()
    else:
        n_cat = sum(kind == "categorical" for kind in cleaner.kinds_.values())
        assert n_cat >= 1 and categorical_indices(prep) == list(range(n_cat))  # ordinal codes come first
    owners = original_column_of(prep)
    assert set(owners) <= set(cleaner.input_columns_)
    assert {"city", "income", "note", "joined"} <= set(owners)


def test_unknown_labels_are_handled_at_predict_time(raw):
    cleaner = TableCleaner().fit(raw)
    X = cleaner.transform(raw)
    prep = build_preprocessor(cleaner.kinds_, X, "linear", task="regression").fit(X, X["income"])
    new = raw.head(3).assign(city=["Berlin", "Oslo", None])
    assert prep.transform(cleaner.transform(new)).shape[0] == 3


def test_reading_warnings_say_what_a_batch_loses_and_clean_rows_get_none(raw):
    frame = raw.assign(size=np.linspace(1, 500, len(raw)))  # plain numbers in training
    cleaner = TableCleaner().fit(frame)
    assert cleaner.reading_warnings(frame) == ["not inputs of the model, ignored: 'id'"]  # an identifier
    new = frame.head(4).assign(
        size=["1,639.5", "12", "lots", None],  # a spreadsheet's thousands comma is read, 'lots' is not
        city=["Berlin", "Paris", None, "Nice"],
        joined=["2021-02-03", "soon", "2021-02-05", "2021-02-06"],
        extra="x",
    )
    assert cleaner.transform(new)["size"].tolist()[:2] == [1639.5, 12.0]
    warnings = cleaner.reading_warnings(new)
    assert any("column 'size': 1 of 4 values could not be read as numbers (for example 'lots')" in w for w in warnings)
    assert any("column 'joined': 1 of 4 values could not be read as dates (for example 'soon')" in w for w in warnings)
    assert any("column 'city': 1 rows hold labels not seen in training (for example 'Berlin')" in w for w in warnings)
    assert warnings[-1] == "not inputs of the model, ignored: 'id', 'extra'"


def test_datetime_parts_drop_what_never_varies():
    dates = pd.DataFrame({"d": pd.date_range("2021-01-01", periods=40, freq="D")})
    step = DatetimeFeatures().fit(dates)
    names = list(step.get_feature_names_out())
    assert "d__hour" not in names and "d__day" in names
    assert step.transform(dates).shape == (40, len(names))


def test_text_features_are_dense_and_named():
    texts = pd.Series(["red car", "blue car", "red bike", "blue bike", None] * 10, name="note")
    step = TextFeatures(n_components=3).fit(texts)
    out = step.transform(texts)
    assert out.shape == (50, 3) and np.isfinite(out).all()
    assert step.get_feature_names_out()[0] == "note__svd0"


def test_folds_fit_preprocessing_on_training_rows_only(raw):
    cleaner = TableCleaner().fit(raw)
    X = cleaner.transform(raw)
    y = np.asarray((X["income"] > 40000).astype(int))
    plan = make_cv_plan("binary", len(y), 60, y, cv=4)
    splits = plan.splits(y)
    seen = []

    def build(style, X_part):
        seen.append(set(X_part.index))
        return build_preprocessor(cleaner.kinds_, X_part, style, task="binary"), ()

    FoldCache(X, y, splits, build).get("linear")
    for (train, val), fitted_on in zip(splits, seen):
        assert fitted_on == set(train)
        assert not fitted_on & set(val)


def test_a_target_encoded_noise_column_does_not_leak_into_the_cv_score():
    from automl_core import AutoML

    rng = np.random.default_rng(1)
    n = 600
    frame = pd.DataFrame({"code": [f"k{i}" for i in rng.integers(0, 200, n)], "x": rng.normal(size=n)})
    frame["y"] = rng.choice(["a", "b"], n)
    model = AutoML(time_budget=5, include=["linear"], ensemble=False, cv=3).fit(frame, "y")
    assert model.best_score_ < 0.62
