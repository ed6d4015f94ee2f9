"""Forecasting: time features, trend + seasonality models, the seasonal naive baseline, end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML, read_table
from automl_core.forecasting import SeasonalNaive, TimeFeatures, TrendSeasonalRegressor
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def series():
    dates = pd.date_range("2000-01-01", periods=520, freq="W-SAT")
    t = np.arange(520) / 52.0
    y = 100 * np.exp(0.02 * t) + 5 * np.sin(2 * np.pi * t)
    return pd.DataFrame({"date": dates, "y": y, "extra": np.random.default_rng(0).normal(size=520)})


def test_time_features_have_a_fixed_layout(series):
    step = TimeFeatures("date", ("extra",)).fit(series)
    out = step.transform(series)
    assert out.shape == (520, 2 + 12 + 6 + 1)
    assert out[0, 0] == 0 and out[-1, 0] == pytest.approx(519 * 7 / 365.25)
    assert np.all(out[:, 14:20] == 0)  # weekly terms are zero for weekly data


@pytest.mark.parametrize("params", [
    {"yearly_terms": 2},
    {"yearly_terms": 3, "log_target": True},
    {"yearly_terms": 3, "half_life": 0.2},
    {"degree": 2, "yearly_terms": 1},
    {"yearly_terms": 2, "residual_trees": 30},
])
def test_trend_models_extrapolate_a_trend(series, params):
    step = TimeFeatures("date").fit(series.iloc[:400])
    model = TrendSeasonalRegressor(**params).fit(step.transform(series.iloc[:400]), series.y.iloc[:400])
    future = model.predict(step.transform(series.iloc[400:]))
    error = np.sqrt(np.mean((future - series.y.iloc[400:].to_numpy()) ** 2))
    assert error < 5.0  # a tree model that cannot extrapolate misses by far more


def test_seasonal_naive_repeats_last_year(series):
    step = TimeFeatures("date").fit(series.iloc[:400])
    model = SeasonalNaive().fit(step.transform(series.iloc[:400]), series.y.iloc[:400])
    pred = model.predict(step.transform(series.iloc[400:410]))
    assert np.allclose(pred, series.y.iloc[348:358].to_numpy(), atol=1.0)


def test_co2_is_forecast_end_to_end_with_time_ordered_validation():
    train = read_table(dataset_path("co2", "train"))
    model = AutoML(time_budget=6, random_state=0).fit(train, "co2")
    assert model.task_ == "timeseries" and model.problem_.time_column == "date"
    assert model.cv_plan_.kind == "time_series"
    test = read_table(dataset_path("co2", "test"))
    rmse = np.sqrt(np.mean((model.predict(test.drop(columns=["co2"])) - test.co2.to_numpy()) ** 2))
    assert rmse < 5.0  # tree models without a trend miss by about 10
