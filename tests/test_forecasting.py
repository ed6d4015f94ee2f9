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
    assert out.shape == (520, 2 + 12 + 6 + 8 + 1)
    assert out[0, 0] == 0 and out[-1, 0] == pytest.approx(519 * 7 / 365.25)
    assert np.all(out[:, 14:28] == 0)  # weekly and daily terms are zero for weekly data
    hourly = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=72, freq="h")})
    cycle = TimeFeatures("date").fit(hourly).transform(hourly)[:, 20:28]
    assert np.abs(cycle).max() > 0.9 and np.allclose(cycle[:24], cycle[24:48])  # one cycle per day


@pytest.mark.parametrize("params", [
    {"yearly_terms": 2},
    {"yearly_terms": 3, "log_target": True},
    {"yearly_terms": 3, "half_life": 0.2},
    {"degree": 2, "yearly_terms": 1},
    {"yearly_terms": 2, "residual_trees": 30},
    {"yearly_terms": 2, "weekly_terms": 2, "daily_terms": 3},  # zero columns for weekly data: harmless
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
    assert np.allclose(pred, series.y.iloc[348:358].to_numpy(), atol=1e-9)


@pytest.mark.parametrize("freq, periods, season_rows", [("h", 24 * 21, 24), ("D", 120, 7), ("MS", 60, 12)])
def test_seasonal_naive_takes_its_season_from_the_step(freq, periods, season_rows):
    frame = pd.DataFrame({"date": pd.date_range("2023-01-01", periods=periods, freq=freq)})
    y = np.random.default_rng(1).normal(size=periods)
    step = TimeFeatures("date").fit(frame)
    model = SeasonalNaive().fit(step.transform(frame.iloc[:-season_rows]), y[:-season_rows])
    # The held-out last season is forecast by the season before it, row for row.
    pred = model.predict(step.transform(frame.iloc[-season_rows:]))
    assert np.array_equal(pred, y[-2 * season_rows:-season_rows])


def test_last_value_and_short_histories_repeat_the_last_observation(series):
    step = TimeFeatures("date").fit(series)
    X, y = step.transform(series), series.y.to_numpy()
    assert np.all(SeasonalNaive(season="none").fit(X[:300], y[:300]).predict(X[300:310]) == y[299])
    assert np.all(SeasonalNaive().fit(X[:30], y[:30]).predict(X[30:40]) == y[29])  # under a year of weekly data
    with pytest.raises(ValueError, match="season must be"):
        SeasonalNaive(season="weekly").fit(X, y)


def test_co2_is_forecast_end_to_end_with_time_ordered_validation():
    train = read_table(dataset_path("co2", "train"))
    model = AutoML(time_budget=6, random_state=0).fit(train, "co2")
    assert model.task_ == "timeseries" and model.problem_.time_column == "date"
    assert model.cv_plan_.kind == "time_series"
    test = read_table(dataset_path("co2", "test"))
    rmse = np.sqrt(np.mean((model.predict(test.drop(columns=["co2"])) - test.co2.to_numpy()) ** 2))
    assert rmse < 5.0  # tree models without a trend miss by about 10


def test_quarterly_and_whole_number_year_series_are_forecast(tmp_path):
    rng = np.random.default_rng(0)
    years = np.arange(1950, 2016)
    yearly = pd.DataFrame({"year": years, "y": 50 + 1.5 * (years - 1950) + rng.normal(size=len(years))})
    path = tmp_path / "yearly.csv"
    yearly.to_csv(path, index=False)
    train = read_table(path)
    model = AutoML(time_budget=4, random_state=0).fit(train, "y")
    assert model.task_ == "timeseries" and model.problem_.time_column == "year"
    future = pd.DataFrame({"year": [2016, 2017, 2018]})  # read as plain integers at prediction time
    assert np.allclose(model.predict(future), 50 + 1.5 * np.array([66, 67, 68]), atol=6)

    quarters = pd.date_range("2001-03-31", periods=60, freq="QE")
    seasonal = 100 + np.arange(60) + 10 * np.tile([1, -1, 2, -2], 15) + rng.normal(size=60)
    frame = pd.DataFrame({"date": quarters.strftime("%m/%d/%Y"), "y": seasonal})
    model = AutoML(time_budget=4, random_state=0).fit(frame.iloc[:52], "y")
    assert model.task_ == "timeseries" and "quarterly" in model.problem_.reason
    error = np.abs(model.predict(frame.iloc[52:][["date"]]) - seasonal[52:]).mean()
    assert error < 4  # the seasonal swing alone is ±10
