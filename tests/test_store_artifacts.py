"""Content-addressed artifacts: atomic writes, and no load without a matching SHA-256."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from store import ArtifactIntegrityError, ArtifactRef, ArtifactStore


@pytest.fixture
def artifacts(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def flip_a_byte(path, position: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_saved_object_is_named_after_the_hash_of_its_file_and_loads_back(artifacts):
    ref = artifacts.save({"coef": np.arange(4.0)})
    assert ref.path.name == f"{ref.sha256}.joblib"
    assert hashlib.sha256(ref.path.read_bytes()).hexdigest() == ref.sha256
    assert ref.size == ref.path.stat().st_size
    loaded = artifacts.load(ref)
    np.testing.assert_array_equal(loaded["coef"], np.arange(4.0))
    assert artifacts.load(ref.sha256, expected_sha256=ref.sha256)["coef"].sum() == 6.0


def test_equal_content_is_stored_once_and_leaves_no_temp_files(artifacts):
    first, second = artifacts.save([1, 2, 3]), artifacts.save([1, 2, 3])
    assert first == second
    assert [p.name for p in artifacts.root.iterdir()] == [first.file]


def test_raw_bytes_round_trip_without_pickle(artifacts):
    ref = artifacts.save_bytes(b"<html>report</html>")
    assert ref.path.suffix == ".bin"
    assert artifacts.load_bytes(ref) == b"<html>report</html>"
    assert artifacts.find(ref.sha256) == ref
    assert artifacts.verify(ref.sha256) == ref


def test_a_tampered_artifact_is_refused_and_never_unpickled(artifacts):
    ref = artifacts.save({"model": "trusted"})
    flip_a_byte(ref.path)
    with pytest.raises(
        ArtifactIntegrityError, match=f"{ref.path}.*expected SHA-256 {ref.sha256}, actual [0-9a-f]{{64}}"
    ):
        artifacts.load(ref)
    with pytest.raises(ArtifactIntegrityError, match="does not match its record"):
        artifacts.verify(ref)


def test_a_file_swapped_for_another_valid_pickle_is_refused(artifacts):
    trusted, other = artifacts.save("trusted"), artifacts.save("evil")
    trusted.path.write_bytes(other.path.read_bytes())
    with pytest.raises(ArtifactIntegrityError, match=f"actual {other.sha256}"):
        artifacts.load(trusted)


def test_a_stream_is_kept_only_when_it_hashes_as_announced(artifacts):
    data = b"payload"
    good = artifacts.save_stream(
        io.BytesIO(data), suffix=".bin", expected_sha256=hashlib.sha256(data).hexdigest()
    )
    assert artifacts.load_bytes(good) == data
    with pytest.raises(ArtifactIntegrityError, match="not stored"):
        artifacts.save_stream(io.BytesIO(b"other"), suffix=".bin", expected_sha256=good.sha256)
    assert [p.name for p in artifacts.root.iterdir()] == [good.file]


def test_listing_and_deleting(artifacts):
    ref = artifacts.save(1)
    assert artifacts.list() == [ref]
    assert artifacts.delete(ref.sha256) is True
    assert artifacts.delete(ref.sha256) is False
    assert artifacts.find(ref.sha256) is None
    assert artifacts.stale_temp_files(0) == []


def test_a_symlink_inside_the_folder_pointing_outside_is_refused(artifacts, tmp_path):
    outside = tmp_path / "outside.joblib"
    ref = artifacts.save("x")
    outside.write_bytes(ref.path.read_bytes())
    ref.path.unlink()
    ref.path.symlink_to(outside)
    with pytest.raises(ArtifactIntegrityError, match="outside the artifacts folder"):
        artifacts.load(ref)


@pytest.mark.parametrize(
    ("make_ref", "message"),
    [
        (lambda root: "../../etc/passwd", "expected a SHA-256 as 64 lowercase hex characters"),
        (lambda root: "A" * 64, "expected a SHA-256"),
        (
            lambda root: ArtifactRef("0" * 64, 1, root.parent / "elsewhere.joblib"),
            "outside the artifacts folder",
        ),
        (lambda root: ArtifactRef("0" * 64, 1, root / ".." / "x.joblib"), "outside the artifacts folder"),
        (lambda root: "0" * 64, "is missing; expected a file with SHA-256 0{64}"),
        (lambda root: ArtifactRef("0" * 64, 1, root / ("0" * 64 + ".joblib")), "is missing"),
    ],
    ids=["traversal", "uppercase", "outside", "dotdot", "missing-sha", "missing-ref"],
)
def test_bad_references_are_refused_with_a_clear_error(artifacts, make_ref, message):
    artifacts.root.mkdir(parents=True, exist_ok=True)
    with pytest.raises(ArtifactIntegrityError, match=message):
        artifacts.load(make_ref(artifacts.root))


def test_verify_reports_a_missing_file(artifacts):
    with pytest.raises(ArtifactIntegrityError, match="is missing"):
        artifacts.verify("1" * 64)


def test_only_known_suffixes_are_accepted_for_streams(artifacts):
    with pytest.raises(ValueError, match="artifact suffix must be"):
        artifacts.save_stream(io.BytesIO(b""), suffix=".exe")


def test_a_temp_file_renamed_into_place_while_listing_is_not_stale(artifacts, monkeypatch):
    artifacts.root.mkdir(parents=True)
    (artifacts.root / ".incoming-dead.joblib").write_bytes(b"partial")
    listed = list(artifacts.root.iterdir()) + [artifacts.root / ".incoming-renamed-meanwhile.joblib"]
    monkeypatch.setattr(type(artifacts.root), "iterdir", lambda self: iter(listed))
    assert [path.name for path in artifacts.stale_temp_files(0)] == [".incoming-dead.joblib"]
