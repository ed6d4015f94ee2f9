"""The registry: version numbers, references, lineage, documents, aliases, deployments, deletion."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from store import ArtifactIntegrityError, InvalidName, InvalidRequest, NotFound, Store

SCHEMA_A = {"columns": [{"name": "age", "kind": "numeric"}, {"name": "plan", "kind": "categorical"}]}
SCHEMA_B = {"columns": [{"name": "age", "kind": "numeric"}]}


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def register(store: Store, name: str = "churn", schema=SCHEMA_A, model=None, **kwargs):
    return store.registry.register(
        name, model if model is not None else {"seed": np.random.rand()}, input_schema=schema, **kwargs
    )


def test_the_home_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_HOME", str(tmp_path / "from-env"))
    store = Store()
    assert store.root == (tmp_path / "from-env").resolve()
    assert {p.name for p in store.root.iterdir()} == {"artifacts", "jobs", "monitoring"}
    assert repr(store).startswith("Store(")


def test_versions_follow_the_semver_rule(store):
    assert register(store).version == "1.0.0"
    assert register(store).version == "1.1.0"  # same input schema: minor
    assert register(store, schema=SCHEMA_B).version == "2.0.0"  # new input schema: major
    assert register(store, schema=SCHEMA_B).version == "2.1.0"
    assert register(store, schema=SCHEMA_A).version == "3.0.0"  # compared with the latest version only
    patched = store.registry.update_metadata("churn@2.1.0", description="checked by Ana")
    assert patched.version == "2.1.1"  # metadata only, explicitly asked: patch
    assert store.registry.update_metadata("churn@2.1.0", tags={"team": "growth"}).version == "2.1.2"
    assert register(store, name="other").version == "1.0.0"  # numbering is per model name
    assert [v.version for v in store.registry.versions("churn")] == [
        "1.0.0",
        "1.1.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
        "2.1.2",
        "3.0.0",
    ]


def test_a_patch_copies_everything_but_the_metadata_and_shares_the_artifact(store):
    source = register(
        store,
        task="binary",
        metric_name="roc_auc",
        cv_score=0.91,
        metrics={"cv": {"roc_auc": 0.91}},
        params={"max_depth": 3},
        documents={"evaluation": {"auc": 0.9}, "importance": [1, 2]},
    )
    patch = store.registry.update_metadata(source.ref, description="new text", documents={"importance": [3]})
    assert patch.artifact == source.artifact
    assert (patch.task, patch.cv_score, patch.metrics, patch.params) == (
        source.task,
        0.91,
        source.metrics,
        source.params,
    )
    assert patch.parent_version_id == source.id
    assert store.registry.documents(patch.ref) == {"evaluation": {"auc": 0.9}, "importance": [3]}
    assert store.registry.documents(source.ref) == {"evaluation": {"auc": 0.9}, "importance": [1, 2]}


def test_update_metadata_needs_something_to_change(store):
    register(store)
    with pytest.raises(InvalidRequest, match="at least one of description, tags or documents"):
        store.registry.update_metadata("churn")


def test_every_recorded_field_round_trips(store):
    lineage = {
        "dataset_fingerprint": "abc",
        "file_name": "churn.csv",
        "rows": 1000,
        "columns": {"age": "numeric"},
        "target": "churned",
        "leaderboard": [{"model": "lgbm", "score": 0.91}],
        "seed": 42,
        "time_budget": 60,
        "libraries": {"scikit-learn": "1.9"},
        "git_commit": "deadbeef",
        "cv_plan": {"folds": 5},
        "score": float("nan"),
        "array": np.array([1, 2]),
    }
    version = register(
        store,
        task="binary",
        metric_name="roc_auc",
        cv_score=np.float64(0.91),
        metrics={"cv": {"roc_auc": 0.91}, "test": {"roc_auc": 0.88, "log_loss": 0.3}},
        params={"learning_rate": 0.1},
        lineage=lineage,
        recipe={"time_budget": 60},
        description="first",
        tags={"team": "growth"},
        job_id="f" * 32,
        model={"w": 1},
    )
    again = store.registry.get("churn@1.0.0")
    assert again == version
    assert again.metrics == {"cv": {"roc_auc": 0.91}, "test": {"log_loss": 0.3, "roc_auc": 0.88}}
    assert again.lineage["score"] is None and again.lineage["array"] == [1, 2]  # strict JSON
    assert again.lineage["leaderboard"] == [{"model": "lgbm", "score": 0.91}]
    assert (again.job_id, again.recipe, again.tags, again.input_schema) == (
        "f" * 32,
        {"time_budget": 60},
        {"team": "growth"},
        SCHEMA_A,
    )
    assert again.created_at.tzinfo is not None
    assert store.registry.load("churn") == {"w": 1}
    assert store.registry.verify("churn").sha256 == version.artifact.sha256


def test_references_resolve_in_all_three_forms(store):
    first, second = register(store), register(store)
    store.registry.set_alias(first.ref, "production")
    assert store.registry.get("churn").id == second.id
    assert store.registry.get("churn@latest").id == second.id
    assert store.registry.get("churn@1.0.0").id == first.id
    assert store.registry.get("churn@production").id == first.id
    assert store.registry.get("churn@production").aliases == ("production",)


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("nope", NotFound, r"model 'nope' not found; available: churn"),
        ("churn@9.9.9", NotFound, r"version of model 'churn' '9.9.9' not found; available: 1.0.0, 1.1.0"),
        ("churn@prod", NotFound, r"alias of model 'churn' 'prod' not found; available: staging"),
        ("nope@production", NotFound, r"model 'nope' not found"),
        ("churn@1.0", InvalidRequest, r"after '@' expected a version like 1.2.0 or an alias"),
        ("churn@", InvalidRequest, r"after '@' expected"),
        ("", InvalidRequest, r"expected NAME, NAME@1.2.0 or NAME@alias"),
        ("bad name@1.0.0", InvalidName, r"model name 'bad name' is invalid"),
    ],
)
def test_unknown_or_malformed_references_say_what_exists(store, ref, error, message):
    register(store, aliases=["staging"])
    register(store)
    with pytest.raises(error, match=message):
        store.registry.get(ref)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("churn", True),
        ("Churn_v2.final-1", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("has space", False),
        ("slash/name", False),
        ("-leading", False),
        ("émoji", False),
        ("x@y", False),
    ],
)
def test_model_names_are_validated_where_they_enter(store, name, ok):
    if ok:
        assert register(store, name=name).name == name
    else:
        with pytest.raises(InvalidName, match="letters, digits, '-', '_' or '.'"):
            register(store, name=name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": {"roc_auc": 0.9}}, r"metrics\['roc_auc'\] must be a dict"),
        ({"metrics": {"cv": {"auc": "high"}}}, r"metric cv/auc must be a number, got 'high'"),
        ({"cv_score": "best"}, "cv_score must be a number"),
        ({"lineage": ["not", "a", "dict"]}, "lineage must be a dict, got list"),
        ({"aliases": ["Production"]}, "alias 'Production' is invalid"),
        ({"aliases": ["latest"]}, "alias 'latest' is reserved"),
        ({"documents": {"Bad Kind": {}}}, "document kind 'Bad Kind' is invalid"),
        ({"parent": "ghost@1.0.0"}, "model 'ghost' not found"),
        ({"data_sha256": "../data.csv"}, "data_sha256 '../data.csv' is invalid: expected the SHA-256"),
        ({"data_sha256": "A" * 64}, "data_sha256 'AAAA.* is invalid"),
        (
            {"lineage": {"data": {"stored_copy_sha256": "not-a-hash"}}},
            "data_sha256 'not-a-hash' is invalid",
        ),
        (
            {"data_sha256": "a" * 64, "lineage": {"data": {"stored_copy_sha256": "b" * 64}}},
            "differs from lineage\\['data'\\]\\['stored_copy_sha256'\\]",
        ),
    ],
)
def test_bad_registration_arguments_are_refused_and_register_nothing(store, kwargs, message):
    with pytest.raises((InvalidRequest, NotFound), match=message):
        register(store, **kwargs)
    assert store.registry.models() == []


def test_lineage_and_family_tree(store):
    root = register(store, lineage={"job_id": "x"})
    child = register(store, parent=root.ref, job_id="a" * 32)
    grandchild = register(store, parent=child.ref, schema=SCHEMA_B)
    other = register(store, name="fork", parent=child.ref)
    patch = store.registry.update_metadata(grandchild.ref, description="doc")
    edges = {(edge.parent, edge.child) for edge in store.registry.family_tree("churn")}
    assert edges == {
        ("churn@1.0.0", "churn@1.1.0"),
        ("churn@1.1.0", "churn@2.0.0"),
        ("churn@1.1.0", "fork@1.0.0"),
        ("churn@2.0.0", "churn@2.0.1"),
    }
    assert [(e.parent, e.child) for e in store.registry.family_tree("fork")] == [
        ("churn@1.1.0", "fork@1.0.0")
    ]
    assert child.parent_version_id == root.id and other.parent_version_id == child.id
    assert patch.parent_version_id == grandchild.id and child.job_id == "a" * 32
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        store.registry.family_tree("ghost")


def test_documents_are_cached_per_version_without_a_new_version(store):
    version = register(store)
    assert store.registry.get_document(version.ref, "evaluation") is None
    store.registry.put_document(version.ref, "evaluation", {"auc": 0.9, "curve": [[0, 0], [1, 1]]})
    store.registry.put_document(version.ref, "evaluation", {"auc": 0.95})
    store.registry.put_document(version.ref, "report_html", "<h1>Report</h1>")
    assert store.registry.get_document(version.ref, "evaluation") == {"auc": 0.95}
    assert store.registry.documents(version.ref) == {
        "evaluation": {"auc": 0.95},
        "report_html": "<h1>Report</h1>",
    }
    assert store.registry.delete_document(version.ref, "evaluation") is True
    assert store.registry.delete_document(version.ref, "evaluation") is False
    assert [v.version for v in store.registry.versions("churn")] == ["1.0.0"]


def test_aliases_move_and_can_be_removed(store):
    first, second = register(store), register(store)
    store.registry.set_alias(first.ref, "production")
    moved = store.registry.set_alias("churn@1.1.0", "production")
    assert moved.aliases == ("production",)
    store.registry.set_alias("churn@production", "staging")
    assert store.registry.aliases("churn") == {"production": "1.1.0", "staging": "1.1.0"}
    store.registry.remove_alias("churn", "staging")
    assert store.registry.aliases("churn") == {"production": "1.1.0"}
    with pytest.raises(NotFound, match="alias of model 'churn' 'staging' not found; available: production"):
        store.registry.remove_alias("churn", "staging")
    assert store.registry.get(second.ref).aliases == ("production",)


def test_models_lists_latest_version_count_aliases_and_deployment(store):
    register(store, aliases=["production"])
    register(store)
    register(store, name="price", schema=SCHEMA_B)
    store.registry.deploy("churn", "churn@production")
    summaries = {s.name: s for s in store.registry.models()}
    assert (summaries["churn"].latest_version, summaries["churn"].version_count) == ("1.1.0", 2)
    assert summaries["churn"].aliases == {"production": "1.0.0"}
    assert summaries["churn"].deployment.champion == "churn@production"
    assert summaries["price"].deployment is None


def read_routing_file(store: Store) -> dict:
    return json.loads(store.home.routing_path.read_text())["models"]


def test_the_routing_snapshot_follows_every_alias_and_deployment_change(store):
    first = register(store, task="binary")
    routing = store.routing()
    assert routing.current().resolve("churn").version == "1.0.0"
    second = register(store)
    store.registry.set_alias(first.ref, "production")
    snapshot = routing.current()
    assert snapshot.resolve("churn").version == "1.1.0"
    resolved = snapshot.resolve("churn@production")
    assert (resolved.ref, resolved.sha256, resolved.task) == ("churn@1.0.0", first.artifact.sha256, "binary")
    assert store.artifacts.load(resolved.sha256, expected_sha256=resolved.sha256) == store.registry.load(
        first.ref
    )
    assert snapshot.deployment("churn") is None

    store.registry.deploy("churn", "churn@production", "churn@1.1.0", mode="ab", challenger_weight=0.2)
    deployment = routing.current().deployment("churn")
    assert (deployment.champion.version, deployment.challenger.version) == ("1.0.0", "1.1.0")
    assert (deployment.mode, deployment.challenger_weight) == ("ab", 0.2)

    store.registry.set_alias(second.ref, "production")  # the deployment follows the alias
    assert routing.current().deployment("churn").champion.version == "1.1.0"
    store.registry.undeploy("churn")
    assert read_routing_file(store)["churn"]["deployment"] is None
    assert routing.current() is routing.current()  # unchanged file: no re-parse


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("ghost", NotFound, "model 'ghost' not found; available: churn"),
        ("churn@2.0.0", NotFound, "'2.0.0' not found"),
        ("churn@canary", NotFound, "'canary' not found"),
    ],
)
def test_the_snapshot_resolves_like_the_registry(store, ref, error, message):
    register(store)
    with pytest.raises(error, match=message):
        store.routing().current().resolve(ref)


def test_a_missing_snapshot_is_an_empty_one(store):
    snapshot = store.routing().current()
    assert snapshot.models == {}
    with pytest.raises(NotFound, match="model 'churn' not found; available: none"):
        snapshot.deployment("churn")
    register(store)
    store.home.routing_path.unlink()
    assert store.registry.write_routing() == store.home.routing_path
    from store import read_routing

    assert read_routing(store.home.routing_path).resolve("churn").version == "1.0.0"
    assert read_routing(store.root / "absent.json").models == {}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("churn", "churn@1.0.0"), {"mode": "canary"}, InvalidRequest, r"mode 'canary' is invalid"),
        (
            ("churn", "churn@1.0.0", "churn@1.1.0"),
            {"challenger_weight": 1.5},
            InvalidRequest,
            r"expected a number in \[0, 1\]",
        ),
        (
            ("churn", "churn@1.0.0", "churn@1.1.0"),
            {"challenger_weight": "lots"},
            InvalidRequest,
            r"expected a number in \[0, 1\]",
        ),
        (("churn", "other@1.0.0"), {}, InvalidRequest, r"cannot serve 'other@1.0.0', a different model"),
        (("churn", "churn@7.0.0"), {}, NotFound, r"'7.0.0' not found"),
        (("churn", "churn", "churn@nightly"), {}, NotFound, r"'nightly' not found"),
    ],
)
def test_bad_deployments_are_refused(store, args, kwargs, error, message):
    register(store)
    register(store)
    with pytest.raises(error, match=message):
        store.registry.deploy(*args, **kwargs)
    assert store.registry.deployment("churn") is None


def test_a_shadow_deployment_and_its_protections(store):
    register(store, aliases=["production"])
    register(store)
    deployment = store.registry.deploy(
        "churn", "churn@production", "churn@1.1.0", mode="shadow", challenger_weight=1.0
    )
    assert (deployment.mode, deployment.challenger, deployment.challenger_weight) == (
        "shadow",
        "churn@1.1.0",
        1.0,
    )
    with pytest.raises(InvalidRequest, match="alias 'production' of model 'churn' is used by its deployment"):
        store.registry.remove_alias("churn", "production")
    with pytest.raises(InvalidRequest, match=r"churn@1.0.0 is the champion \(churn@production\)"):
        store.registry.delete_version("churn@1.0.0")
    with pytest.raises(InvalidRequest, match=r"churn@1.1.0 is the challenger"):
        store.registry.delete_version("churn@1.1.0")
    assert store.registry.deploy("churn", "churn@production").challenger_weight == 0.0


def test_deleting_a_version_removes_its_rows_aliases_documents_and_unshared_file(store):
    first = register(store, aliases=["staging"], documents={"evaluation": {}})
    patch = store.registry.update_metadata(first.ref, description="same artifact")
    second = register(store)
    store.monitoring.set_reference(first.ref, {"age": [1, 2]})
    store.registry.delete_version(first.ref)
    assert first.artifact.path.exists()  # still used by the patch
    assert store.registry.aliases("churn") == {}
    store.registry.delete_version(patch.ref)
    assert not first.artifact.path.exists()
    assert [v.version for v in store.registry.versions("churn")] == ["1.1.0"]
    with store.db.connect() as connection:
        for table in ("version_metrics", "version_documents", "aliases", "reference_distributions"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    store.registry.delete_version(second.ref)  # the last one: the model goes too
    assert store.registry.models() == []
    assert os.listdir(store.artifacts.root) == []
    assert read_routing_file(store) == {}


def test_deleting_a_model_removes_everything_but_artifacts_shared_with_other_models(store):
    shared = {"same": "bytes"}
    register(store, model=shared, aliases=["production"])
    register(store, schema=SCHEMA_B)
    other = register(store, name="copy", model=shared)
    store.registry.deploy("churn", "churn@production")
    assert store.registry.delete_model("churn") == 2
    assert [s.name for s in store.registry.models()] == ["copy"]
    assert store.registry.load(other.ref) == shared
    assert len(store.artifacts.list()) == 1
    with pytest.raises(NotFound, match="model 'churn' not found; available: copy"):
        store.registry.versions("churn")
    with pytest.raises(NotFound, match="model 'churn' not found"):
        store.registry.delete_model("churn")


def test_a_tampered_registered_artifact_is_refused(store):
    version = register(store)
    data = bytearray(version.artifact.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    version.artifact.path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=f"expected SHA-256 {version.artifact.sha256}"):
        store.registry.load(version.ref)


def test_gc_removes_only_old_unreferenced_files(store):
    kept = register(store)
    orphan = store.artifacts.save({"killed": "before its rows were written"})
    temp = store.artifacts.root / ".incoming-dead.joblib"
    temp.write_bytes(b"partial")
    assert store.registry.gc() == []  # too young: another process may be about to commit it
    removed = store.registry.gc(min_age_seconds=0)
    assert set(removed) == {orphan.path, temp}
    assert store.registry.load(kept.ref) is not None


def test_an_artifact_deleted_concurrently_is_written_again_before_the_rows(store, monkeypatch):
    model = {"same": "content"}
    register(store, model=model)
    save, calls = store.artifacts.save, []

    def save_then_lose_the_file(obj):  # another process deletes identical content meanwhile
        ref = save(obj)
        calls.append(ref)
        if len(calls) == 1:
            ref.path.unlink()
        return ref

    monkeypatch.setattr(store.artifacts, "save", save_then_lose_the_file)
    again = store.registry.register("copy", model, input_schema=SCHEMA_A)
    assert len(calls) == 2
    assert store.registry.load(again.ref) == model


def test_not_found_errors_survive_pickling_between_processes():
    import pickle

    error = pickle.loads(pickle.dumps(NotFound("model", "ghost", ["churn", "price"])))
    assert (error.asked, error.available, str(error)) == (
        "ghost",
        ["churn", "price"],
        "model 'ghost' not found; available: churn, price",
    )
    many = NotFound("job", "x", [f"j{i:02d}" for i in range(25)])
    assert str(many).endswith("(and 5 more)")


def store_data(store: Store, text: str = "age,plan\n30,basic\n") -> str:
    """What the engine does: keep a copy of the training data, named by its SHA-256."""
    return store.artifacts.save_bytes(text.encode()).sha256


def engine_lineage(data_sha256: str) -> dict:
    return {"data": {"file": "churn.csv", "stored_copy_sha256": data_sha256, "rows": 1}, "target": "churned"}


def test_the_training_data_copy_is_a_reference_that_gc_keeps(store):
    shas = {text: store_data(store, text) for text in ("given", "in lineage", "both", "never registered")}
    given = register(store, data_sha256=shas["given"])
    from_lineage = register(store, lineage=engine_lineage(shas["in lineage"]))
    both = register(store, data_sha256=shas["both"], lineage=engine_lineage(shas["both"]))
    assert (given.data_sha256, from_lineage.data_sha256) == (shas["given"], shas["in lineage"])
    assert store.registry.get(both.ref).data_sha256 == shas["both"]
    assert register(store).data_sha256 is None

    removed = store.registry.gc(min_age_seconds=0)
    assert [path.name for path in removed] == [f"{shas['never registered']}.bin"]
    for version in (given, from_lineage, both):
        assert store.artifacts.verify(version.data_sha256).sha256 == version.data_sha256


def test_deleting_versions_removes_their_data_copy_with_the_last_one_that_names_it(store):
    data = store_data(store)
    original = register(store, lineage=engine_lineage(data), aliases=["production"])
    patch = store.registry.update_metadata(original.ref, description="reviewed")
    reproduction = register(store, lineage=engine_lineage(data), parent=original.ref)
    other_model = register(store, name="price", schema=SCHEMA_B, data_sha256=data)
    assert patch.data_sha256 == reproduction.data_sha256 == other_model.data_sha256 == data

    store.registry.delete_version(original.ref)
    store.registry.delete_version(patch.ref)
    assert store.artifacts.find(data) is not None  # the reproduction and "price" still use it
    assert store.registry.delete_model("churn") == 1
    assert store.artifacts.load_bytes(data) == b"age,plan\n30,basic\n"
    store.registry.delete_version(other_model.ref)  # the last version naming it
    assert store.artifacts.find(data) is None
    assert os.listdir(store.artifacts.root) == []


def test_deleting_a_model_removes_its_model_files_and_data_copies_together(store):
    register(store, data_sha256=store_data(store, "first"))
    register(store, data_sha256=store_data(store, "second"))
    kept = register(store, name="other", data_sha256=store_data(store, "kept"))
    assert store.registry.delete_model("churn") == 2
    assert {artifact.sha256 for artifact in store.artifacts.list()} == {
        kept.artifact.sha256,
        kept.data_sha256,
    }


def test_a_data_copy_missing_when_registering_is_refused_and_registers_nothing(store):
    data = store_data(store)
    store.artifacts.delete(data)  # e.g. deleted with an identical copy by another process meanwhile
    with pytest.raises(
        ArtifactIntegrityError, match=f"training-data copy {data} is not in the artifacts folder"
    ):
        register(store, lineage=engine_lineage(data))
    with pytest.raises(ArtifactIntegrityError, match="store it again"):
        register(store, data_sha256=data)
    assert store.registry.models() == []
