"""The routing snapshot: what the prediction server needs per request, without opening the database.

The registry rewrites `routing.json` atomically (temp file, fsync, rename) after every change of
versions, aliases or deployments, while it still holds the database lock, so snapshots are written
in commit order. The server keeps a `RoutingReader` and calls `current()` per request: one `stat`,
and a re-parse only when the file changed. Layout (format 1):

    {"format": 1, "generated_at": "...", "models": {NAME: {
        "latest": "1.1.0",
        "aliases": {"production": "1.0.0"},
        "deployment": null | {"champion": "NAME@production", "champion_version": "1.0.0",
                              "challenger": "NAME@1.1.0" | null, "challenger_version": "1.1.0" | null,
                              "mode": "ab" | "shadow", "challenger_weight": 0.1},
        "versions": {"1.0.0": {"id", "sha256", "file", "size", "task", "metric_name",
                               "schema_fingerprint", "input_schema"}}}}}
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.errors import NotFound
from store.refs import ModelRef, parse_ref

ROUTING_FORMAT = 1


@dataclass(frozen=True)
class RoutedVersion:
    """One version as the server sees it: enough to find, verify and validate the artifact."""

    name: str
    version: str
    version_id: str
    sha256: str
    file: str
    size: int
    task: str | None
    metric_name: str | None
    schema_fingerprint: str
    input_schema: Any

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class RoutedDeployment:
    """The live deployment of a model, with references already resolved to versions."""

    name: str
    champion: RoutedVersion
    challenger: RoutedVersion | None
    mode: str
    challenger_weight: float


class RoutingSnapshot:
    """A parsed `routing.json`; resolves references exactly like the registry does."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data = data or {"format": ROUTING_FORMAT, "models": {}}
        self.models: dict[str, Any] = self.data.get("models", {})

    def resolve(self, ref: str | ModelRef) -> RoutedVersion:
        """The version a reference points to; `NotFound` names what exists."""
        parsed = parse_ref(ref)
        model = self.models.get(parsed.name)
        if model is None:
            raise NotFound("model", parsed.name, self.models)
        if parsed.alias:
            if parsed.alias not in model["aliases"]:
                raise NotFound(f"alias of model {parsed.name!r}", parsed.alias, model["aliases"])
            version = model["aliases"][parsed.alias]
        else:
            version = parsed.version or model["latest"]
        if version not in model["versions"]:
            raise NotFound(f"version of model {parsed.name!r}", version, model["versions"])
        return RoutedVersion(name=parsed.name, version=version, **model["versions"][version])

    def deployment(self, name: str) -> RoutedDeployment | None:
        """The deployment of a model, or None when it is served without one."""
        model = self.models.get(name)
        if model is None:
            raise NotFound("model", name, self.models)
        deployment = model.get("deployment")
        if not deployment or not deployment.get("champion_version"):
            return None
        challenger = deployment.get("challenger_version")
        return RoutedDeployment(
            name=name,
            champion=self.resolve(f"{name}@{deployment['champion_version']}"),
            challenger=self.resolve(f"{name}@{challenger}") if challenger else None,
            mode=deployment["mode"],
            challenger_weight=float(deployment["challenger_weight"]),
        )


class RoutingReader:
    """Re-reads `routing.json` only when its stat changes; safe to share between server threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._snapshot = RoutingSnapshot()

    def current(self) -> RoutingSnapshot:
        """The latest snapshot (an empty one while no model was ever registered)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return RoutingSnapshot()
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if stamp != self._stamp:
                with open(self.path, "rb") as handle:
                    self._snapshot = RoutingSnapshot(json.load(handle))
                self._stamp = stamp
            return self._snapshot


def read_routing(path: str | Path) -> RoutingSnapshot:
    """Parse a routing file once (no caching)."""
    try:
        with open(path, "rb") as handle:
            return RoutingSnapshot(json.load(handle))
    except FileNotFoundError:
        return RoutingSnapshot()
