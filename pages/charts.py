"""Altair charts of the dashboard, built from the tables and curve points `automl_core` computes.

Each function takes plain data (DataFrames or the records stored in a version's documents) and
returns a chart; nothing here computes a metric. `automl_core` never imports Altair.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

HEIGHT = 280
POSITIVE = "#2e7d32"
NEGATIVE = "#c62828"


def rows_height(rows: int, per_row: int = 26) -> int:
    """Height of a chart with one band per row; Streamlit's height includes axes and titles (about 90 px)."""
    return 90 + per_row * max(rows, 1)


def _frame(records) -> pd.DataFrame:
    return records if isinstance(records, pd.DataFrame) else pd.DataFrame(records or [])


# --------------------------------------------------------------------------- data profile
def histogram(values: pd.Series, title: str, *, kind: str = "numeric", bins: int = 40) -> alt.Chart:
    """Counted here, not in the browser: a million values would otherwise be sent to the page."""
    present = values.dropna()
    if kind == "datetime":
        months = pd.to_datetime(present).dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
        counts = months.value_counts().sort_index()
        frame = pd.DataFrame({"month": counts.index, "rows": counts.to_numpy()})
        return (
            alt.Chart(frame)
            .mark_bar()
            .encode(x=alt.X("yearmonth(month):T", title=title), y=alt.Y("rows:Q", title="rows"),
                    tooltip=[alt.Tooltip("yearmonth(month):T", title=title), "rows:Q"])
            .properties(height=HEIGHT)
        )
    numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    counts, edges = np.histogram(numbers, bins=bins) if numbers.size else (np.array([], int), np.array([0.0]))
    frame = pd.DataFrame({"start": edges[:-1], "end": edges[1:], "rows": counts})
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("start:Q", title=title, bin="binned"),
            x2="end:Q",
            y=alt.Y("rows:Q", title="rows"),
            tooltip=[alt.Tooltip("start:Q", title="from"), alt.Tooltip("end:Q", title="to"), "rows:Q"],
        )
        .properties(height=HEIGHT)
    )


def top_values(counts: dict, title: str) -> alt.Chart:
    frame = pd.DataFrame({"value": list(counts), "rows": list(counts.values())})
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("rows:Q", title="rows"),
            y=alt.Y("value:N", sort="-x", title=title),
            tooltip=["value", "rows"],
        )
        .properties(height=min(HEIGHT + 60, rows_height(len(frame), 24)))
    )


def missing_shares(profile_frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(profile_frame)
        .mark_bar()
        .encode(
            x=alt.X("missing %:Q", scale=alt.Scale(domain=[0, 100]), title="missing values (%)"),
            y=alt.Y("column:N", sort=None, title=None),
            color=alt.Color("role:N", title="role"),
            tooltip=["column", "kind", "role", "missing %", "reason"],
        )
        .properties(height=rows_height(len(profile_frame), 22))
    )


# --------------------------------------------------------------------------- leaderboard
def score_spread(folds: pd.DataFrame, metric: str, higher_better: bool) -> alt.Chart:
    """Per model: every fold's score (dots) and the mean with one standard deviation (bar and tick)."""
    order = folds.groupby("model")["score"].mean().sort_values(ascending=not higher_better).index.tolist()
    base = alt.Chart(folds).encode(y=alt.Y("model:N", sort=order, title=None))
    dots = base.mark_circle(size=40, opacity=0.5).encode(
        x=alt.X("score:Q", title=f"{metric} per fold", scale=alt.Scale(zero=False)),
        color=alt.Color("family:N", title="family"),
        tooltip=["model", "family", "fold", alt.Tooltip("score:Q", format=".4f")],
    )
    spread = base.mark_errorbar(extent="stdev", color="gray").encode(
        x=alt.X("score:Q", title=f"{metric} per fold", scale=alt.Scale(zero=False))
    )
    mean = base.mark_tick(color="black", thickness=2, size=14).encode(
        x=alt.X("mean(score):Q", title=f"{metric} per fold")
    )
    return (spread + dots + mean).properties(height=rows_height(len(order), 24))


