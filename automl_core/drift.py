"""Drift statistics: how far current data has moved from the data a model was trained on.

Kept apart from `evaluation` because drift is computed on the monitoring side, long after training and often
without the training data: `reference_profile` condenses the reference into a small JSON-serialisable dict
(stored once per model version) and `psi_from_profile` compares new data against it. `drift_report` uses the
same profile internally, so both paths give the same PSI for the same data.

PSI (population stability index) = sum over bins of (current - reference) * ln(current / reference), with
shares clipped at PSI_EPSILON so empty bins stay finite. Numeric columns use the reference's quantile bins;
categorical columns its top MAX_CATEGORIES categories plus one bucket for everything else ("other", which
also catches categories never seen in the reference). Missing values are a bucket of their own in both.
Levels follow the usual reading: < 0.1 "none", 0.1 to 0.25 "moderate", >= 0.25 "major".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "DriftTest",
    "chi_square_test",
    "drift_level",
    "drift_report",
    "ks_test",
    "population_stability_index",
    "psi_from_profile",
    "reference_profile",
]

PSI_EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
MAX_CATEGORIES = 50
PROFILE_VERSION = 1
KINDS = ("auto", "numeric", "categorical")


@dataclass(frozen=True)
class DriftTest:
    """A two-sample test of reference against current: statistic, p-value and which test ("ks" or "chi2")."""

    method: str
    statistic: float
    p_value: float


def drift_level(psi: float) -> str:
    """Name a PSI value: "none" below 0.1, "moderate" below 0.25, else "major"."""
    if psi < PSI_MODERATE:
        return "none"
    return "moderate" if psi < PSI_MAJOR else "major"


# ----------------------------------------------------------------------------------------- column kinds


def _series(name: str, values: Any) -> pd.Series:
    if not isinstance(values, pd.Series):
        if np.ndim(values) != 1:
            raise ValueError(
                f"{name} must be one-dimensional (one value per row), got shape {np.shape(values)}"
            )
        values = pd.Series(values)
    if len(values) == 0:
        raise ValueError(f"{name} is empty; need at least one value")
    return values.reset_index(drop=True)


def _kind_of(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        return "numeric"
    return "categorical"


def _as_numbers(series: pd.Series) -> np.ndarray:
    """Floats with NaN for missing; datetimes become seconds since 1970; unparsable text becomes missing."""
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return ((series - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(float)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _as_text(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Labels as strings (so profiles survive JSON) and the missing mask."""
    missing = series.isna().to_numpy()
    return series[~missing].astype(str), missing


# -------------------------------------------------------------------------------------------- profiles


def _profile_column(series: pd.Series, kind: str, bins: int, max_categories: int) -> dict[str, Any]:
    n = len(series)
    if kind == "numeric":
        values = _as_numbers(series)
        finite = values[np.isfinite(values)]
        edges = (
            np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if finite.size else np.array([])
        )
        shares, missing = _numeric_shares(values, edges)
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "shares": shares,
            "missing_share": missing,
            "count": n,
        }
    text, missing = _as_text(series)
    counts = text.value_counts()
    # Most frequent first, ties broken by label so the profile is the same on every run.
    order = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = order[:max_categories]
    return {
        "kind": "categorical",
        "categories": [label for label, _ in top],
        "shares": [float(count / n) for _, count in top],
        "other_share": float(sum(count for _, count in order[max_categories:]) / n),
        "missing_share": float(missing.mean()),
        "count": n,
    }


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> tuple[list[float], float]:
    nan = np.isnan(values)
    bin_ids = np.searchsorted(edges, values[~nan], side="right")
    counts = np.bincount(bin_ids, minlength=len(edges) + 1)
    return [float(c) for c in counts / len(values)], float(nan.mean())


def _current_shares(entry: dict[str, Any], series: pd.Series) -> np.ndarray:
    """Shares of `series` in the entry's buckets, in the order of `_reference_shares`."""
    if entry["kind"] == "numeric":
        shares, missing = _numeric_shares(_as_numbers(series), np.asarray(entry["edges"], dtype=float))
        return np.array([*shares, missing])
    text, missing = _as_text(series)
    known = pd.Index(entry["categories"])
    codes = known.get_indexer(text)  # -1: not among the reference's top categories -> "other"
    counts = np.bincount(codes + 1, minlength=len(known) + 1) / len(series)
    return np.array([*counts[1:], counts[0], missing.mean()])


