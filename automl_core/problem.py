"""Working out the problem type from the data, with a one-line reason the user can override.

`detect_problem` looks at the target (and, for forecasting, at the dates) and returns a
`ProblemSpec`; `split_target` turns a profiled frame into features and labels, dropping and
counting the rows whose target is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError, TargetError
from .intake import TableProfile, check_target_name, typed_column
from .scoring import DEFAULT_METRIC, check_metric

TASKS = ("auto", "binary", "multiclass", "regression", "timeseries", "clustering")
SUPERVISED = ("binary", "multiclass", "regression", "timeseries")
_POSITIVE_WORDS = {"1", "1.0", "yes", "y", "true", "t", "positive", "pos", "default", "fraud", "churn"}
_MAX_CLASSES = 100


@dataclass(frozen=True)
class ProblemSpec:
    """The learning problem: task, target, metric and the reason for the choice."""

    task: str
    reason: str
    target: str | None
    metric: str
    classes: tuple = ()
    positive_class: object | None = None
    time_column: str | None = None
    overridden: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_classification(self) -> bool:
        return self.task in ("binary", "multiclass")

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "reason": self.reason,
            "target": self.target,
            "metric": self.metric,
            "classes": [_plain(c) for c in self.classes],
            "positive_class": _plain(self.positive_class),
            "time_column": self.time_column,
            "overridden": self.overridden,
            "notes": list(self.notes),
        }


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def target_values(frame: pd.DataFrame, target: str, profile: TableProfile, task: str | None = None) -> pd.Series:
    """The target column read by its profiled kind: numbers as floats, labels as clean text.

    For a classification `task`, whole numbers are integer labels (a CSV's 0/1 is read as 0.0/1.0,
    but the classes are 0 and 1, and they name the probability columns)."""
    spec = profile.specs[target]
    if spec.kind == "numeric":
        values = typed_column(frame[target], spec)
        return _integral_labels(values) if task in ("binary", "multiclass") else values
    if spec.kind == "boolean" and pd.api.types.is_numeric_dtype(frame[target]):
        return _integral_labels(frame[target])
    values = typed_column(frame[target], spec) if spec.kind != "boolean" else frame[target]
    if pd.api.types.is_numeric_dtype(values):
        return _integral_labels(values)
    from .parsing import clean_text

    text = clean_text(values)
    if spec.kind == "boolean":
        # "Yes", "yes" and "YES" are one class, named by its most frequent spelling.
        lowered = text.str.lower()
        spelling = text.groupby(lowered).agg(lambda v: v.value_counts().idxmax())
        text = lowered.map(spelling).where(text.notna())
    return text


def _label_text(value: object) -> str:
    """A label as a person wrote it: 1, not 1.0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _integral_labels(values: pd.Series) -> pd.Series:
    present = values.dropna()
    if len(present) and np.all(np.mod(present.to_numpy(dtype=float), 1) == 0):
        return values.astype("Int64").astype(object).where(values.notna(), None)
    return values


def _regular_time_column(frame: pd.DataFrame, profile: TableProfile, labelled: pd.Series) -> tuple[str, str] | None:
    """A datetime column with one row per time step at a regular interval, and its step's name."""
    for col in profile.columns:
        if col.kind != "datetime" or col.role != "feature":
            continue
        times = typed_column(frame[col.name], profile.specs[col.name])[labelled]
        present = times.dropna()
        if len(present) < 20 or present.nunique() != len(present):
            continue
        diffs = present.sort_values().diff().dropna()
        step = diffs.mode().iloc[0]
        if (diffs == step).mean() >= 0.8:
            return col.name, describe_step(step)
        calendar = _calendar_step(diffs)
        if calendar:
            return col.name, calendar
    return None


# Calendar steps whose length in days varies: months, quarters, half-years and (leap) years.
_CALENDAR_STEPS = (("monthly", 28, 31), ("quarterly", 89, 92), ("half-yearly", 181, 184), ("yearly", 365, 366))


def _calendar_step(diffs: pd.Series) -> str | None:
    days = diffs.dt.days
    for name, shortest, longest in _CALENDAR_STEPS:
        if ((days >= shortest) & (days <= longest)).mean() >= 0.9:
            return name
    return None


