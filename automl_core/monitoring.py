"""Watching a model in production: traffic, drift per feature over time, accuracy per variant.

The prediction server logs every request (store.monitoring); actual outcomes are posted back
as feedback. This module turns those logs into tables: traffic and latency per time bucket,
the population stability index of each feature against the training data per bucket, accuracy
(or error) per variant over time, and a proposal to promote the challenger of an A/B test when it
is significantly better on labelled traffic.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from store.monitoring import bucket_seconds

from .drift import psi_from_profile, reference_profile

MIN_ROWS_FOR_DRIFT = 20
DRIFT_SAMPLE_ROWS = 2000
MAX_BUCKETS = 750  # a month of hours
BUCKET_LADDER = ("1min", "5min", "15min", "1h", "6h", "1d", "7d")
MIN_LABELS_FOR_PROPOSAL = 30
CLASSIFICATION = ("binary", "multiclass")


@dataclass
class MonitoringOverview:
    """Everything the monitoring page shows for one model name."""

    name: str
    task: str | None
    traffic: pd.DataFrame
    drift: pd.DataFrame
    drift_latest: pd.DataFrame
    performance: pd.DataFrame
    proposal: dict | None
    notes: list[str] = field(default_factory=list)
    bucket: str = "1h"  # the time bucket used (coarser than asked when the window is long)


def training_reference(pipeline, features: pd.DataFrame) -> dict:
    """The reference distribution of each input column (as the model reads it), for drift checks."""
    typed = pipeline.named_steps["clean"].transform(features)
    return reference_profile(typed)


def _bucket(ts: pd.Series, bucket: str) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.floor(pd.Timedelta(seconds=bucket_seconds(bucket)))


def _inputs_frame(values: pd.Series) -> pd.DataFrame:
    records = [json.loads(v) if isinstance(v, str) else (v or {}) for v in values]
    return pd.DataFrame.from_records(records)


def drift_over_time(
    store,
    name: str,
    *,
    bucket: str = "1h",
    version: str | None = None,
    since: float | None = None,
    until: float | None = None,
    sample_rows: int = DRIFT_SAMPLE_ROWS,
) -> pd.DataFrame:
    """PSI of every input column against its training reference, per time bucket (and version).

    Each bucket is measured on at most `sample_rows` of its requests (a stable sample, see
    `store.monitoring.inputs_per_bucket`); `rows` counts all of them. With 10 bins, PSI between two
    samples of the same distribution is about 9 / n, so 2,000 rows leave 0.005 of noise against
    the 0.1 that reads as a moderate shift, and months of logs fit in memory.
    """
    columns = ["bucket", "version", "column", "kind", "psi", "level", "rows"]
    seconds = bucket_seconds(bucket)
    sample = store.monitoring.inputs_per_bucket(
        name, bucket=seconds, version=version, since=since, until=until, per_bucket=sample_rows
    )
    sample = sample[sample["rows"] >= MIN_ROWS_FOR_DRIFT]
    out = []
    for ver, rows_of_version in sample.groupby("version", sort=True):
        ref = f"{name}@{ver}"
        try:
            reference = store.monitoring.reference(ref)
        except Exception:  # noqa: BLE001 - a deleted version's logs have nothing to compare against
            continue
        if not reference:
            continue
        cleaner = store.registry.load(ref).named_steps["clean"]
        raw = _inputs_frame(rows_of_version["inputs"]).reindex(columns=cleaner.input_columns_)
        try:
            typed = cleaner.transform(raw)
        except Exception:  # noqa: BLE001 - malformed logged rows are skipped, not fatal for a report
            continue
        typed.index = rows_of_version.index
        for when, group in rows_of_version.groupby("bucket", sort=True):
            table = psi_from_profile(reference, typed.loc[group.index])
            for row in table.to_dict(orient="records"):
                out.append({"bucket": when, "version": ver, "column": row["column"], "kind": row["kind"],
                            "psi": row["psi"], "level": row["level"], "rows": int(group["rows"].iloc[0])})
    frame = pd.DataFrame(out, columns=columns)
    return frame.sort_values(["bucket", "version"], kind="stable").reset_index(drop=True)


def _same_label(predicted, actual) -> bool:
    """Labels match as text, or as numbers when both are numbers (feedback may send 1.0 for class 1)."""
    if str(predicted) == str(actual):
        return True
    try:
        return float(predicted) == float(actual)
    except (TypeError, ValueError):
        return False


def _hits(labelled: pd.DataFrame) -> np.ndarray:
    return np.array([_same_label(p, a) for p, a in zip(labelled["prediction"], labelled["actual"])], dtype=float)


def _performance_rows(labelled: pd.DataFrame, task: str, bucket: str) -> pd.DataFrame:
    columns = ["bucket", "variant", "version", "labelled", "metric", "value"]
    if labelled.empty:
        return pd.DataFrame(columns=columns)
    frame = labelled.copy()
    frame["bucket"] = _bucket(frame["ts"], bucket)
    rows = []
    for (when, variant, ver), group in frame.groupby(["bucket", "variant", "version"]):
        if task in CLASSIFICATION:
            value = float(np.mean(_hits(group)))
            metric = "accuracy"
        else:
            err = pd.to_numeric(group["prediction"], errors="coerce") - pd.to_numeric(group["actual"], errors="coerce")
            value = float(np.sqrt(np.nanmean(err.to_numpy(dtype=float) ** 2)))
            metric = "rmse"
        rows.append({"bucket": when, "variant": variant, "version": ver, "labelled": len(group),
                     "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=columns)


def promotion_proposal(store, name: str, labelled: pd.DataFrame, task: str | None) -> dict | None:
    """Whether the challenger of an A/B (or shadow) test is significantly better on labelled traffic."""
    from scipy import stats

    deployment = store.registry.deployment(name)
    if deployment is None or deployment.challenger is None or labelled.empty or task is None:
        return None
    champion = store.registry.get(deployment.champion).version
    challenger = store.registry.get(deployment.challenger)
    a = labelled[labelled["version"] == champion]
    b = labelled[labelled["version"] == challenger.version]
    base = {"champion": f"{name}@{champion}", "challenger": challenger.ref, "champion_labelled": len(a),
            "challenger_labelled": len(b), "promote": False, "p_value": None}
    if min(len(a), len(b)) < MIN_LABELS_FOR_PROPOSAL:
        need = MIN_LABELS_FOR_PROPOSAL - min(len(a), len(b))
        return {**base, "message": f"not enough labelled traffic yet: {need} more outcomes needed per variant"}
    if task in CLASSIFICATION:
        hits_a, hits_b = _hits(a), _hits(b)
        table = [[hits_b.sum(), len(hits_b) - hits_b.sum()], [hits_a.sum(), len(hits_a) - hits_a.sum()]]
        p_value = float(stats.chi2_contingency(table)[1]) if min(min(r) for r in table) > 0 else float(
            stats.fisher_exact(table)[1]
        )
        better = hits_b.mean() > hits_a.mean()
        shown = f"accuracy {hits_b.mean():.3f} vs {hits_a.mean():.3f}"
    else:
        err_a = np.abs(pd.to_numeric(a["prediction"]) - pd.to_numeric(a["actual"])).to_numpy(dtype=float)
        err_b = np.abs(pd.to_numeric(b["prediction"]) - pd.to_numeric(b["actual"])).to_numpy(dtype=float)
        p_value = float(stats.mannwhitneyu(err_b, err_a, alternative="two-sided").pvalue)
        better = np.median(err_b) < np.median(err_a)
        shown = f"median absolute error {np.median(err_b):.4g} vs {np.median(err_a):.4g}"
    promote = bool(better and p_value < 0.05)
    verdict = (
        f"promote {challenger.ref}: it is significantly better ({shown}, p={p_value:.3g})"
        if promote
        else f"keep {name}@{champion}: the challenger is not significantly better ({shown}, p={p_value:.3g})"
    )
    return {**base, "promote": promote, "p_value": p_value, "message": verdict}


def readable_bucket(bucket: str, since: float | None, until: float | None, first: float | None) -> str:
    """`bucket`, or the smallest coarser step that keeps the window within `MAX_BUCKETS` points."""
    start = since if since is not None else first
    if start is None:
        return bucket
    span = (until if until is not None else time.time()) - start
    if span / bucket_seconds(bucket) <= MAX_BUCKETS:
        return bucket
    for step in BUCKET_LADDER:
        if bucket_seconds(step) >= bucket_seconds(bucket) and span / bucket_seconds(step) <= MAX_BUCKETS:
            return step
    coarsest = BUCKET_LADDER[-1]
    return bucket if bucket_seconds(bucket) > bucket_seconds(coarsest) else coarsest


def monitoring_overview(
    store, name: str, *, bucket: str = "1h", since: float | None = None, until: float | None = None
) -> MonitoringOverview:
    """Traffic, drift, performance and the promotion proposal of one model name, over a time window.

    `since`/`until` are epoch seconds (None: from the first / up to the last request). Buckets too
    fine for the window are coarsened so that a chart has at most `MAX_BUCKETS` points, with a note.
    """
    notes = []
    try:
        task = store.registry.get(name).task
    except Exception:  # noqa: BLE001 - a model deleted while its logs remain still shows its traffic
        task = None
        notes.append(f"'{name}' is not in the registry any more")
    first = store.monitoring.first_request(name, until=until) if since is None else since
    shown = readable_bucket(bucket, since, until, first)
    if shown != bucket:
        notes.append(f"{bucket} buckets over this window would be more than {MAX_BUCKETS} points: "
                     f"shown in {shown} buckets")
    if since is not None:  # whole buckets only: a cut first bucket would look like a dip in traffic
        since = math.floor(since / bucket_seconds(shown)) * bucket_seconds(shown)
    window = dict(since=since, until=until)
    traffic = store.monitoring.traffic(name, bucket=shown, **window)
    drift = drift_over_time(store, name, bucket=shown, **window)
    if drift.empty:
        latest = drift
        if not traffic.empty:
            notes.append(f"drift needs at least {MIN_ROWS_FOR_DRIFT} requests in a time bucket")
    else:
        last = drift["bucket"].max()
        latest = drift[drift["bucket"] == last].sort_values("psi", ascending=False).reset_index(drop=True)
    labelled = store.monitoring.labelled(name, **window)
    performance = _performance_rows(labelled, task, shown) if task else pd.DataFrame()
    if labelled.empty and not traffic.empty:
        notes.append("no outcomes posted back yet: POST /api/v1/feedback with request_id and actual")
    proposal = promotion_proposal(store, name, labelled, task)
    return MonitoringOverview(name, task, traffic, drift, latest, performance, proposal, notes, bucket=shown)
