"""Content-addressed artifact files: written atomically, loaded only after their hash checks out.

A file is named after the SHA-256 of its bytes (`<sha256>.joblib` for pickled objects, `<sha256>.bin`
for raw bytes), so equal content is stored once and a name can be trusted only as far as its bytes
hash to it. Loading reads the bytes, recomputes the hash against the one the caller trusts (the
registry row), and only then unpickles, from memory: a swapped or corrupted file raises
`ArtifactIntegrityError` and is never unpickled. Only files inside this artifacts folder are read.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from store.errors import ArtifactIntegrityError
from store.jsonfiles import fsync_dir

PICKLE_SUFFIX = ".joblib"
BYTES_SUFFIX = ".bin"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".incoming-"


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact lives and what its bytes hash to."""

    sha256: str
    size: int
    path: Path

    @property
    def file(self) -> str:
        """The file name inside the artifacts folder (what the database stores)."""
        return self.path.name


def sha256_of_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ArtifactStore:
    """The `artifacts/` folder of a home."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def save(self, obj: Any, *, compress: int = 3) -> ArtifactRef:
        """Pickle `obj` with joblib into a content-addressed file (temp file, fsync, atomic rename)."""
        import joblib  # imported on use: `import store` stays light for the server and CLI

        return self._store(lambda handle: joblib.dump(obj, handle, compress=compress), PICKLE_SUFFIX)

    def save_bytes(self, data: bytes) -> ArtifactRef:
        """Store raw bytes (reports, archives, anything that is not a pickle)."""
        return self._store(lambda handle: handle.write(data), BYTES_SUFFIX)

    def save_stream(
        self, stream: BinaryIO, *, suffix: str = PICKLE_SUFFIX, expected_sha256: str | None = None
    ) -> ArtifactRef:
        """Copy a binary stream (e.g. a zip member) into a content-addressed file.

        With `expected_sha256` the copy is kept only if its bytes hash to it, so an untrusted source
        can never replace or add a file under a hash it does not have.
        """
        if suffix not in (PICKLE_SUFFIX, BYTES_SUFFIX):
            raise ValueError(f"artifact suffix must be {PICKLE_SUFFIX!r} or {BYTES_SUFFIX!r}, got {suffix!r}")

        def copy(handle: BinaryIO) -> None:
            while chunk := stream.read(1 << 20):
                handle.write(chunk)

        return self._store(copy, suffix, expected_sha256)

    def load(self, ref: ArtifactRef | str, expected_sha256: str | None = None) -> Any:
        """Unpickle an artifact after checking its bytes hash to `expected_sha256` (default: the ref's)."""
        data = self.load_bytes(ref, expected_sha256)
        import joblib

        return joblib.load(io.BytesIO(data))

    def load_bytes(self, ref: ArtifactRef | str, expected_sha256: str | None = None) -> bytes:
        """The verified bytes of an artifact; raises `ArtifactIntegrityError` on any mismatch."""
        path, expected = self._locate(ref, expected_sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactIntegrityError(
                f"artifact file {path} is missing; expected a file with SHA-256 {expected}"
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ArtifactIntegrityError(
                f"artifact file {path} does not match its record: expected SHA-256 {expected}, "
                f"actual {actual}; refusing to load it"
            )
        return data

    def verify(self, ref: ArtifactRef | str, expected_sha256: str | None = None) -> ArtifactRef:
        """Hash the file without loading it; returns a fresh ref or raises `ArtifactIntegrityError`."""
        path, expected = self._locate(ref, expected_sha256)
        if not path.is_file():
            raise ArtifactIntegrityError(f"artifact file {path} is missing; expected SHA-256 {expected}")
        actual, size = sha256_of_file(path)
        if actual != expected:
            raise ArtifactIntegrityError(
                f"artifact file {path} does not match its record: expected SHA-256 {expected}, actual {actual}"
            )
        return ArtifactRef(actual, size, path)

    def find(self, sha256: str) -> ArtifactRef | None:
        """The stored file for a hash (either suffix), or None; does not verify the bytes."""
        _check_sha(sha256)
        for suffix in (PICKLE_SUFFIX, BYTES_SUFFIX):
            path = self.root / f"{sha256}{suffix}"
            if path.is_file():
                return ArtifactRef(sha256, path.stat().st_size, path)
        return None

    def path_of(self, file: str) -> Path:
        """The absolute path of a file name recorded in the database, refused if it leaves the folder."""
        path = (self.root / file).resolve()
        if path.parent != self.root:
            raise ArtifactIntegrityError(
                f"artifact path {file!r} resolves to {path}, outside the artifacts folder {self.root}"
            )
        return path

    def delete(self, sha256: str) -> bool:
        """Remove the file(s) of a hash; the caller checks that nothing references it any more."""
        _check_sha(sha256)
        removed = False
        for suffix in (PICKLE_SUFFIX, BYTES_SUFFIX):
            path = self.root / f"{sha256}{suffix}"
            if path.exists():
                path.unlink()
                removed = True
        return removed

    def list(self) -> list[ArtifactRef]:
        """Every artifact file (not verified), for garbage collection and audits."""
        if not self.root.is_dir():
            return []
        refs = []
        for path in sorted(self.root.iterdir()):
            stem, suffix = path.stem, path.suffix
            if suffix in (PICKLE_SUFFIX, BYTES_SUFFIX) and _SHA256.match(stem) and path.is_file():
                refs.append(ArtifactRef(stem, path.stat().st_size, path))
        return refs

    def stale_temp_files(self, min_age_seconds: float) -> list[Path]:
        """Temp files left by writers killed mid-save, older than `min_age_seconds`."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - min_age_seconds
        stale = []
        for path in self.root.iterdir():
            if not path.name.startswith(_TEMP_PREFIX):
                continue
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:  # its writer renamed it into place meanwhile (writers take no lock)
                continue
            if modified < cutoff:
                stale.append(path)
        return stale

    def _store(self, write, suffix: str, expected_sha256: str | None = None) -> ArtifactRef:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=self.root, prefix=_TEMP_PREFIX, suffix=suffix)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            sha256, size = sha256_of_file(temp)
            if expected_sha256 is not None and sha256 != expected_sha256:
                raise ArtifactIntegrityError(
                    f"incoming artifact hashes to {sha256}, expected SHA-256 {expected_sha256}; not stored"
                )
            final = self.root / f"{sha256}{suffix}"
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(self.root)
        return ArtifactRef(sha256, size, final)

    def _locate(self, ref: ArtifactRef | str, expected_sha256: str | None) -> tuple[Path, str]:
        if isinstance(ref, ArtifactRef):
            path = self.path_of(str(ref.path))
            expected = expected_sha256 or ref.sha256
        else:
            _check_sha(ref)
            found = self.find(ref)
            path = found.path if found else self.root / f"{ref}{PICKLE_SUFFIX}"
            expected = expected_sha256 or ref
        _check_sha(expected)
        return path, expected


def _check_sha(value: str) -> None:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ArtifactIntegrityError(f"expected a SHA-256 as 64 lowercase hex characters, got {value!r}")