def describe_step(step: pd.Timedelta) -> str:
    days = step / pd.Timedelta(days=1)
    for name, length in (("yearly", 365), ("quarterly", 91.3), ("monthly", 30.5), ("weekly", 7), ("daily", 1)):
        if abs(days - length) / length < 0.1:
            return name
    if days < 1:
        return f"every {step}"
    return f"every {days:g} days"


def choose_positive_class(labels: pd.Series) -> object:
    """The class a person means by 'positive': yes/true/1 when present, else the rarer one."""
    counts = labels.value_counts()
    classes = sorted(counts.index, key=str)
    for cls in classes:
        if str(cls).strip().lower() in _POSITIVE_WORDS:
            return cls
    if counts.iloc[0] == counts.iloc[-1]:
        return classes[-1]
    return counts.idxmin()


def detect_problem(
    frame: pd.DataFrame,
    target: str | None,
    profile: TableProfile,
    *,
    task: str = "auto",
    metric: str | None = "auto",
    time_column: str | None = None,
) -> ProblemSpec:
    """Decide the task and the metric; an explicit `task` is checked against the data and kept."""
    if task not in TASKS:
        raise TargetError(f"task '{task}' is not one of {', '.join(TASKS)}")
    if target is None:
        if task not in ("auto", "clustering"):
            raise TargetError(f"task '{task}' needs a target column; without one only clustering is possible")
        return ProblemSpec(
            task="clustering",
            reason="no target column was given → clustering: rows are grouped by similarity",
            target=None,
            metric=check_metric("clustering", metric),
            overridden=task == "clustering",
        )
    check_target_name(frame, target, source=profile.source)
    if task == "clustering":
        return ProblemSpec(
            task="clustering",
            reason=f"clustering was requested; the column '{target}' is kept aside and not used",
            target=None,
            metric=check_metric("clustering", metric),
            overridden=True,
            notes=(f"'{target}' is ignored for clustering",),
        )
    y = target_values(frame, target, profile)
    labelled = y.notna()
    present = y[labelled]
    if present.empty:
        raise TargetError(f"target '{target}' has no values in {profile.source}")
    n_unique = present.nunique()
    if n_unique < 2:
        raise TargetError(
            f"target '{target}' has a single value ({present.iloc[0]!r}) in all {len(present)} labelled rows "
            f"of {profile.source}: there is nothing to predict"
        )
    numeric = pd.api.types.is_float_dtype(present) or profile.specs[target].kind == "numeric"
    detected, reason = _detect(present, n_unique, numeric, target)
    ts = None
    if time_column is not None:
        if time_column not in frame.columns:
            raise DataError(f"time column '{time_column}' is not in {profile.source}")
        spec = profile.specs.get(time_column)
        if spec is None or spec.kind != "datetime":
            kind = spec.kind if spec is not None else "unknown"
            raise DataError(
                f"time column '{time_column}' of {profile.source} was read as {kind}, not as dates "
                f"({spec.reason if spec is not None else 'no profile'}); a time column needs dates such as "
                "2024-01-31, or whole-number years in a column named like 'year'"
            )
        ts = (time_column, "given")
    elif detected == "regression" or task == "timeseries":
        ts = _regular_time_column(frame, profile, labelled)
    if task == "auto":
        if detected == "regression" and ts is not None:
            return _spec(
                "timeseries",
                f"target '{target}' is a number and rows are indexed by the {ts[1]} dates in '{ts[0]}' "
                "→ time-series forecasting",
                target,
                metric,
                present,
                time_column=ts[0],
            )
        return _spec(detected, reason, target, metric, present)
    return _override(task, detected, reason, target, metric, present, numeric, ts, profile)