def tradeoff(board: pd.DataFrame, metric: str) -> alt.Chart:
    """Score against prediction time per row (log scale), sized by artifact size: pick a deployable model."""
    frame = board.dropna(subset=["score"]).copy()
    frame["predict_ms_per_row"] = frame["predict_ms_per_row"].clip(lower=1e-5)
    frame["size_kb"] = frame["size_kb"].fillna(0.0)
    return (
        alt.Chart(frame)
        .mark_circle(opacity=0.75, stroke="black", strokeWidth=0.3)
        .encode(
            x=alt.X(
                "predict_ms_per_row:Q", scale=alt.Scale(type="log"), title="prediction time per row (ms, log)"
            ),
            y=alt.Y("score:Q", scale=alt.Scale(zero=False), title=metric),
            size=alt.Size("size_kb:Q", title="size (KB)", scale=alt.Scale(range=[40, 600])),
            color=alt.Color("family:N", title="family"),
            tooltip=[
                "model",
                "family",
                alt.Tooltip("score:Q", format=".4f"),
                alt.Tooltip("std:Q", format=".4f"),
                alt.Tooltip("predict_ms_per_row:Q", format=".4f", title="ms per row"),
                alt.Tooltip("size_kb:Q", format=".1f", title="KB"),
                alt.Tooltip("fit_time:Q", format=".3f", title="fit s per fold"),
            ],
        )
        .properties(height=HEIGHT)
    )


def ensemble_weights(members: list[str], weights: list[float]) -> alt.Chart:
    frame = pd.DataFrame({"model": members, "weight": weights})
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("weight:Q", title="weight in the ensemble"),
            y=alt.Y("model:N", sort="-x", title=None),
            tooltip=["model", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(height=rows_height(len(frame)))
    )


def fold_lines(folds: pd.DataFrame, metric: str) -> alt.Chart:
    """The compared models' scores fold by fold: paired differences are what the test looks at."""
    return (
        alt.Chart(folds)
        .mark_line(point=True)
        .encode(
            x=alt.X("fold:O", title="fold"),
            y=alt.Y("score:Q", scale=alt.Scale(zero=False), title=metric),
            color=alt.Color("model:N", title="model"),
            tooltip=["model", "fold", alt.Tooltip("score:Q", format=".4f")],
        )
        .properties(height=HEIGHT)
    )


# --------------------------------------------------------------------------- classification
def confusion_matrix(matrix: dict) -> alt.Chart:
    labels = [str(label) for label in matrix["labels"]]
    rows = [
        {"actual": labels[i], "predicted": labels[j], "rows": int(value)}
        for i, row in enumerate(matrix["values"])
        for j, value in enumerate(row)
    ]
    frame = pd.DataFrame(rows)
    frame["share of actual"] = frame["rows"] / frame.groupby("actual")["rows"].transform("sum").clip(lower=1)
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", sort=labels, title="predicted"),
        y=alt.Y("actual:N", sort=labels, title="actual"),
    )
    heat = base.mark_rect().encode(
        color=alt.Color("share of actual:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), legend=None),
        tooltip=["actual", "predicted", "rows", alt.Tooltip("share of actual:Q", format=".1%")],
    )
    text = base.mark_text(fontSize=13).encode(
        text="rows:Q",
        color=alt.condition(alt.datum["share of actual"] > 0.5, alt.value("white"), alt.value("black")),
    )
    size = max(220, 48 * len(labels))
    return (heat + text).properties(width=size, height=size)


def roc_curve(points) -> alt.Chart:
    frame = _frame(points)
    diagonal = (
        alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]}))
        .mark_line(strokeDash=[4, 4], color="gray")
        .encode(x="x:Q", y="y:Q")
    )
    curve = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("fpr:Q", title="false positive rate"),
            y=alt.Y("tpr:Q", title="true positive rate"),
            color=alt.Color("class:N", title="class"),
            tooltip=[
                "class",
                alt.Tooltip("fpr:Q", format=".3f"),
                alt.Tooltip("tpr:Q", format=".3f"),
                alt.Tooltip("threshold:Q", format=".3f"),
            ],
        )
    )
    return (diagonal + curve).properties(height=HEIGHT, title="ROC curve")


