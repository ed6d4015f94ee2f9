"""Names and references: what a model name, an alias and a `NAME[@VERSION|@ALIAS]` reference may be.

Validated where they enter (register, set_alias, resolve), so every later query can trust them:

- model name: letters, digits, `-`, `_`, `.`; 1-64 characters, starting with a letter or digit;
- alias: `[a-z][a-z0-9_-]*` (at most 64 characters); `latest` is reserved (always the newest version);
- reference: `NAME` (latest version), `NAME@1.2.0` (exact version), `NAME@production` (alias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from store.errors import InvalidName, InvalidRequest

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
VERSION_PATTERN = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
DOCUMENT_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
LATEST = "latest"


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of `version` and `alias` is set, or neither (latest)."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        suffix = self.version or self.alias
        return f"{self.name}@{suffix}" if suffix else self.name


def validate_model_name(name: str) -> str:
    """Return `name` if it is a valid model name, else raise `InvalidName` saying what is allowed."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.match(name):
        raise InvalidName(
            f"model name {name!r} is invalid: expected 1-64 characters of letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: str, *, allow_latest: bool = False) -> str:
    """Return `alias` if it is a valid alias name, else raise `InvalidName`."""
    if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias):
        raise InvalidName(
            f"alias {alias!r} is invalid: expected lowercase letters, digits, '_' or '-', starting with a letter"
        )
    if alias == LATEST and not allow_latest:
        raise InvalidName(f"alias {LATEST!r} is reserved: it always means the newest version")
    return alias


def validate_document_kind(kind: str) -> str:
    """Return `kind` if it is a valid document kind (like an alias, dots allowed), else raise `InvalidName`."""
    if not isinstance(kind, str) or not DOCUMENT_KIND_PATTERN.match(kind):
        raise InvalidName(
            f"document kind {kind!r} is invalid: expected lowercase letters, digits, '_', '-' or '.', "
            "starting with a letter"
        )
    return kind


def parse_version(version: str) -> tuple[int, int, int]:
    """`'1.2.0'` -> `(1, 2, 0)`; raises `InvalidRequest` for anything but MAJOR.MINOR.PATCH."""
    match = VERSION_PATTERN.match(version) if isinstance(version, str) else None
    if not match:
        raise InvalidRequest(f"version {version!r} is invalid: expected MAJOR.MINOR.PATCH such as '1.2.0'")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def format_version(major: int, minor: int, patch: int) -> str:
    return f"{major}.{minor}.{patch}"


def parse_ref(ref: str | ModelRef) -> ModelRef:
    """Parse `NAME`, `NAME@1.2.0` or `NAME@alias`; raises `InvalidRequest`/`InvalidName` otherwise."""
    if isinstance(ref, ModelRef):
        return ref
    if not isinstance(ref, str) or not ref:
        raise InvalidRequest(f"model reference {ref!r} is invalid: expected NAME, NAME@1.2.0 or NAME@alias")
    name, sep, suffix = ref.partition("@")
    validate_model_name(name)
    if not sep:
        return ModelRef(name)
    if VERSION_PATTERN.match(suffix):
        return ModelRef(name, version=suffix)
    if suffix == LATEST:
        return ModelRef(name)
    if ALIAS_PATTERN.match(suffix):
        return ModelRef(name, alias=suffix)
    raise InvalidRequest(
        f"model reference {ref!r} is invalid: after '@' expected a version like 1.2.0 or an alias like production"
    )
