"""The portable model archive: one zip with the artifact, a readable model card and a manifest.

    manifest.json             format, and the SHA-256 of every other member
    model_card.json           name, version, task, metrics, input schema, lineage, data summary,
                              library versions of training (those installed at export when the
                              lineage has none): readable without unpickling anything
    artifact/<sha256>.joblib  the pickled model, byte for byte as stored in the registry
    documents/<kind>.json     cached documents of the version (evaluation, importance, ...)

Reading is defensive because archives come from elsewhere: members must have plain relative names
(no absolute paths, `..`, backslashes or symlinks), every member the manifest lists must be present
and hash as declared, and JSON members are size-capped. A matching hash proves the archive is intact,
not that its pickle is trustworthy: import only archives from people you trust.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.registry import ModelVersion

from store.errors import ArchiveError
from store.jsonfiles import dumps
from store.refs import validate_document_kind

ARCHIVE_FORMAT = "automl-model-archive"
ARCHIVE_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CARD = "model_card.json"
MAX_JSON_MEMBER_BYTES = 64 * 1024 * 1024
_LIBRARIES = ("scikit-learn", "lightgbm", "xgboost", "xgboost-cpu", "numpy", "pandas", "scipy", "joblib")
_DATA_SUMMARY_KEYS = ("dataset_fingerprint", "file_name", "rows", "columns", "target")


@dataclass(frozen=True)
class ArchiveContents:
    """A verified archive: card, documents and where the (already hash-checked) artifact member is."""

    path: Path
    manifest: dict[str, Any]
    card: dict[str, Any]
    documents: dict[str, Any]
    artifact_member: str
    artifact_sha256: str
    artifact_size: int

    def open_artifact(self) -> IO[bytes]:
        """A stream over the artifact member; the caller closes it (and re-checks the hash on copy)."""
        archive = zipfile.ZipFile(self.path)
        stream = archive.open(self.artifact_member)
        stream_close = stream.close

        def close() -> None:
            stream_close()
            archive.close()

        stream.close = close  # type: ignore[method-assign]
        return stream


def model_card(version: ModelVersion) -> dict[str, Any]:
    """The human- and machine-readable summary of a version that travels in an export zip."""
    lineage = version.lineage
    data = (
        lineage.get("data")
        if isinstance(lineage.get("data"), dict)
        else {key: lineage[key] for key in _DATA_SUMMARY_KEYS if key in lineage}
    )
    return {
        "name": version.name,
        "version": version.version,
        "version_id": version.id,
        "created_at": version.created_at.isoformat(),
        "description": version.description,
        "tags": version.tags,
        "task": version.task,
        "metric_name": version.metric_name,
        "cv_score": version.cv_score,
        "metrics": version.metrics,
        "params": version.params,
        "input_schema": version.input_schema,
        "schema_fingerprint": version.schema_fingerprint,
        "lineage": lineage,
        "recipe": version.recipe,
        "parent_version_id": version.parent_version_id,
        "job_id": version.job_id,
        "data_summary": data,
        "library_versions": training_library_versions(lineage) or installed_library_versions(),
        "data_sha256": version.data_sha256,
        "artifact": {
            "sha256": version.artifact.sha256,
            "size": version.artifact.size,
            "file": version.artifact.file,
        },
    }


def training_library_versions(lineage: Mapping[str, Any]) -> dict[str, str] | None:
    """The library versions recorded when the version was trained, or None when its lineage has none.

    The engine records `lineage["libraries"]` (package -> version) and `lineage["python"]`; rows
    written before that used `lineage["library_versions"]`.
    """
    libraries = lineage.get("libraries") or lineage.get("library_versions")
    if not isinstance(libraries, Mapping) or not libraries:
        return None
    python = lineage.get("python")
    return {**({"python": python} if isinstance(python, str) else {}), **libraries}


def installed_library_versions() -> dict[str, str]:
    """Versions of Python and the ML libraries installed here, read from metadata (nothing imported)."""
    found = {"python": platform.python_version()}
    for library in _LIBRARIES:
        try:
            found[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def write_archive(
    out_path: str | Path,
    *,
    card: Mapping[str, Any],
    artifact_path: Path,
    artifact_sha256: str,
    documents: Mapping[str, Any] | None = None,
) -> Path:
    """Write the zip atomically (temp file + rename) and return its path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    card_bytes = (dumps(card) + "\n").encode()
    artifact_member = f"artifact/{artifact_sha256}{artifact_path.suffix}"
    manifest: dict[str, Any] = {
        "format": ARCHIVE_FORMAT,
        "format_version": ARCHIVE_FORMAT_VERSION,
        "card": {"member": CARD, "sha256": hashlib.sha256(card_bytes).hexdigest()},
        "artifact": {
            "member": artifact_member,
            "sha256": artifact_sha256,
            "size": artifact_path.stat().st_size,
        },
        "documents": {},
    }
    document_bytes = {}
    for kind, content in (documents or {}).items():
        data = dumps(content).encode()
        member = f"documents/{validate_document_kind(kind)}.json"
        document_bytes[member] = data
        manifest["documents"][kind] = {"member": member, "sha256": hashlib.sha256(data).hexdigest()}
    fd, temp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(temp_name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
            archive.writestr(CARD, card_bytes)
            archive.write(artifact_path, artifact_member, compress_type=zipfile.ZIP_STORED)
            for member, data in document_bytes.items():
                archive.writestr(member, data)
        os.replace(temp_name, out_path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return out_path


def read_card(path: str | Path) -> dict[str, Any]:
    """The model card of an archive, hash-checked against the manifest, without unpickling anything."""
    path = Path(path)
    with _open_zip(path) as archive:
        manifest = _read_manifest(path, archive)
        return _read_json_member(path, archive, manifest["card"], "model card")


def open_archive(path: str | Path) -> ArchiveContents:
    """Verify every member of an archive (names, hashes, JSON) and return what it holds."""
    path = Path(path)
    with _open_zip(path) as archive:
        manifest = _read_manifest(path, archive)
        card = _read_json_member(path, archive, manifest["card"], "model card")
        if not isinstance(card, dict) or not isinstance(card.get("name"), str):
            raise ArchiveError(f"archive {path}: the model card must be a JSON object with a 'name'")
        artifact = manifest["artifact"]
        _check_entry(path, artifact, "artifact")
        if PurePosixPath(artifact["member"]).suffix not in (".joblib", ".bin"):
            raise ArchiveError(
                f"archive {path}: artifact member {artifact['member']!r} must end in .joblib or .bin"
            )
        digest = hashlib.sha256()
        size = 0
        try:
            with archive.open(artifact["member"]) as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except KeyError:
            raise ArchiveError(f"archive {path} lacks its artifact member {artifact['member']!r}") from None
        except (zipfile.BadZipFile, OSError) as error:
            raise ArchiveError(
                f"archive {path}: artifact {artifact['member']!r} cannot be read ({error})"
            ) from None
        if digest.hexdigest() != artifact["sha256"]:
            raise ArchiveError(
                f"archive {path}: artifact {artifact['member']} hashes to {digest.hexdigest()}, "
                f"the manifest expects {artifact['sha256']}; the archive was altered"
            )
        card_artifact = card.get("artifact")
        card_sha = card_artifact.get("sha256") if isinstance(card_artifact, dict) else None
        if card_sha != artifact["sha256"]:
            raise ArchiveError(
                f"archive {path}: the model card names artifact {card_sha}, the manifest {artifact['sha256']}"
            )
        documents = {}
        for kind, entry in (manifest.get("documents") or {}).items():
            validate_document_kind(kind)
            documents[kind] = _read_json_member(path, archive, entry, f"document {kind!r}")
        listed = {MANIFEST, manifest["card"]["member"], artifact["member"]} | {
            entry["member"] for entry in (manifest.get("documents") or {}).values()
        }
        for name in archive.namelist():
            if name not in listed and not name.endswith("/"):
                raise ArchiveError(f"archive {path}: member {name!r} is not listed in the manifest")
        return ArchiveContents(
            path=path,
            manifest=manifest,
            card=card,
            documents=documents,
            artifact_member=artifact["member"],
            artifact_sha256=artifact["sha256"],
            artifact_size=size,
        )


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(f"archive {path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"archive {path} is not a readable zip file ({error})") from None
    names = set()
    for info in archive.infolist():
        if not _is_safe_member(info):
            archive.close()
            raise ArchiveError(
                f"archive {path}: member {info.filename!r} is unsafe; expected plain relative file names "
                "without '..', absolute paths, backslashes or links"
            )
        if info.filename in names:
            archive.close()
            raise ArchiveError(f"archive {path}: member {info.filename!r} appears twice")
        names.add(info.filename)
    return archive


def _is_safe_member(info: zipfile.ZipInfo) -> bool:
    name = info.filename
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name:
        return False
    parts = PurePosixPath(name).parts
    if any(part in ("..", ".") for part in parts) or PurePosixPath(name).is_absolute():
        return False
    mode = info.external_attr >> 16
    return not stat.S_ISLNK(mode)


def _read_manifest(path: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    if MANIFEST not in archive.namelist():
        raise ArchiveError(f"archive {path} has no {MANIFEST}; expected an export of this workbench")
    manifest = _parse_json(path, _read_capped(path, archive, MANIFEST), MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"archive {path}: {MANIFEST} does not declare format {ARCHIVE_FORMAT!r}")
    if manifest.get("format_version") != ARCHIVE_FORMAT_VERSION:
        raise ArchiveError(
            f"archive {path}: format version {manifest.get('format_version')!r} is not supported "
            f"(expected {ARCHIVE_FORMAT_VERSION})"
        )
    for key in ("card", "artifact"):
        if not isinstance(manifest.get(key), dict):
            raise ArchiveError(f"archive {path}: {MANIFEST} lacks its {key!r} entry")
    if not isinstance(manifest.get("documents") or {}, dict):
        raise ArchiveError(f"archive {path}: the 'documents' entry of {MANIFEST} must be an object")
    return manifest


def _check_entry(path: Path, entry: Any, what: str) -> None:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("member"), str)
        or not isinstance(entry.get("sha256"), str)
    ):
        raise ArchiveError(f"archive {path}: the manifest entry of the {what} needs 'member' and 'sha256'")


def _read_json_member(path: Path, archive: zipfile.ZipFile, entry: Any, what: str) -> Any:
    _check_entry(path, entry, what)
    data = _read_capped(path, archive, entry["member"])
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry["sha256"]:
        raise ArchiveError(
            f"archive {path}: {what} ({entry['member']}) hashes to {actual}, the manifest expects "
            f"{entry['sha256']}; the archive was altered"
        )
    return _parse_json(path, data, entry["member"])


def _read_capped(path: Path, archive: zipfile.ZipFile, member: str) -> bytes:
    try:
        with archive.open(member) as stream:
            data = stream.read(MAX_JSON_MEMBER_BYTES + 1)
    except KeyError:
        raise ArchiveError(f"archive {path} lacks member {member!r} listed in its manifest") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"archive {path}: member {member!r} cannot be read ({error})") from None
    if len(data) > MAX_JSON_MEMBER_BYTES:
        raise ArchiveError(f"archive {path}: member {member!r} exceeds {MAX_JSON_MEMBER_BYTES} bytes")
    return data


def _parse_json(path: Path, data: bytes, member: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as error:
        raise ArchiveError(f"archive {path}: {member} is not valid JSON ({error})") from None