def pr_curve(points) -> alt.Chart:
    return (
        alt.Chart(_frame(points))
        .mark_line()
        .encode(
            x=alt.X("recall:Q", title="recall"),
            y=alt.Y("precision:Q", title="precision", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("class:N", title="class"),
            tooltip=[
                "class",
                alt.Tooltip("recall:Q", format=".3f"),
                alt.Tooltip("precision:Q", format=".3f"),
                alt.Tooltip("threshold:Q", format=".3f"),
            ],
        )
        .properties(height=HEIGHT, title="Precision–recall curve")
    )


def calibration(points) -> alt.Chart:
    diagonal = (
        alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]}))
        .mark_line(strokeDash=[4, 4], color="gray")
        .encode(x="x:Q", y="y:Q")
    )
    curve = (
        alt.Chart(_frame(points))
        .mark_line(point=True)
        .encode(
            x=alt.X("mean_predicted:Q", title="mean predicted probability", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("fraction_positive:Q", title="observed frequency", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("class:N", title="class"),
            tooltip=[
                "class",
                "count",
                alt.Tooltip("mean_predicted:Q", format=".3f"),
                alt.Tooltip("fraction_positive:Q", format=".3f"),
            ],
        )
    )
    return (diagonal + curve).properties(height=HEIGHT, title="Calibration")


def thresholds(
    table, best: float | None, metrics=("precision", "recall", "f1", "balanced_accuracy")
) -> alt.Chart:
    frame = _frame(table)
    present = [m for m in metrics if m in frame.columns]
    long = frame.melt(id_vars=["threshold"], value_vars=present, var_name="metric", value_name="value")
    lines = (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("threshold:Q", title="decision threshold on the positive class probability"),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("metric:N", title=None),
            tooltip=[
                "metric",
                alt.Tooltip("threshold:Q", format=".3f"),
                alt.Tooltip("value:Q", format=".3f"),
            ],
        )
    )
    if best is None:
        return lines.properties(height=HEIGHT)
    rule = alt.Chart(pd.DataFrame({"threshold": [best]})).mark_rule(strokeDash=[4, 4]).encode(x="threshold:Q")
    return (lines + rule).properties(height=HEIGHT)


def probabilities(proba: dict) -> alt.Chart:
    frame = pd.DataFrame({"class": [str(c) for c in proba], "probability": list(proba.values())})
    order = frame.sort_values("probability", ascending=False)["class"].tolist()
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
            y=alt.Y("class:N", sort=order, title=None),
            tooltip=["class", alt.Tooltip("probability:Q", format=".3f")],
        )
    )
    text = bars.mark_text(align="left", dx=3).encode(text=alt.Text("probability:Q", format=".1%"))
    return (bars + text).properties(height=rows_height(len(frame), 32))


# --------------------------------------------------------------------------- regression
def residuals(points) -> alt.Chart:
    frame = _frame(points)
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="gray", strokeDash=[4, 4]).encode(y="y:Q")
    dots = (
        alt.Chart(frame)
        .mark_circle(size=14, opacity=0.4)
        .encode(
            x=alt.X("prediction:Q", title="prediction", scale=alt.Scale(zero=False)),
            y=alt.Y("residual:Q", title="residual (actual − prediction)"),
            tooltip=[
                alt.Tooltip("actual:Q", format=".4g"),
                alt.Tooltip("prediction:Q", format=".4g"),
                alt.Tooltip("residual:Q", format=".4g"),
            ],
        )
    )
    return (zero + dots).properties(height=HEIGHT, title="Residuals against predictions")


def actual_vs_predicted(points, half_width: float | None = None) -> alt.Chart:
    frame = _frame(points)
    low, high = (
        float(frame[["actual", "prediction"]].min().min()),
        float(frame[["actual", "prediction"]].max().max()),
    )
    diagonal = pd.DataFrame({"prediction": [low, high], "actual": [low, high]})
    layers = []
    if half_width is not None:
        band = diagonal.assign(lower=diagonal["actual"] - half_width, upper=diagonal["actual"] + half_width)
        layers.append(
            alt.Chart(band)
            .mark_area(opacity=0.15, color="#1f77b4")
            .encode(x="prediction:Q", y="lower:Q", y2="upper:Q")
        )
    layers.append(
        alt.Chart(diagonal).mark_line(color="gray", strokeDash=[4, 4]).encode(x="prediction:Q", y="actual:Q")
    )
    layers.append(
        alt.Chart(frame)
        .mark_circle(size=14, opacity=0.4)
        .encode(
            x=alt.X("prediction:Q", title="prediction", scale=alt.Scale(zero=False)),
            y=alt.Y("actual:Q", title="actual", scale=alt.Scale(zero=False)),
        )
    )
    title = "Actual against predicted" + (" (band: prediction interval)" if half_width is not None else "")
    return alt.layer(*layers).properties(height=HEIGHT, title=title)