def _reference_shares(entry: dict[str, Any]) -> np.ndarray:
    if entry["kind"] == "numeric":
        return np.array([*entry["shares"], entry["missing_share"]])
    return np.array([*entry["shares"], entry["other_share"], entry["missing_share"]])


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    ref, cur = np.clip(reference, PSI_EPSILON, None), np.clip(current, PSI_EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _check_settings(bins: int, max_categories: int) -> None:
    for name, value in (("bins", bins), ("max_categories", max_categories)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def reference_profile(
    df: pd.DataFrame, bins: int = 10, max_categories: int = MAX_CATEGORIES
) -> dict[str, Any]:
    """Condense a reference frame into a JSON-serialisable dict that `psi_from_profile` can compare against.

    Per column: numeric -> quantile bin edges (inner edges; the outer bins are open-ended) and the share of
    rows per bin; categorical -> the top `max_categories` labels (as strings) and their shares, plus
    other_share; both -> missing_share and count. Column names are stored as strings.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise ValueError("df has no rows; a reference profile needs data")
    _check_settings(bins, max_categories)
    columns = {
        str(name): _profile_column(df[name].reset_index(drop=True), _kind_of(df[name]), bins, max_categories)
        for name in df.columns
    }
    return {"version": PROFILE_VERSION, "n_rows": len(df), "bins": bins, "columns": columns}


def _psi_rows(profile: dict[str, Any], current_df: pd.DataFrame) -> list[dict[str, Any]]:
    if not isinstance(profile, dict) or not isinstance(profile.get("columns"), dict):
        raise ValueError("profile must be a dict made by reference_profile (it has no 'columns' mapping)")
    if profile.get("version") != PROFILE_VERSION:
        raise ValueError(
            f"profile has version {profile.get('version')!r}; this code reads version {PROFILE_VERSION}"
        )
    if not isinstance(current_df, pd.DataFrame):
        raise ValueError(f"current_df must be a pandas DataFrame, got {type(current_df).__name__}")
    if len(current_df) == 0:
        raise ValueError("current_df has no rows; drift needs data to compare")
    by_name = {str(name): name for name in current_df.columns}
    missing = [name for name in profile["columns"] if name not in by_name]
    if missing:
        raise ValueError(f"current_df lacks columns {missing} that the reference profile has")
    rows = []
    for name, entry in profile["columns"].items():
        series = current_df[by_name[name]].reset_index(drop=True)
        psi = _psi(_reference_shares(entry), _current_shares(entry, series))
        level = drift_level(psi)
        rows.append(
            {"column": name, "kind": entry["kind"], "psi": psi, "level": level, "drifted": level != "none"}
        )
    return rows


def psi_from_profile(profile: dict[str, Any], current_df: pd.DataFrame) -> pd.DataFrame:
    """PSI of each profiled column of `current_df` against a stored reference profile.

    One row per profiled column: column, kind, psi, level ("none"/"moderate"/"major"), drifted (level is
    not "none"). Extra columns in current_df are ignored; missing ones raise.
    """
    return pd.DataFrame(_psi_rows(profile, current_df), columns=["column", "kind", "psi", "level", "drifted"])


# --------------------------------------------------------------------------------------- single columns


def population_stability_index(
    reference: Any, current: Any, bins: int = 10, kind: str = "auto", max_categories: int = MAX_CATEGORIES
) -> float:
    """PSI of one column: 0 for identical distributions, >= 0.25 read as a major shift.

    kind "auto" treats numbers and datetimes as numeric and everything else (text, categories, booleans) as
    categorical, judged on the reference.
    """
    ref, cur = _series("reference", reference), _series("current", current)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    _check_settings(bins, max_categories)
    entry = _profile_column(ref, _kind_of(ref) if kind == "auto" else kind, bins, max_categories)
    return _psi(_reference_shares(entry), _current_shares(entry, cur))


def ks_test(reference: Any, current: Any) -> DriftTest:
    """Two-sample Kolmogorov-Smirnov test of a numeric column (missing values dropped)."""
    samples = []
    for name, values in (("reference", reference), ("current", current)):
        numbers = _as_numbers(_series(name, values))
        numbers = numbers[~np.isnan(numbers)]
        if numbers.size == 0:
            raise ValueError(f"{name} has no numeric values to test")
        samples.append(numbers)
    result = stats.ks_2samp(*samples)
    return DriftTest(method="ks", statistic=float(result.statistic), p_value=float(result.pvalue))


def chi_square_test(reference: Any, current: Any, max_categories: int = MAX_CATEGORIES) -> DriftTest:
    """Chi-square test of homogeneity of a categorical column, on the same buckets as its PSI."""
    ref, cur = _series("reference", reference), _series("current", current)
    _check_settings(1, max_categories)
    entry = _profile_column(ref, "categorical", 1, max_categories)
    table = np.vstack([_reference_shares(entry) * len(ref), _current_shares(entry, cur) * len(cur)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:  # one bucket only: the two samples cannot differ
        return DriftTest(method="chi2", statistic=0.0, p_value=1.0)
    result = stats.chi2_contingency(np.round(table), correction=False)
    return DriftTest(method="chi2", statistic=float(result.statistic), p_value=float(result.pvalue))


def drift_report(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    columns: Sequence[Any] | None = None,
    bins: int = 10,
) -> pd.DataFrame:
    """One row per column: column, kind, psi, level, drifted, test, ks_statistic, p_value.

    p_value comes from the KS test for numeric columns and the chi-square test for categorical ones (`test`
    says which); ks_statistic is NaN for categorical columns, and both are NaN when a side has no values.
    """
    for name, frame in (("reference_df", reference_df), ("current_df", current_df)):
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    columns = list(reference_df.columns) if columns is None else list(columns)
    for name, frame in (("reference_df", reference_df), ("current_df", current_df)):
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"{name} lacks columns {absent}")
    profile = reference_profile(reference_df[columns], bins=bins)
    rows = _psi_rows(profile, current_df[columns])
    for row, column in zip(rows, columns, strict=True):
        ref, cur = reference_df[column], current_df[column]
        if row["kind"] == "numeric":
            row["test"] = "ks"
            try:
                result = ks_test(ref, cur)
                row["ks_statistic"], row["p_value"] = result.statistic, result.p_value
            except ValueError:  # a side with no numeric values: nothing to test
                row["ks_statistic"] = row["p_value"] = np.nan
        else:
            row["test"] = "chi2"
            row["ks_statistic"] = np.nan
            row["p_value"] = chi_square_test(ref, cur).p_value
        row["column"] = column
    return pd.DataFrame(
        rows, columns=["column", "kind", "psi", "level", "drifted", "test", "ks_statistic", "p_value"]
    )