def _detect(present: pd.Series, n_unique: int, numeric: bool, target: str) -> tuple[str, str]:
    shown = ", ".join(_label_text(v) for v in sorted(present.unique(), key=str)[:4])
    if n_unique == 2:
        return "binary", f"target '{target}' has 2 distinct values ({shown}) → binary classification"
    if numeric:
        values = present.to_numpy(dtype=float)
        integral = bool(np.all(np.mod(values, 1) == 0))
        if integral and n_unique <= 10 and len(present) >= 10 * n_unique:
            return (
                "multiclass",
                f"target '{target}' has {n_unique} whole-number values ({shown}, ...) → multiclass classification "
                "(choose regression if they are quantities)",
            )
        return "regression", f"target '{target}' is a number with {n_unique:,} distinct values → regression"
    if n_unique > _MAX_CLASSES and n_unique > 0.5 * len(present):
        raise TargetError(
            f"target '{target}' has {n_unique} distinct text values in {len(present)} rows: it looks like an "
            "identifier or free text, not something to predict"
        )
    return "multiclass", f"target '{target}' has {n_unique} distinct labels ({shown}, ...) → multiclass classification"


def _override(task, detected, reason, target, metric, present, numeric, ts, profile) -> ProblemSpec:
    n_unique = present.nunique()
    why = f"{task} was chosen by you (detected: {detected})"
    if task in ("regression", "timeseries") and not numeric:
        examples = ", ".join(map(repr, present.unique()[:3]))
        raise TargetError(f"target '{target}' holds text ({examples}); {task} needs numbers")
    if task == "binary" and n_unique != 2:
        raise TargetError(f"target '{target}' has {n_unique} distinct values; binary classification needs exactly 2")
    if task == "multiclass" and n_unique == 2:
        return _spec("binary", f"{why}; the target has 2 classes, so it is binary", target, metric, present, True)
    if task == "multiclass" and n_unique > 1000:
        raise TargetError(f"target '{target}' has {n_unique} distinct values; too many classes for classification")
    if task == "timeseries":
        if ts is None:
            raise DataError(
                f"time-series forecasting needs a date column with one row per time step; none was found in "
                f"{profile.source}. Name one with --time-column (time_column= in Python), or choose regression"
            )
        return _spec("timeseries", f"{why}; time index '{ts[0]}'", target, metric, present, True, ts[0])
    return _spec(task, why, target, metric, present, True)


def _spec(task, reason, target, metric, present, overridden=False, time_column=None) -> ProblemSpec:
    classes: tuple = ()
    positive = None
    if task in ("binary", "multiclass"):
        if pd.api.types.is_numeric_dtype(present):
            present = _integral_labels(present)  # 0.0 and 1.0 read from a CSV are the classes 0 and 1
        classes = tuple(sorted(present.unique(), key=lambda v: (str(type(v)), v)))
        if task == "binary":
            positive = choose_positive_class(present)
    return ProblemSpec(
        task=task,
        reason=reason,
        target=target,
        metric=check_metric(task, metric),
        classes=classes,
        positive_class=positive,
        time_column=time_column,
        overridden=overridden,
    )


def split_target(frame: pd.DataFrame, problem: ProblemSpec, profile: TableProfile) -> tuple[pd.DataFrame, pd.Series, int]:
    """Features and target with unlabelled rows dropped; returns (X, y, number of rows dropped)."""
    if problem.target is None:
        return frame, pd.Series(dtype=float), 0
    y = target_values(frame, problem.target, profile, problem.task)
    keep = y.notna().to_numpy()
    X = frame.loc[keep].drop(columns=[problem.target]).reset_index(drop=True)
    y = y[keep].reset_index(drop=True)
    if problem.task in ("regression", "timeseries"):
        y = y.astype("float64")
    elif pd.api.types.is_object_dtype(y) and all(isinstance(v, (int, np.integer)) for v in y.head(100)):
        y = y.astype("int64")
    else:
        y = y.astype(object) if not pd.api.types.is_string_dtype(y) else y.astype(str)
    y.name = problem.target
    if X.shape[1] == 0:
        raise DataError(
            f"{profile.source} has a single column ('{problem.target}'): a model needs at least one feature "
            "column besides the target. Check the delimiter if you expected more columns"
        )
    return X, y, int((~keep).sum())


def default_metric(task: str) -> str:
    return DEFAULT_METRIC[task]
