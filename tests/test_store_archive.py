"""Portable export: one zip that imports elsewhere, and refuses to import when altered or hostile."""

from __future__ import annotations

import hashlib
import json
import zipfile

import joblib
import pytest

from store import ArchiveError, InvalidName, Store, read_card

SCHEMA = {"columns": [{"name": "age", "kind": "numeric"}]}
TRAINING_LIBRARIES = {"scikit-learn": "0.0.1-training", "lightgbm": "0.0.2-training"}


@pytest.fixture
def source(tmp_path) -> Store:
    store = Store(tmp_path / "source")
    first = store.registry.register(
        "churn",
        {"weights": [1.0, 2.0]},
        input_schema=SCHEMA,
        task="binary",
        metric_name="roc_auc",
        cv_score=0.9,
        metrics={"cv": {"roc_auc": 0.9}, "test": {"roc_auc": 0.87}},
        params={"max_depth": 4},
        lineage={
            "file_name": "churn.csv",
            "rows": 500,
            "columns": {"age": "numeric"},
            "target": "churned",
            # what the engine records at training time (versions unlike anything installed here)
            "libraries": TRAINING_LIBRARIES,
            "python": "3.11.0-training",
        },
        recipe={"time_budget": 30},
        description="baseline",
        tags={"team": "growth"},
        documents={"evaluation": {"auc": 0.87}},
    )
    store.registry.register(
        "churn", {"weights": [3.0]}, input_schema=SCHEMA, parent=first.ref, job_id="b" * 32
    )
    return store


@pytest.fixture
def target(tmp_path) -> Store:
    return Store(tmp_path / "target")


