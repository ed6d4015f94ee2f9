"""Time-series forecasting as regression on time: trend, seasonality and what is left.

Trees cannot extrapolate a trend, and a forecast far ahead has no recent lags to lean on, so
the forecasting families model the series as a linear trend in time (on the log scale when the
series is positive, optionally weighted towards recent rows so it follows the latest slope) plus
yearly and weekly Fourier seasonality, optionally with gradient-boosted trees on what the trend
leaves unexplained. Polynomial trends are available but not searched by default: they fit the
past well and extrapolate badly. `TimeFeatures` turns the date
column into a fixed layout of columns that these estimators slice by position. Validation uses
expanding time-ordered windows, so the search prefers models that forecast well ahead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

YEARLY_TERMS = 6
WEEKLY_TERMS = 3
DAILY_TERMS = 4
# Layout of TimeFeatures output: t (years since the first date), t^2, yearly, weekly and daily sin/cos pairs,
# other features. Weekly terms are zero unless the step is under a week, daily ones unless it is under a day.
_T, _T2 = 0, 1
_YEARLY = slice(2, 2 + 2 * YEARLY_TERMS)
_WEEKLY = slice(_YEARLY.stop, _YEARLY.stop + 2 * WEEKLY_TERMS)
_DAILY = slice(_WEEKLY.stop, _WEEKLY.stop + 2 * DAILY_TERMS)
_OTHER_START = _DAILY.stop
_DAYS_PER_YEAR = 365.25


class TimeFeatures(TransformerMixin, BaseEstimator):
    """A date column to trend and seasonal columns, followed by the other (imputed) numeric features."""

    def __init__(self, time_column: str, other_columns: tuple = ()):
        self.time_column = time_column
        self.other_columns = other_columns

    def fit(self, X: pd.DataFrame, y=None):
        times = pd.to_datetime(X[self.time_column], errors="coerce")
        self.start_ = times.min()
        steps = times.sort_values().diff().dropna()
        self.step_days_ = float(steps.median() / pd.Timedelta(days=1)) if len(steps) else 1.0
        others = [c for c in self.other_columns if c in X.columns]
        self.others_ = others
        self.fill_ = {c: float(pd.to_numeric(X[c], errors="coerce").median()) for c in others}
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "start_")
        times = pd.to_datetime(X[self.time_column], errors="coerce")
        t = ((times - self.start_) / pd.Timedelta(days=_DAYS_PER_YEAR)).to_numpy(dtype=float)
        years = np.where(np.isnan(t), 0.0, t)
        columns = [years, years**2]
        for k in range(1, YEARLY_TERMS + 1):
            columns += [np.sin(2 * np.pi * k * years), np.cos(2 * np.pi * k * years)]
        weekly = self.step_days_ < 7
        days = years * _DAYS_PER_YEAR
        for k in range(1, WEEKLY_TERMS + 1):
            if weekly:
                columns += [np.sin(2 * np.pi * k * days / 7), np.cos(2 * np.pi * k * days / 7)]
            else:
                columns += [np.zeros_like(t), np.zeros_like(t)]
        daily = self.step_days_ < 0.99
        for k in range(1, DAILY_TERMS + 1):
            if daily:
                columns += [np.sin(2 * np.pi * k * days), np.cos(2 * np.pi * k * days)]
            else:
                columns += [np.zeros_like(t), np.zeros_like(t)]
        for c in self.others_:
            values = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float)
            columns.append(np.where(np.isnan(values), self.fill_[c], values))
        return np.column_stack(columns)


class TrendSeasonalRegressor(RegressorMixin, BaseEstimator):
    """Ridge on trend + Fourier seasonality (optionally on the log scale), plus optional boosted residuals."""

    def __init__(
        self,
        degree: int = 1,
        yearly_terms: int = 3,
        weekly_terms: int = 0,
        daily_terms: int | None = None,
        alpha: float = 1e-3,
        log_target: bool = False,
        residual_trees: int = 0,
        half_life: float | None = None,
        use_other: bool = True,
        random_state: int | None = 0,
    ):
        self.half_life = half_life
        self.degree = degree
        self.yearly_terms = yearly_terms
        self.weekly_terms = weekly_terms
        self.daily_terms = daily_terms
        self.alpha = alpha
        self.log_target = log_target
        self.residual_trees = residual_trees
        self.use_other = use_other
        self.random_state = random_state

    def _design(self, X: np.ndarray) -> np.ndarray:
        parts = [X[:, [_T]]]
        if self.degree >= 2:
            parts.append(X[:, [_T2]])
        parts.append(X[:, _YEARLY][:, : 2 * self.yearly_terms])
        parts.append(X[:, _WEEKLY][:, : 2 * self.weekly_terms])
        # One knob for the short cycles: the daily terms follow the weekly ones unless set.
        daily = self.weekly_terms if self.daily_terms is None else self.daily_terms
        parts.append(X[:, _DAILY][:, : 2 * min(daily, DAILY_TERMS)])
        if self.use_other and X.shape[1] > _OTHER_START:
            parts.append(X[:, _OTHER_START:])
        return np.hstack(parts)

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.log_ = bool(self.log_target and np.all(y > 0))
        target = np.log(y) if self.log_ else y
        design = self._design(X)
        self.mean_ = design.mean(axis=0)
        self.scale_ = design.std(axis=0) + 1e-12
        weights = None
        if self.half_life:
            # Recent rows weigh more, so the trend follows the latest slope (a local linear trend).
            t = X[:, _T]
            span = max(float(t.max() - t.min()), 1e-9)
            weights = 0.5 ** ((t.max() - t) / (self.half_life * span))
        self.linear_ = Ridge(alpha=self.alpha).fit((design - self.mean_) / self.scale_, target, sample_weight=weights)
        self.residual_model_ = None
        if self.residual_trees:
            import lightgbm as lgb

            residual = target - self.linear_.predict((design - self.mean_) / self.scale_)
            seasonal = X[:, _YEARLY.start :]
            self.residual_model_ = lgb.LGBMRegressor(
                n_estimators=self.residual_trees,
                learning_rate=0.05,
                num_leaves=15,
                min_child_samples=10,
                random_state=self.random_state,
                verbose=-1,
                n_jobs=1,
            ).fit(seasonal, residual)
        return self

    def predict(self, X):
        check_is_fitted(self, "linear_")
        X = np.asarray(X, dtype=float)
        out = self.linear_.predict((self._design(X) - self.mean_) / self.scale_)
        if self.residual_model_ is not None:
            out = out + self.residual_model_.predict(X[:, _YEARLY.start :])
        return np.exp(out) if self.log_ else out


class SeasonalNaive(RegressorMixin, BaseEstimator):
    """The forecast to beat: the value one season earlier, or the last value.

    `season="auto"` takes the season from the data's step: a day for sub-daily data, a week for
    daily data, a year for weekly, monthly or quarterly data. Without a full season of history,
    and for `season="none"` (the best forecast of a random walk), the last value is repeated.
    """

    def __init__(self, season: str = "auto"):
        self.season = season

    def fit(self, X, y):
        if self.season not in ("auto", "none"):
            raise ValueError(f"season must be 'auto' or 'none', not {self.season!r}")
        X = np.asarray(X, dtype=float)
        order = np.argsort(X[:, _T], kind="stable")
        self.t_ = X[order, _T]
        self.y_ = np.asarray(y, dtype=float)[order]
        steps = np.diff(self.t_) * _DAYS_PER_YEAR
        step_days = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 1.0
        self.season_years_ = self._season_years(step_days)
        if self.season_years_ and self.t_[-1] - self.t_[0] < self.season_years_ * 0.999:
            self.season_years_ = 0.0  # less than one season of history
        return self

    def _season_years(self, step_days: float) -> float:
        if self.season == "none" or step_days >= 300:
            return 0.0
        if step_days < 0.99:  # hourly or finer: a daily cycle
            return 1 / _DAYS_PER_YEAR
        if step_days < 6.5:  # daily or business days: a weekly cycle
            return 7 / _DAYS_PER_YEAR
        return 1.0

    def predict(self, X):
        check_is_fitted(self, "t_")
        t = np.asarray(X, dtype=float)[:, _T]
        if not self.season_years_:
            return np.full(len(t), self.y_[-1])
        period = self.season_years_
        # Seasons ahead of the last observation (at least one), then the nearest observed time.
        seasons_ahead = np.maximum(1, np.ceil((t - self.t_[-1]) / period - 1e-9))
        wanted = t - seasons_ahead * period
        idx = np.clip(np.searchsorted(self.t_, wanted), 1, len(self.t_) - 1)
        nearer_left = np.abs(self.t_[idx - 1] - wanted) <= np.abs(self.t_[idx] - wanted)
        return self.y_[np.where(nearer_left, idx - 1, idx)]


def build_trend(params: dict, task: str, ctx: dict):
    return TrendSeasonalRegressor(random_state=ctx["random_state"], **params)


def build_naive(params: dict, task: str, ctx: dict):
    return SeasonalNaive(season="auto")


def build_last_value(params: dict, task: str, ctx: dict):
    return SeasonalNaive(season="none")


def space_trend(trial, task: str, n_rows: int) -> dict:
    return {
        "half_life": trial.suggest_categorical("half_life", [None, 0.3, 0.15, 0.07]),
        "yearly_terms": trial.suggest_int("yearly_terms", 0, YEARLY_TERMS),
        "weekly_terms": trial.suggest_int("weekly_terms", 0, WEEKLY_TERMS),
        "alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True),
        "log_target": trial.suggest_categorical("log_target", [False, True]),
        "residual_trees": trial.suggest_categorical("residual_trees", [0, 100, 300]),
    }


def space_none(trial, task: str, n_rows: int) -> dict:
    return {}