def residual_histogram(bins) -> alt.Chart:
    return (
        alt.Chart(_frame(bins))
        .mark_bar()
        .encode(
            x=alt.X("bin_left:Q", bin="binned", title="residual"),
            x2="bin_right:Q",
            y=alt.Y("count:Q", title="rows"),
            tooltip=[
                alt.Tooltip("bin_left:Q", format=".3g"),
                alt.Tooltip("bin_right:Q", format=".3g"),
                "count",
            ],
        )
        .properties(height=HEIGHT, title="Distribution of residuals")
    )


def cluster_sizes(clusters) -> alt.Chart:
    frame = _frame(clusters)
    x = "cluster" if "cluster" in frame.columns else frame.columns[0]
    y = "size" if "size" in frame.columns else ("count" if "count" in frame.columns else frame.columns[1])
    return alt.Chart(frame).mark_bar().encode(x=alt.X(f"{x}:N"), y=alt.Y(f"{y}:Q")).properties(height=HEIGHT)


# --------------------------------------------------------------------------- explanations
def importance(frame: pd.DataFrame, value: str, title: str, error: str | None = None) -> alt.Chart:
    axis = alt.Axis(labelLimit=220, labelOverlap=False)
    base = alt.Chart(frame).encode(
        y=alt.Y("column:N", sort=alt.SortField(value, order="descending"), title=None, axis=axis)
    )
    bars = base.mark_bar().encode(
        x=alt.X(f"{value}:Q", title=title), tooltip=["column", alt.Tooltip(f"{value}:Q", format=".4f")]
    )
    if error is None:
        return bars.properties(height=rows_height(len(frame), 24))
    frame = frame.assign(low=frame[value] - frame[error], high=frame[value] + frame[error])
    bars = alt.Chart(frame).encode(
        y=alt.Y("column:N", sort=alt.SortField(value, order="descending"), title=None, axis=axis)
    )
    return (
        bars.mark_bar().encode(
            x=alt.X(f"{value}:Q", title=title), tooltip=["column", alt.Tooltip(f"{value}:Q", format=".4f")]
        )
        + bars.mark_rule().encode(x="low:Q", x2="high:Q")
    ).properties(height=rows_height(len(frame), 24))


def beeswarm(values: pd.DataFrame, order: list[str], space: str) -> alt.Chart:
    """SHAP summary: one dot per (row, column), placed by contribution, coloured by the value's rank.

    Labels and text have no rank: their dots are grey.
    """
    frame = values.copy()
    frame["feature_value"] = frame["feature_value"].astype(str)
    frame["jitter"] = np.random.default_rng(0).random(len(frame))
    y = alt.Y("column:N", sort=order, title=None, axis=alt.Axis(labelLimit=220, labelOverlap=False))
    x = alt.X("shap_value:Q", title=f"contribution to the {space}")
    tooltip = ["column", "feature_value", alt.Tooltip("shap_value:Q", format=".4f")]
    ranked = (
        alt.Chart(frame[frame["feature_scaled"].notna()])
        .mark_circle(size=16, opacity=0.6)
        .encode(
            x=x,
            y=y,
            yOffset=alt.YOffset("jitter:Q"),
            color=alt.Color(
                "feature_scaled:Q",
                scale=alt.Scale(scheme="redblue", reverse=True, domain=[0, 1]),
                title="value (low → high)",
            ),
            tooltip=tooltip,
        )
    )
    labels = (
        alt.Chart(frame[frame["feature_scaled"].isna()].drop(columns=["feature_scaled"]))
        .mark_circle(size=16, opacity=0.5, color="gray")
        .encode(x=x, y=y, yOffset=alt.YOffset("jitter:Q"), tooltip=tooltip)
    )
    return (labels + ranked).properties(height=rows_height(len(order), 34))


def contributions(frame: pd.DataFrame, title: str) -> alt.Chart:
    """Per-column contributions of one row (`column`, `label`, `contribution`), largest first."""
    frame = frame.assign(direction=frame["contribution"].map(lambda v: "raises" if v >= 0 else "lowers"))
    order = frame.reindex(frame["contribution"].abs().sort_values(ascending=False).index)["label"].tolist()
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("contribution:Q", title=title),
            y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            color=alt.Color(
                "direction:N",
                scale=alt.Scale(domain=["raises", "lowers"], range=[POSITIVE, NEGATIVE]),
                legend=None,
            ),
            tooltip=["label", alt.Tooltip("contribution:Q", format=".4f")],
        )
        .properties(height=rows_height(len(frame), 28))
    )