@pytest.fixture
def archive(source, tmp_path):
    return source.registry.export_version("churn@1.0.0", tmp_path / "out" / "churn.zip")


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rewrite(path, contents: dict[str, bytes], links: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = 0o120777 << 16
            zf.writestr(info, data)


def test_export_import_round_trip_keeps_artifact_metrics_documents_and_lineage(source, target, archive):
    original = source.registry.get("churn@1.0.0")
    imported = target.registry.import_archive(archive)
    assert (imported.name, imported.version) == ("churn", "1.0.0")
    assert imported.artifact.sha256 == original.artifact.sha256
    assert target.registry.load(imported.ref) == {"weights": [1.0, 2.0]}
    for field in (
        "task",
        "metric_name",
        "cv_score",
        "metrics",
        "params",
        "recipe",
        "description",
        "tags",
        "input_schema",
        "schema_fingerprint",
    ):
        assert getattr(imported, field) == getattr(original, field), field
    assert target.registry.documents(imported.ref) == {"evaluation": {"auc": 0.87}}
    assert imported.lineage["rows"] == 500
    assert imported.lineage["imported_from"]["archive"] == "churn.zip"


def test_an_import_is_numbered_by_the_target_registry(source, target, archive, tmp_path):
    assert target.registry.import_archive(archive, name="churn-copy").ref == "churn-copy@1.0.0"
    assert target.registry.import_archive(archive, name="churn-copy").ref == "churn-copy@1.1.0"  # same schema
    child = target.registry.import_archive(
        source.registry.export_version("churn@1.1.0", tmp_path / "child.zip")
    )
    assert child.ref == "churn@1.0.0"
    assert child.parent_version_id is None and child.job_id is None  # ids of another registry
    origin = child.lineage["imported_from"]
    assert (origin["version"], origin["job_id"]) == ("1.1.0", "b" * 32)
    assert origin["parent_version_id"] == source.registry.get("churn@1.0.0").id


def test_the_card_is_readable_without_unpickling(source, archive, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("read_card must not unpickle")

    monkeypatch.setattr(joblib, "load", refuse)
    card = read_card(archive)
    assert (card["name"], card["version"], card["input_schema"], card["task"]) == (
        "churn",
        "1.0.0",
        SCHEMA,
        "binary",
    )
    assert card["artifact"]["sha256"] == source.registry.get("churn@1.0.0").artifact.sha256
    assert card["data_summary"] == {
        "file_name": "churn.csv",
        "rows": 500,
        "columns": {"age": "numeric"},
        "target": "churned",
    }
    assert card["library_versions"] == {"python": "3.11.0-training", **TRAINING_LIBRARIES}
    assert card["metrics"]["test"] == {"roc_auc": 0.87}
    child = read_card(source.registry.export_version("churn@1.1.0", archive.parent / "child.zip"))
    assert "python" in child["library_versions"]  # detected when the lineage has none
    manifest = json.loads(members(archive)["manifest.json"])
    assert manifest["artifact"]["sha256"] == card["artifact"]["sha256"]


@pytest.mark.parametrize(
    ("lineage", "expected"),
    [
        ({"libraries": {"numpy": "2.0.0"}}, {"numpy": "2.0.0"}),
        ({"library_versions": {"numpy": "1.0.0"}}, {"numpy": "1.0.0"}),  # rows written before "libraries"
        (
            {"libraries": {"numpy": "2.0.0"}, "library_versions": {"numpy": "1.0.0"}, "python": "3.12.1"},
            {"python": "3.12.1", "numpy": "2.0.0"},
        ),
    ],
    ids=["libraries", "older-key", "libraries-win"],
)
def test_the_card_states_the_library_versions_of_training_not_of_the_exporting_machine(
    source, tmp_path, lineage, expected
):
    version = source.registry.register("lib", {"m": 1}, input_schema=SCHEMA, lineage=lineage)
    card = read_card(source.registry.export_version(version.ref, tmp_path / "lib.zip"))
    assert card["library_versions"] == expected


def test_an_import_keeps_the_training_data_copy_only_where_the_home_holds_it(source, target, tmp_path):
    data = source.artifacts.save_bytes(b"age,churned\n30,1\n")
    trained = source.registry.register(
        "churn", {"w": 9}, input_schema=SCHEMA, lineage={"data": {"stored_copy_sha256": data.sha256}}
    )
    archive = source.registry.export_version(trained.ref, tmp_path / "with-data.zip")
    assert read_card(archive)["data_sha256"] == data.sha256
    assert not any(member.endswith(".bin") for member in members(archive))  # no training data travels

    elsewhere = target.registry.import_archive(archive)  # another home: the copy is not there
    assert elsewhere.data_sha256 is None
    assert elsewhere.lineage["data"]["stored_copy_sha256"] == data.sha256  # provenance kept as written

    here = source.registry.import_archive(archive, name="churn-copy")  # the home it came from
    assert here.data_sha256 == data.sha256
    source.registry.delete_model("churn")
    assert source.artifacts.load_bytes(data.sha256) == b"age,churned\n30,1\n"  # the copy still uses it
    source.registry.delete_model("churn-copy")
    assert source.artifacts.find(data.sha256) is None


def _flip_artifact(m):
    name = next(n for n in m if n.startswith("artifact/"))
    m[name] = m[name][:-1] + bytes([m[name][-1] ^ 1])


def _edit_card(m, change, keep_hash=False):
    card = json.loads(m["model_card.json"])
    change(card)
    m["model_card.json"] = json.dumps(card).encode()
    if keep_hash:
        manifest = json.loads(m["manifest.json"])
        manifest["card"]["sha256"] = hashlib.sha256(m["model_card.json"]).hexdigest()
        m["manifest.json"] = json.dumps(manifest).encode()


def _set_manifest(m, change):
    manifest = json.loads(m["manifest.json"])
    change(manifest)
    m["manifest.json"] = json.dumps(manifest).encode()


def _raw_card(m, data: bytes):
    m["model_card.json"] = data
    _set_manifest(m, lambda manifest: manifest["card"].update(sha256=hashlib.sha256(data).hexdigest()))


HOSTILE = [
    ("tampered-artifact", _flip_artifact, (), "hashes to .* the manifest expects .* the archive was altered"),
    (
        "tampered-card",
        lambda m: _edit_card(m, lambda c: c.update(task="regression")),
        (),
        "model card .* the archive was altered",
    ),
    (
        "card-names-other-artifact",
        lambda m: _edit_card(m, lambda c: c["artifact"].update(sha256="0" * 64), keep_hash=True),
        (),
        "the model card names artifact",
    ),
    ("card-not-json", lambda m: _raw_card(m, b"{not json"), (), "model_card.json is not valid JSON"),
    ("card-not-object", lambda m: _raw_card(m, b"[1, 2]"), (), "must be a JSON object with a 'name'"),
    (
        "card-artifact-not-object",
        lambda m: _edit_card(m, lambda c: c.update(artifact="x"), keep_hash=True),
        (),
        "the model card names artifact None",
    ),
    (
        "card-lineage-not-object",
        lambda m: _edit_card(m, lambda c: c.update(lineage=[1, 2]), keep_hash=True),
        (),
        "the model card's 'lineage' must be a JSON object, got list",
    ),
    (
        "card-metrics-not-object",
        lambda m: _edit_card(m, lambda c: c.update(metrics="high"), keep_hash=True),
        (),
        "the model card's 'metrics' must be a JSON object, got str",
    ),
    (
        "card-task-not-text",
        lambda m: _edit_card(m, lambda c: c.update(task={"a": 1}), keep_hash=True),
        (),
        "the model card's 'task' must be a string, got dict",
    ),
    (
        "bad-card-name",
        lambda m: _edit_card(m, lambda c: c.update(name="../../evil"), keep_hash=True),
        (),
        None,
    ),
    ("no-manifest", lambda m: m.pop("manifest.json"), (), "has no manifest.json"),
    (
        "manifest-not-json",
        lambda m: m.update({"manifest.json": b"\x00"}),
        (),
        "manifest.json is not valid JSON",
    ),
    (
        "foreign-format",
        lambda m: _set_manifest(m, lambda x: x.update(format="other")),
        (),
        "does not declare format",
    ),
    (
        "future-format",
        lambda m: _set_manifest(m, lambda x: x.update(format_version=2)),
        (),
        "format version 2 is not supported",
    ),
    (
        "documents-not-object",
        lambda m: _set_manifest(m, lambda x: x.update(documents=["evaluation"])),
        (),
        "the 'documents' entry of manifest.json must be an object",
    ),
    (
        "manifest-without-artifact",
        lambda m: _set_manifest(m, lambda x: x.pop("artifact")),
        (),
        "lacks its 'artifact' entry",
    ),
    (
        "artifact-entry-incomplete",
        lambda m: _set_manifest(m, lambda x: x["artifact"].pop("sha256")),
        (),
        "needs 'member' and 'sha256'",
    ),
    (
        "artifact-not-a-model-file",
        lambda m: _set_manifest(m, lambda x: x["artifact"].update(member="artifact/x.sh")),
        (),
        "must end in .joblib or .bin",
    ),
    (
        "artifact-missing",
        lambda m: [m.pop(n) for n in list(m) if n.startswith("artifact/")],
        (),
        "lacks its artifact member",
    ),
    ("card-missing", lambda m: m.pop("model_card.json"), (), "lacks member 'model_card.json'"),
    (
        "tampered-document",
        lambda m: m.update({"documents/evaluation.json": b'{"auc": 1.0}'}),
        (),
        "document 'evaluation'",
    ),
    (
        "unlisted-member",
        lambda m: m.update({"documents/extra.json": b"{}"}),
        (),
        "'documents/extra.json' is not listed",
    ),
    ("traversal", lambda m: m.update({"../evil.py": b"x"}), (), "member '../evil.py' is unsafe"),
    ("absolute", lambda m: m.update({"/etc/cron.d/evil": b"x"}), (), "is unsafe"),
    ("backslash", lambda m: m.update({"..\\evil.py": b"x"}), (), "is unsafe"),
    ("drive-letter", lambda m: m.update({"C:/evil.py": b"x"}), (), "is unsafe"),
    ("symlink", lambda m: m.update({"documents/link": b"/etc/passwd"}), ("documents/link",), "is unsafe"),
]


@pytest.mark.parametrize(
    ("mutate", "links", "message"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_an_altered_or_hostile_archive_is_refused_and_leaves_the_registry_unchanged(
    target, archive, mutate, links, message
):
    contents = members(archive)
    mutate(contents)
    rewrite(archive, contents, links)
    error = InvalidName if message is None else ArchiveError
    with pytest.raises(error, match=message or "model name '../../evil' is invalid"):
        target.registry.import_archive(archive)
    assert target.registry.models() == []
    assert list(target.artifacts.root.iterdir()) == []


def test_duplicate_members_are_refused(target, archive):
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr("manifest.json", b"{}")
    with pytest.raises(ArchiveError, match="appears twice"):
        target.registry.import_archive(archive)


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "absent.zip", "does not exist"),
        (
            lambda tmp: (tmp / "text.zip").write_text("not a zip") and tmp / "text.zip",
            "is not a readable zip file",
        ),
    ],
    ids=["missing", "not-a-zip"],
)
def test_unreadable_archives_are_refused(target, tmp_path, make_path, message):
    with pytest.raises(ArchiveError, match=message):
        target.registry.import_archive(make_path(tmp_path))
    with pytest.raises(ArchiveError, match=message):
        read_card(make_path(tmp_path))


def test_export_refuses_a_tampered_artifact(source, tmp_path):
    from store import ArtifactIntegrityError

    version = source.registry.get("churn@1.0.0")
    version.artifact.path.write_bytes(b"not the model")
    with pytest.raises(ArtifactIntegrityError, match="does not match its record"):
        source.registry.export_version(version.ref, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
