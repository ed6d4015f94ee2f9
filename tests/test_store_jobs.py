"""Jobs: lifecycle rows, JSONL event logs read incrementally, cancel flags, dead owners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from store import InvalidRequest, NotFound, Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def test_a_job_goes_from_queued_to_running_to_succeeded(store):
    job = store.jobs.create("train", {"file": "churn.csv", "target": "churned"})
    assert (job.status, job.params, job.owner_pid, job.active) == (
        "queued",
        {"file": "churn.csv", "target": "churned"},
        os.getpid(),
        True,
    )
    running = store.jobs.start(job.id)
    assert running.status == "running" and running.started_at is not None
    done = store.jobs.finish(job.id, "succeeded", result={"model": "churn@1.0.0"})
    assert (done.status, done.result, done.active) == ("succeeded", {"model": "churn@1.0.0"}, False)
    assert done.finished_at >= done.started_at >= done.created_at
    assert store.jobs.last_status(job.id) == "succeeded"
    assert [j.id for j in store.jobs.list(status="succeeded")] == [job.id]


def test_a_failed_job_keeps_its_error(store):
    job = store.jobs.create("train")
    store.jobs.start(job.id)
    failed = store.jobs.finish(job.id, "failed", error="target column 'y' is constant")
    assert (failed.status, failed.error) == ("failed", "target column 'y' is constant")
    assert store.jobs.events(job.id).events[-1] == {
        **store.jobs.events(job.id).events[-1],
        "type": "status",
        "status": "failed",
        "error": "target column 'y' is constant",
    }


@pytest.mark.parametrize(
    ("steps", "call", "message"),
    [
        ((), lambda jobs, job_id: jobs.finish(job_id, "done"), "final status 'done' is invalid"),
        (
            ("start",),
            lambda jobs, job_id: jobs.start(job_id),
            "is running; it can become running only from queued",
        ),
        (
            ("start", "succeed"),
            lambda jobs, job_id: jobs.finish(job_id, "failed"),
            "is succeeded; it can become failed only from",
        ),
        (("start",), lambda jobs, job_id: jobs.delete(job_id), "is running; cancel it before deleting it"),
        ((), lambda jobs, job_id: jobs.create(""), "job kind must be a non-empty string"),
        ((), lambda jobs, job_id: jobs.list(status="paused"), "job status 'paused' is invalid"),
        ((), lambda jobs, job_id: jobs.get("../../etc"), "job id '../../etc' is invalid"),
    ],
)
def test_invalid_job_requests_are_refused(store, steps, call, message):
    job = store.jobs.create("train")
    for step in steps:
        store.jobs.start(job.id) if step == "start" else store.jobs.finish(job.id, "succeeded")
    with pytest.raises(InvalidRequest, match=message):
        call(store.jobs, job.id)


def test_an_unknown_job_lists_recent_ones(store):
    known = store.jobs.create("train")
    with pytest.raises(NotFound, match=f"job '{'0' * 32}' not found; available: {known.id}"):
        store.jobs.get("0" * 32)


def test_events_are_read_from_an_offset_and_a_half_written_line_waits(store):
    job = store.jobs.create("train")
    with store.jobs.event_log(job.id) as log:
        log.append({"type": "progress", "percent": 10.0, "stage": "profile"})
        log.append({"type": "trial", "model": "lgbm", "score": 0.9})
    first = store.jobs.events(job.id)
    assert [e["type"] for e in first.events] == ["progress", "trial"]
    assert all("ts" in e for e in first.events)
    path = store.jobs.events_path(job.id)
    with open(path, "ab") as handle:  # a writer caught in the middle of a line
        handle.write(b'{"type": "progress", "perc')
    assert store.jobs.events(job.id, first.offset) == type(first)([], first.offset)
    with open(path, "ab") as handle:
        handle.write(b'ent": 55.0}\n{"type": "message", "text": "ok"}\n')
    rest = store.jobs.events(job.id, first.offset)
    assert [e.get("percent") for e in rest.events] == [55.0, None]
    assert rest.offset == path.stat().st_size
    assert store.jobs.events(job.id, rest.offset).events == []


def test_progress_is_the_last_progress_event_read_without_the_database(store, monkeypatch):
    job = store.jobs.create("train")
    assert store.jobs.progress(job.id) is None
    with store.jobs.event_log(job.id) as log:
        for percent in range(0, 100, 7):
            log.append(
                {
                    "type": "progress",
                    "percent": float(percent),
                    "stage": "search",
                    "best_score": 0.9,
                    "time_left": 100 - percent,
                    "message": "x" * 5000,
                }
            )
            log.append({"type": "trial", "n": percent})
    with open(store.jobs.events_path(job.id), "ab") as handle:
        handle.write(b'{"type": "progress", "percent": 99')  # still being written
    monkeypatch.setattr(store.db, "connect", lambda: pytest.fail("progress must not open the database"))
    assert store.jobs.progress(job.id)["percent"] == 98.0


def test_cancel_of_a_running_job_raises_a_flag_the_runner_sees(store):
    job = store.jobs.create("train")
    store.jobs.start(job.id)
    assert store.jobs.cancel_requested(job.id) is False
    requested = store.jobs.request_cancel(job.id)
    assert requested.status == "running" and requested.cancel_requested_at is not None
    other_process = Store(store.root)  # the runner's own Store
    assert other_process.jobs.cancel_requested(job.id) is True
    assert other_process.jobs.finish(job.id, "cancelled").status == "cancelled"
    assert store.jobs.request_cancel(job.id).status == "cancelled"  # no-op once finished
    store.jobs.delete(job.id)
    assert not store.jobs.events_path(job.id).exists() and not store.jobs.cancel_path(job.id).exists()


def test_cancel_of_a_queued_job_cancels_it_at_once(store):
    job = store.jobs.create("train")
    assert store.jobs.request_cancel(job.id).status == "cancelled"
    assert store.jobs.last_status(job.id) == "cancelled"


CREATE_AND_EXIT = """
import sys
from store import Store
jobs = Store(sys.argv[1]).jobs
queued = jobs.create("train")
running = jobs.create("train")
jobs.start(running.id)
print(queued.id, running.id)
"""


def test_jobs_of_dead_processes_are_marked_interrupted_and_live_ones_are_left_alone(store):
    done = subprocess.run(
        [sys.executable, "-c", CREATE_AND_EXIT, str(store.root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    dead_ids = done.stdout.split()
    mine = store.jobs.create("train")
    store.jobs.start(mine.id)
    assert sorted(store.jobs.mark_interrupted_dead_jobs()) == sorted(dead_ids)
    for job_id in dead_ids:
        job = store.jobs.get(job_id)
        assert job.status == "interrupted" and "stopped" in job.error
        assert store.jobs.last_status(job_id) == "interrupted"
    assert store.jobs.get(mine.id).status == "running"
    assert store.jobs.mark_interrupted_dead_jobs() == []


def test_a_reused_pid_does_not_keep_a_job_alive(store):
    job = store.jobs.create("train")
    with store.db.transaction() as connection:  # same pid, but the recorded process started at another time
        connection.execute("UPDATE jobs SET owner_started = '1' WHERE id = ?", [job.id])
    assert store.jobs.mark_interrupted_dead_jobs() == [job.id]


def test_list_filters_by_kind_and_returns_newest_first(store):
    first, second = store.jobs.create("train"), store.jobs.create("explain")
    assert [j.id for j in store.jobs.list()] == [second.id, first.id]
    assert [j.id for j in store.jobs.list(kind="train")] == [first.id]
    assert len(store.jobs.list(limit=1)) == 1
    assert store.jobs.events_path(first.id) == store.root / "jobs" / f"{first.id}.jsonl"


def test_recover_at_start_up_marks_dead_jobs_and_rewrites_the_routing_snapshot(store):
    store.registry.register("churn", {"m": 1}, input_schema={})
    store.home.routing_path.unlink()  # as if killed between a commit and its snapshot
    job = store.jobs.create("train")
    with store.db.transaction() as connection:
        connection.execute("UPDATE jobs SET owner_pid = ? WHERE id = ?", [2**22 + 12345, job.id])
    assert store.recover() == [job.id]
    assert store.routing().current().resolve("churn").version == "1.0.0"
