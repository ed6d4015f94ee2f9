"""The database policy: migrations, upgrades, lock retries and transactions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import MIGRATIONS, Database, SchemaVersionError, Store, StoreBusy
from store.artifacts import ArtifactStore
from store.db import utc_now

REPO = Path(__file__).resolve().parents[1]


def tables(db: Database) -> set[str]:
    with db.connect() as connection:
        return {
            row[0]
            for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }


def test_a_new_database_gets_every_migration_in_order(tmp_path):
    db = Database(tmp_path / "automl.duckdb")
    assert db.applied_migrations() == [(m.version, m.name) for m in MIGRATIONS]
    assert {
        "models",
        "model_versions",
        "aliases",
        "jobs",
        "deployments",
        "version_documents",
        "reference_distributions",
        "schema_migrations",
    } <= tables(db)


def test_migrations_are_numbered_without_gaps_and_named():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all(m.name and m.statements for m in MIGRATIONS)


def test_an_older_home_is_upgraded_in_place_and_keeps_its_data(tmp_path):
    home = tmp_path / "home"
    old = Database(home / "automl.duckdb", migrations=MIGRATIONS[:1])
    artifact = ArtifactStore(home / "artifacts").save({"weights": [1, 2, 3]})
    with old.transaction() as connection:
        connection.execute("INSERT INTO models VALUES ('churn', ?)", [utc_now()])
        connection.execute(
            "INSERT INTO model_versions (id, model_name, version, major, minor, patch, created_at, schema_fingerprint, "
            "artifact_sha256, artifact_size, artifact_file, lineage) VALUES ('v1', 'churn', '1.0.0', 1, 0, 0, ?, 'fp', ?, ?, ?, ?)",
            [utc_now(), artifact.sha256, artifact.size, artifact.file, '{"rows": 10}'],
        )
        connection.execute(
            "INSERT INTO jobs (id, kind, status, created_at) VALUES (?, 'train', 'succeeded', ?)",
            ["a" * 32, utc_now()],
        )
    assert old.applied_migrations() == [(1, "initial")]
    assert "deployments" not in tables(old)

    store = Store(home)
    version = store.registry.get("churn")
    assert (version.version, version.lineage) == ("1.0.0", {"rows": 10})
    assert store.registry.load("churn@1.0.0") == {"weights": [1, 2, 3]}
    assert store.jobs.get("a" * 32).cancel_requested_at is None  # column added by migration 3
    assert [v for v, _ in store.db.applied_migrations()] == [m.version for m in MIGRATIONS]
    store.registry.put_document("churn", "evaluation", {"auc": 0.9})  # table added by migration 2
    assert store.registry.get_document("churn", "evaluation") == {"auc": 0.9}
    assert version.data_sha256 is None  # column added by migration 4; this lineage names no data copy


def test_upgrading_a_home_makes_the_data_copies_its_lineage_names_references(tmp_path):
    home = tmp_path / "home"
    old = Database(home / "automl.duckdb", migrations=MIGRATIONS[:3])
    artifacts = ArtifactStore(home / "artifacts")
    model = artifacts.save({"weights": [1]})
    data = artifacts.save_bytes(b"age,churned\n30,1\n")
    lineages = {
        "1.0.0": {"data": {"file": "churn.csv", "stored_copy_sha256": data.sha256}},
        "1.1.0": {"data": {"file": "churn.csv", "stored_copy_sha256": data.sha256}},  # a reproduction
        "1.2.0": {"data": {"stored_copy_sha256": None}},
        "1.3.0": {"data": {"stored_copy_sha256": "../not-a-hash"}},
        "1.4.0": {"data": "churn.csv"},
    }
    with old.transaction() as connection:
        connection.execute("INSERT INTO models VALUES ('churn', ?)", [utc_now()])
        for minor, (number, lineage) in enumerate(lineages.items()):
            connection.execute(
                "INSERT INTO model_versions (id, model_name, version, major, minor, patch, created_at, "
                "schema_fingerprint, artifact_sha256, artifact_size, artifact_file, lineage) "
                "VALUES (?, 'churn', ?, 1, ?, 0, ?, 'fp', ?, ?, ?, ?)",
                [
                    f"v{minor}",
                    number,
                    minor,
                    utc_now(),
                    model.sha256,
                    model.size,
                    model.file,
                    json.dumps(lineage),
                ],
            )

    store = Store(home)
    assert [(v.version, v.data_sha256) for v in store.registry.versions("churn")] == [
        ("1.0.0", data.sha256),
        ("1.1.0", data.sha256),
        ("1.2.0", None),
        ("1.3.0", None),
        ("1.4.0", None),
    ]
    assert store.registry.gc(min_age_seconds=0) == []  # the data copy is no longer garbage
    store.registry.delete_version("churn@1.0.0")
    assert store.artifacts.load_bytes(data.sha256) == b"age,churned\n30,1\n"  # 1.1.0 still names it
    store.registry.delete_model("churn")
    assert store.artifacts.list() == []


def test_a_database_from_newer_code_is_refused(tmp_path):
    db = Database(tmp_path / "automl.duckdb")
    with db.transaction() as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (99, 'future', ?)", [utc_now()])
    with pytest.raises(SchemaVersionError, match="schema version 99, newer than this code"):
        with Database(tmp_path / "automl.duckdb").connect():
            pass


def test_a_failing_transaction_leaves_nothing_behind(tmp_path):
    db = Database(tmp_path / "automl.duckdb")
    with pytest.raises(RuntimeError, match="boom"):
        with db.transaction() as connection:
            connection.execute("INSERT INTO models VALUES ('m', ?)", [utc_now()])
            raise RuntimeError("boom")
    with db.connect() as connection:
        assert connection.execute("SELECT count(*) FROM models").fetchone() == (0,)


def test_errors_other_than_lock_conflicts_propagate_at_once(tmp_path):
    (tmp_path / "not-a-db.duckdb").write_bytes(b"this is not a duckdb file" * 100)
    db = Database(tmp_path / "not-a-db.duckdb", timeout=30)
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)duckdb|database"):
        with db.connect():
            pass
    assert time.monotonic() - started < 5
    assert db.stats.lock_retries == 0


HOLD_WITH_DUCKDB = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""

HOLD_WITH_STORE = """
import sys, time
from store import Database
with Database(sys.argv[1]).connect():
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.mark.parametrize(
    ("holder_code", "message"),
    [
        (HOLD_WITH_DUCKDB, "stayed locked by another process"),
        (HOLD_WITH_STORE, "stayed busy with other processes"),
    ],
    ids=["foreign-duckdb-client", "another-store-process"],
)
def test_a_lock_held_by_another_process_is_waited_for_and_reported_as_busy_only_after_the_timeout(
    tmp_path, holder_code, message
):
    path = tmp_path / "automl.duckdb"
    Database(path).applied_migrations()
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(path), "2.5"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        impatient = Database(path, timeout=0.2)
        with pytest.raises(StoreBusy, match=message):
            with impatient.connect():
                pass
        patient = Database(path, timeout=20)
        started = time.monotonic()
        with patient.transaction() as connection:
            connection.execute("INSERT INTO models VALUES ('waited', ?)", [utc_now()])
        assert time.monotonic() - started > 0.3
        assert patient.stats.lock_retries > 0 and patient.stats.wait_seconds > 0
    finally:
        holder.wait(timeout=20)
        holder.stdout.close()
    assert holder.returncode == 0


def test_nested_connections_of_one_thread_share_the_process_lock(tmp_path):
    first, second = Database(tmp_path / "automl.duckdb"), Database(tmp_path / "automl.duckdb", timeout=1)
    with first.connect() as outer:
        with second.connect() as inner:
            assert inner.execute("SELECT count(*) FROM models").fetchone() == (0,)
        assert outer.execute("SELECT 1").fetchone() == (1,)
