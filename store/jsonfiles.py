"""JSON on disk: one encoder for user dicts, atomic file replacement, and torn-line-tolerant JSONL.

Lineage, metrics and monitoring records arrive with numpy scalars, NaN and datetimes; encoding them
in one place keeps every file and JSON column strictly valid JSON. JSONL readers stop before a
half-written last line (its writer may still be appending), so polling from a byte offset never
loses or duplicates an event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """A copy of `obj` made of plain JSON types: NaN/inf become None, numpy and datetimes are converted."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((to_jsonable(value) for value in obj), key=repr)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, pandas arrays
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    return str(obj)


def dumps(obj: Any, *, canonical: bool = False) -> str:
    """Strict JSON text of `obj`; `canonical=True` sorts keys and drops spaces so equal data hash equally."""
    if canonical:
        return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    try:  # plain data (most log records) needs no conversion pass: about twice as fast
        return json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(to_jsonable(obj), allow_nan=False)


def loads(text: str | bytes | None, default: Any = None) -> Any:
    """Parse JSON text, returning `default` for NULL columns."""
    return default if text is None else json.loads(text)


def fingerprint(obj: Any) -> str:
    """SHA-256 of the canonical JSON of `obj` (used for input-schema comparison)."""
    return hashlib.sha256(dumps(obj, canonical=True).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically replace `path` with the JSON of `obj`."""
    atomic_write_bytes(path, dumps(obj).encode())


def fsync_dir(folder: Path) -> None:
    """Persist a rename inside `folder` (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_jsonl(path: Path, records: Iterable[Any]) -> int:
    """Append records as complete lines in one write; returns the number of bytes written."""
    data = "".join(dumps(record) + "\n" for record in records).encode()
    if data:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
    return len(data)


def read_jsonl(path: Path, offset: int = 0) -> tuple[list[Any], int]:
    """Records from byte `offset` to the last complete line, and the offset to resume from.

    A last line without its newline is left for the next call; a complete line that is not JSON
    (a torn write from a killed process followed by new lines) is skipped.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        parsed = _parse_line(line)
        if parsed is not None:
            records.append(parsed)
    return records, offset + end


def last_jsonl(path: Path, predicate: Callable[[Any], bool], chunk_size: int = 65536) -> Any | None:
    """The last complete record satisfying `predicate`, reading the file backwards in chunks."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        position = handle.seek(0, os.SEEK_END)
        buffer = b""
        in_unterminated_line = True  # bytes after the last newline are still being written
        while position > 0:
            step = min(chunk_size, position)
            position -= step
            handle.seek(position)
            buffer = handle.read(step) + buffer
            if in_unterminated_line:
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    continue
                buffer, in_unterminated_line = buffer[: cut + 1], False
            lines = buffer.split(b"\n")
            # the first piece may be cut by the chunk boundary unless the file start is reached
            buffer, lines = (lines[0], lines[1:]) if position > 0 else (b"", lines)
            for line in reversed(lines):
                parsed = _parse_line(line)
                if parsed is not None and predicate(parsed):
                    return parsed
    return None


def _parse_line(line: bytes) -> Any | None:
    line = line.strip()
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None
