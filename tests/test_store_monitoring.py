"""Monitoring: buffered per-process JSONL logs, and the queries upstream charts and drift checks use."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pandas as pd
import pytest

from store import InvalidRequest, NotFound, Store, StoreError
from store.monitoring import (
    ACCURACY_COLUMNS,
    LABELLED_COLUMNS,
    PREDICTION_COLUMNS,
    TRAFFIC_COLUMNS,
    bucket_seconds,
)

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)  # an hour boundary


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def log_traffic(store: Store) -> None:
    """Hour 0: 4 champion + 2 challenger requests; hour 1: 2 champion; feedback for some of them."""
    with store.monitoring.prediction_logger() as predictions, store.monitoring.feedback_logger() as feedback:
        rows = [
            ("c0", 0, "champion", "1.0.0", 1, 10),
            ("c1", 60, "champion", "1.0.0", 0, 20),
            ("c2", 120, "champion", "1.0.0", 1, 30),
            ("c3", 180, "champion", "1.0.0", 1, 40),
            ("x0", 30, "challenger", "1.1.0", 0, 5),
            ("x1", 90, "challenger", "1.1.0", 1, 7),
            ("c4", HOUR + 5, "champion", "1.0.0", 0, 50),
            ("c5", HOUR + 9, "champion", "1.0.0", 1, 60),
        ]
        for request_id, offset, variant, version, label, latency in rows:
            predictions.log(
                request_id=request_id,
                model="churn",
                version=version,
                variant=variant,
                inputs={"age": latency, "plan": "basic"},
                outputs={"prediction": label, "probabilities": {"0": 0.5, "1": 0.5}},
                latency_ms=float(latency),
                ts=T0 + offset,
            )
        predictions.log(
            request_id="o0",
            model="other",
            version="1.0.0",
            variant="champion",
            inputs={"z": 1},
            outputs={"prediction": 3.5},
            latency_ms=1.0,
            ts=T0,
        )
        feedback.log(request_id="c0", actual=0, ts=T0 + 500)  # corrected below: the latest feedback wins
        feedback.log(request_id="c0", actual=1, ts=T0 + 600)
        feedback.log(request_id="c1", actual=1, ts=T0 + 600)
        feedback.log(request_id="x0", actual=0, ts=T0 + 600)
        feedback.log(request_id="x1", actual=0, ts=T0 + 600)
        feedback.log(request_id="o0", actual=4.0, ts=T0 + 600)


def test_queries_on_a_fresh_home_return_empty_frames_with_the_right_columns(store):
    monitoring = store.monitoring
    assert list(monitoring.predictions()) == PREDICTION_COLUMNS
    assert list(monitoring.traffic("churn")) == TRAFFIC_COLUMNS
    assert list(monitoring.labelled("churn")) == LABELLED_COLUMNS
    assert list(monitoring.accuracy("churn")) == ACCURACY_COLUMNS
    assert monitoring.inputs("churn").empty
    assert monitoring.traffic("churn")["bucket"].dtype == "datetime64[us, UTC]"
    log_traffic(store)
    assert monitoring.predictions("nobody").empty
    assert list(monitoring.traffic("nobody")) == TRAFFIC_COLUMNS


def test_each_writer_has_its_own_file_and_nothing_is_written_before_a_flush(store):
    logger = store.monitoring.prediction_logger(flush_interval=60)
    other = store.monitoring.prediction_logger(flush_interval=60)
    assert logger.path != other.path and logger.path.parent == store.root / "monitoring" / "predictions"
    logger.log(
        request_id="r1", model="m", version="1.0.0", variant="champion", inputs={}, outputs={}, latency_ms=1.0
    )
    assert logger.pending == 1 and not logger.path.exists()
    logger.flush()
    assert logger.pending == 0 and len(store.monitoring.predictions("m")) == 1
    logger.close()
    other.close()
    logger.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        logger.log(
            request_id="r2",
            model="m",
            version="1.0.0",
            variant="champion",
            inputs={},
            outputs={},
            latency_ms=1.0,
        )


def test_the_background_thread_flushes_on_time_and_when_the_buffer_fills(store):
    timed = store.monitoring.feedback_logger(flush_interval=0.05)
    timed.log(request_id="r1", actual=1)
    deadline = time.monotonic() + 5
    while not timed.path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert timed.path.exists()
    sized = store.monitoring.feedback_logger(flush_interval=60, max_buffer=3)
    for i in range(3):
        sized.log(request_id=f"s{i}", actual=i)
    deadline = time.monotonic() + 5
    while sized.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sized.pending == 0 and len(sized.path.read_text().splitlines()) == 3
    timed.close()
    sized.close()


def test_predictions_come_back_as_records_with_parsed_inputs_and_outputs(store):
    log_traffic(store)
    frame = store.monitoring.predictions("churn")
    assert len(frame) == 8 and list(frame) == PREDICTION_COLUMNS
    first = frame.iloc[0]
    assert (first.request_id, first.inputs, first.prediction) == ("c0", {"age": 10, "plan": "basic"}, 1)
    assert first.ts == pd.Timestamp(T0, unit="s", tz="UTC")
    assert len(store.monitoring.predictions()) == 9
    assert list(store.monitoring.predictions("churn", version="1.1.0").request_id) == ["x0", "x1"]
    window = store.monitoring.predictions(
        "churn", since=dt.datetime.fromtimestamp(T0 + HOUR, dt.UTC), until=T0 + HOUR + 6
    )
    assert list(window.request_id) == ["c4"]


def test_traffic_gives_volume_and_latency_percentiles_per_bucket_and_variant(store):
    log_traffic(store)
    frame = store.monitoring.traffic("churn", bucket="1h")
    rows = {(row.bucket.timestamp() - T0, row.variant): row for row in frame.itertuples()}
    assert sorted(rows) == [(0.0, "challenger"), (0.0, "champion"), (HOUR, "champion")]
    champion = rows[(0.0, "champion")]
    assert (champion.requests, champion.version, champion.latency_mean, champion.latency_p50) == (
        4,
        "1.0.0",
        25.0,
        25.0,
    )
    assert 38.0 < champion.latency_p95 <= champion.latency_p99 <= 40.0
    assert store.monitoring.traffic("churn", bucket="1d")["requests"].sum() == 8


def test_inputs_return_one_column_per_feature_newest_rows_last(store):
    log_traffic(store)
    inputs = store.monitoring.inputs("churn", version="1.0.0")
    assert list(inputs.columns) == ["age", "plan"] and list(inputs.age) == [10, 20, 30, 40, 50, 60]
    assert list(store.monitoring.inputs("churn", limit=2).age) == [50, 60]


def test_inputs_per_bucket_count_every_row_and_keep_a_stable_sample(store):
    log_traffic(store)
    with store.monitoring.prediction_logger() as shadow:
        shadow.log(request_id="s0", model="churn", version="1.1.0", variant="shadow", inputs={"age": 99},
                   outputs={"prediction": 1}, latency_ms=1.0, ts=T0 + 1)
    frame = store.monitoring.inputs_per_bucket("churn", bucket="1h")
    counts = frame.groupby(["bucket", "version"])["rows"].agg(["first", "size"])
    assert counts["first"].tolist() == [4, 2, 2] and counts["size"].tolist() == [4, 2, 2]  # shadow left out
    assert sorted(json.loads(v)["age"] for v in frame["inputs"]) == [5, 7, 10, 20, 30, 40, 50, 60]
    sample = store.monitoring.inputs_per_bucket("churn", bucket="1h", per_bucket=2)
    assert sample.groupby(["bucket", "version"]).size().tolist() == [2, 2, 2]
    assert sample["rows"].tolist() == frame.drop_duplicates(["bucket", "version"])["rows"].repeat(2).tolist()
    again = store.monitoring.inputs_per_bucket("churn", bucket="1h", per_bucket=2)
    assert again["inputs"].tolist() == sample["inputs"].tolist()  # the same sample at every refresh
    with_shadow = store.monitoring.inputs_per_bucket("churn", bucket="1h", include_shadow=True)
    assert with_shadow["rows"].max() == 4 and len(with_shadow) == 9
    assert store.monitoring.inputs_per_bucket("churn", since=T0 + HOUR)["rows"].tolist() == [2, 2]
    assert list(store.monitoring.inputs_per_bucket("nobody")) == ["bucket", "version", "rows", "inputs"]
    with pytest.raises(InvalidRequest, match="per_bucket must be a positive whole number"):
        store.monitoring.inputs_per_bucket("churn", per_bucket=0)


def test_feedback_joins_predictions_for_accuracy_over_time(store):
    log_traffic(store)
    labelled = store.monitoring.labelled("churn")
    assert list(labelled.request_id) == ["c0", "x0", "c1", "x1"]
    assert labelled.set_index("request_id").loc["c0", "actual"] == 1  # the latest feedback wins
    accuracy = store.monitoring.accuracy("churn", bucket=HOUR)
    by_variant = accuracy.set_index("variant")
    assert by_variant.loc["champion", "labelled"] == 2 and by_variant.loc["champion", "accuracy"] == 0.5
    assert by_variant.loc["challenger", "accuracy"] == 0.5
    regression = store.monitoring.accuracy("other")
    assert regression.loc[0, "mae"] == 0.5 and regression.loc[0, "accuracy"] == 0.0


def test_a_torn_last_line_from_a_live_writer_is_skipped(store):
    log_traffic(store)
    torn = store.root / "monitoring" / "predictions" / "999-0-dead.jsonl"
    torn.write_text('{"request_id": "t1", "ts": 1700000000.0, "model": "churn", "vers')
    assert len(store.monitoring.predictions("churn")) == 8


def test_reference_distributions_are_stored_per_version(store):
    store.registry.register("churn", {"m": 1}, input_schema={"age": "numeric"})
    assert store.monitoring.reference("churn") is None
    store.monitoring.set_reference("churn@1.0.0", {"age": {"bins": [0, 50, 100], "counts": [3, 7]}})
    assert store.monitoring.reference("churn")["age"]["counts"] == [3, 7]
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        store.monitoring.set_reference("ghost", {})
    with pytest.raises(InvalidRequest, match="reference must be a dict"):
        store.monitoring.set_reference("churn", [1, 2])


@pytest.mark.parametrize(
    ("bucket", "seconds"),
    [
        (60, 60.0),
        ("30s", 30.0),
        ("15min", 900.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1.5h", 5400.0),
    ],
)
def test_bucket_widths_accept_seconds_or_short_text(bucket, seconds):
    assert bucket_seconds(bucket) == seconds


@pytest.mark.parametrize("bucket", ["hourly", "0h", -5, "", None, True])
def test_bad_bucket_widths_are_refused(bucket):
    with pytest.raises(InvalidRequest, match="bucket .* is invalid"):
        bucket_seconds(bucket)


def test_an_unknown_variant_is_refused_where_it_is_logged(store):
    with store.monitoring.prediction_logger() as logger:
        with pytest.raises(InvalidRequest, match="variant 'canary' is invalid"):
            logger.log(
                request_id="r",
                model="m",
                version="1.0.0",
                variant="canary",
                inputs={},
                outputs={},
                latency_ms=1,
            )


def test_writers_start_a_new_file_every_day_or_when_one_is_large(store):
    sized = store.monitoring.prediction_logger(flush_interval=60)
    sized.rotate_bytes = 1  # any write fills the file
    for i in range(3):
        sized.log(request_id=f"a{i}", model="m", version="1.0.0", variant="champion", inputs={}, outputs={},
                  latency_ms=1.0)
        sized.flush()
    sized.close()
    timed = store.monitoring.feedback_logger(flush_interval=60)
    timed.log(request_id="a0", actual=1)
    timed.flush()
    first = timed.path
    timed._opened -= 86400  # as if the file were opened a day ago
    timed.log(request_id="a1", actual=0)
    timed.flush()
    timed.close()
    assert len(list(store.monitoring.predictions_dir.glob("*.jsonl"))) == 3
    assert timed.path != first and len(list(store.monitoring.feedback_dir.glob("*.jsonl"))) == 2
    assert list(store.monitoring.predictions("m").request_id) == ["a0", "a1", "a2"]


def _old_file(folder, name: str, records: list[dict], mtime: float):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.utime(path, (mtime, mtime))
    return path


def test_prune_deletes_whole_files_older_than_the_window_and_keeps_live_ones(store):
    now = T0 + 400 * 86400
    day = 86400.0
    preds, feedback = store.monitoring.predictions_dir, store.monitoring.feedback_dir
    record = dict(model="m", version="1.0.0", variant="champion", inputs={}, outputs={}, latency_ms=1.0)
    old = _old_file(preds, "1-old.jsonl", [dict(record, request_id=f"o{i}", ts=now - 200 * day + i)
                                           for i in range(3)], now - 199 * day)
    mixed = _old_file(preds, "2-mixed.jsonl", [dict(record, request_id="m0", ts=now - 200 * day),
                                               dict(record, request_id="m1", ts=now - 10 * day)], now - 10 * day)
    # Old records, but written in the last day (a back-fill): a live writer's file is never touched.
    live = _old_file(preds, "3-live.jsonl", [dict(record, request_id="l0", ts=now - 300 * day)], now - 60)
    answers = _old_file(feedback, "1-old.jsonl", [{"request_id": "o0", "ts": now - 150 * day, "actual": 1}],
                        now - 150 * day)
    dry = store.monitoring.prune("90d", dry_run=True, now=now)
    assert (dry.files, dry.records, dry.kept_files, dry.dry_run) == (2, 4, 2, True) and old.exists()
    report = store.monitoring.prune("90d", now=now)
    assert (report.files, report.records, report.kept_files) == (2, 4, 2)
    assert report.bytes > 0 and not old.exists() and not answers.exists() and mixed.exists() and live.exists()
    assert store.monitoring.prune("12w", now=now).files == 0
    for bad, message in (("12h", "keep at least one day"), ("soon", "expected seconds or text"),
                         (-5, "positive duration")):
        with pytest.raises(InvalidRequest, match=message):
            store.monitoring.prune(bad, now=now)
    assert store.monitoring.prune(90 * day, now=now).files == 0


def test_a_query_goes_on_when_a_log_file_is_pruned_under_it(store, monkeypatch):
    import store.monitoring as monitoring

    log_traffic(store)
    listed = monitoring._files(store.monitoring.predictions_dir)
    monkeypatch.setattr(monitoring, "_files", lambda folder: [*listed, str(folder / "gone.jsonl")])
    assert len(store.monitoring.predictions("churn")) == 8
    # Every file pruned under the query: an empty answer with the usual columns, not an error.
    monkeypatch.setattr(monitoring, "_files", lambda folder: [str(folder / "gone.jsonl")])
    assert store.monitoring.predictions("churn").empty
    assert list(store.monitoring.traffic("churn")) == TRAFFIC_COLUMNS and store.monitoring.labelled("churn").empty
    assert store.monitoring.inputs_per_bucket("churn").empty


def test_logs_prune_on_the_command_line(store, monkeypatch, capsys):
    from automl_core.cli import main

    monkeypatch.setenv("AUTOML_HOME", str(store.root))
    log_traffic(store)
    for path in store.monitoring.predictions_dir.glob("*.jsonl"):
        os.utime(path, (T0 + 2 * 86400, T0 + 2 * 86400))
    assert main(["logs", "prune", "--older-than", "1d", "--dry-run"]) == 0
    assert "would delete 1 log file(s): 9 records" in capsys.readouterr().out
    assert main(["logs", "prune", "--older-than", "1d", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["files"] == 1 and answer["records"] == 9 and not answer["dry_run"]
    assert store.monitoring.predictions("churn").empty
    assert main(["logs", "prune", "--older-than", "1h"]) == 1
    assert "keep at least one day" in capsys.readouterr().err


def test_the_first_request_of_a_model(store):
    assert store.monitoring.first_request("churn") is None
    log_traffic(store)
    assert store.monitoring.first_request("churn") == T0
    assert store.monitoring.first_request("churn", version="1.1.0") == T0 + 30
    assert store.monitoring.first_request("churn", until=T0) is None
    assert store.monitoring.first_request("nobody") is None