def what_if(frame: pd.DataFrame, column: str, output: str, current, kind: str) -> alt.Chart:
    """The output as one input sweeps its training range: a line for numbers and dates, bars for labels."""
    y = alt.Y("output:Q", title=output, scale=alt.Scale(zero=False))
    if kind in ("numeric", "datetime"):
        x_type = "Q" if kind == "numeric" else "T"
        chart = (
            alt.Chart(frame)
            .mark_line(point=True)
            .encode(
                x=alt.X(f"value:{x_type}", title=column),
                y=y,
                tooltip=[alt.Tooltip(f"value:{x_type}"), alt.Tooltip("output:Q", format=".4g")],
            )
        )
        if current is not None:
            rule = (
                alt.Chart(pd.DataFrame({"value": [current]}))
                .mark_rule(strokeDash=[4, 4], color="black")
                .encode(x=f"value:{x_type}")
            )
            chart = chart + rule
        return chart.properties(height=HEIGHT)
    frame = frame.assign(value=frame["value"].astype(str))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("value:N", title=column, sort=None),
            y=y,
            tooltip=["value", alt.Tooltip("output:Q", format=".4g")],
        )
        .properties(height=HEIGHT)
    )


# --------------------------------------------------------------------------- monitoring
def _time_labels(buckets: pd.Series) -> pd.Series:
    times = pd.to_datetime(buckets)
    return times.dt.strftime("%H:%M" if times.dt.date.nunique() == 1 else "%m-%d %H:%M")


def traffic(frame: pd.DataFrame) -> alt.Chart:
    frame = frame.assign(time=_time_labels(frame["bucket"]))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("time:O", title=None, sort="ascending", axis=alt.Axis(labelAngle=0, labelOverlap=True)),
            y=alt.Y("sum(requests):Q", title="requests"),
            color=alt.Color("variant:N", title="variant"),
            tooltip=["time", "variant", "version", "requests"],
        )
        .properties(height=HEIGHT, title="Requests")
    )


def latency(frame: pd.DataFrame) -> alt.Chart:
    present = [c for c in ("latency_p50", "latency_p95", "latency_p99") if c in frame.columns]
    long = frame.melt(
        id_vars=["bucket", "variant"], value_vars=present, var_name="percentile", value_name="ms"
    )
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("ms:Q", title="latency (ms)"),
            color=alt.Color("percentile:N", title=None),
            strokeDash=alt.StrokeDash("variant:N", title="variant"),
            tooltip=["bucket:T", "variant", "percentile", alt.Tooltip("ms:Q", format=".2f")],
        )
        .properties(height=HEIGHT, title="Latency")
    )


def drift(frame: pd.DataFrame) -> alt.Chart:
    """PSI per feature and time bucket (averaged by rows when several versions served the bucket)."""
    frame = frame.assign(time=_time_labels(frame["bucket"]), psi=frame["psi"].astype(float))
    frame = frame.assign(weighted=frame["psi"] * frame["rows"])
    frame = frame.groupby(["time", "column"], as_index=False).agg(
        weighted=("weighted", "sum"), rows=("rows", "sum")
    )
    frame["psi"] = frame["weighted"] / frame["rows"].clip(lower=1)
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("time:O", title=None, sort="ascending", axis=alt.Axis(labelAngle=0, labelOverlap=True)),
            y=alt.Y("column:N", title=None, axis=alt.Axis(labelLimit=220)),
            color=alt.Color(
                "psi:Q", scale=alt.Scale(scheme="orangered", domain=[0, 0.5], clamp=True), title="PSI"
            ),
            tooltip=["time", "column", alt.Tooltip("psi:Q", format=".3f"), "rows"],
        )
        .properties(height=rows_height(frame["column"].nunique(), 28) + 30, title="Drift per feature (PSI)")
    )


def performance(frame: pd.DataFrame, value: str, title: str) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y(f"{value}:Q", title=title, scale=alt.Scale(zero=False)),
            color=alt.Color("variant:N", title="variant"),
            tooltip=["bucket:T", "variant", "version", alt.Tooltip(f"{value}:Q", format=".4f")]
            + (["labelled"] if "labelled" in frame.columns else []),
        )
        .properties(height=HEIGHT, title=title)
    )
