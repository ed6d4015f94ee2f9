"""The model registry: named models, semantic versions, aliases, lineage, documents and deployments.

Version rule (per model name, computed inside the registering transaction, so concurrent
registrations from several processes still get distinct numbers):

- the first version of a name is 1.0.0;
- a new version whose input-schema fingerprint differs from the latest version's (the highest
  existing number) is the next MAJOR: 1.4.0 -> 2.0.0;
- a new version with the same input schema is the next MINOR: 1.4.0 -> 1.5.0;
- a PATCH (1.4.0 -> 1.4.1) is made only by `update_metadata`, which copies a version with a new
  description, tags or documents and the same artifact.
Numbers come from the versions that exist: deleting the newest version frees its number. Caches of
loaded models should therefore be keyed by artifact SHA-256, never by `name@version`.

References everywhere: `NAME` (latest), `NAME@1.2.0`, `NAME@alias` (see `store.refs`).

Lineage is stored as given (recommended keys: dataset_fingerprint, file_name, rows, columns, target,
task, metric, leaderboard, hyperparameters, cv_plan, seed, time_budget, libraries (package name ->
version, shown on the exported model card), git_commit); the parent version and the job id also have
their own columns so the family tree can be queried.

Training data: a version may name a copy of its training data stored with
`artifacts.save_bytes(...)` (`register(..., data_sha256=...)`, default
`lineage["data"]["stored_copy_sha256"]`). That copy is a reference like the model file: metadata
patches share it, `gc()` keeps it, and deleting the last version that names it deletes the file.

Crash safety: the artifact file is written first (atomically), then every row of a version in one
transaction. A process killed at any point leaves either no row or a complete one; an orphan artifact
file is harmless and `gc()` removes it. The routing snapshot is rewritten after every commit while
the database lock is still held, so snapshots are written in commit order.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from store.archive import model_card, open_archive, read_card, write_archive
from store.artifacts import ArtifactRef, ArtifactStore
from store.db import Database, as_utc, in_transaction, utc_now
from store.errors import ArchiveError, ArtifactIntegrityError, InvalidRequest, NotFound
from store.jsonfiles import atomic_write_json, dumps, fingerprint, loads
from store.refs import (
    ModelRef,
    format_version,
    parse_ref,
    parse_version,
    validate_alias,
    validate_document_kind,
    validate_model_name,
)
from store.routing import ROUTING_FORMAT

DEPLOYMENT_MODES = ("ab", "shadow")

_VERSION_COLUMNS = (
    "id, model_name, version, created_at, description, tags, task, metric_name, cv_score, params, "
    "input_schema, schema_fingerprint, lineage, recipe, parent_version_id, job_id, "
    "artifact_sha256, artifact_size, artifact_file, data_sha256"
)
_SEMVER_DESC = "major DESC, minor DESC, patch DESC"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version with everything recorded about it (documents are fetched separately)."""

    id: str
    name: str
    version: str
    created_at: dt.datetime
    description: str
    tags: dict[str, Any]
    task: str | None
    metric_name: str | None
    cv_score: float | None
    metrics: dict[str, dict[str, float]]
    params: dict[str, Any]
    input_schema: Any
    schema_fingerprint: str
    lineage: dict[str, Any]
    recipe: dict[str, Any]
    parent_version_id: str | None
    job_id: str | None
    artifact: ArtifactRef
    aliases: tuple[str, ...]
    data_sha256: str | None = None  # the stored copy of the training data, see `Registry.register`

    @property
    def ref(self) -> str:
        """`name@version`, the exact reference of this version."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Deployment:
    """How a model is served: a champion and an optional challenger (A/B split or shadow)."""

    name: str
    champion: str
    challenger: str | None
    mode: str
    challenger_weight: float
    updated_at: dt.datetime


@dataclass(frozen=True)
class ModelSummary:
    """A model name with its newest version, version count, aliases and deployment."""

    name: str
    created_at: dt.datetime
    latest_version: str
    version_count: int
    aliases: dict[str, str]
    deployment: Deployment | None


@dataclass(frozen=True)
class LineageEdge:
    """`child` was derived from `parent` (retrained from it, or a metadata patch of it)."""

    parent: str
    child: str
    parent_id: str
    child_id: str


class Registry:
    """Models and versions in the home's database, artifacts in its artifacts folder."""

    def __init__(self, db: Database, artifacts: ArtifactStore, routing_path: str | Path):
        self.db = db
        self.artifacts = artifacts
        self.routing_path = Path(routing_path)

    # ----------------------------------------------------------------------------------- register

    def register(
        self,
        name: str,
        model: Any,
        *,
        input_schema: Any,
        task: str | None = None,
        metric_name: str | None = None,
        cv_score: float | None = None,
        metrics: Mapping[str, Mapping[str, float]] | None = None,
        params: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        recipe: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        parent: str | None = None,
        job_id: str | None = None,
        documents: Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
        data_sha256: str | None = None,
    ) -> ModelVersion:
        """Pickle `model` into the artifacts folder and record it as the next version of `name`.

        `metrics` is `{split: {metric: value}}` (splits such as "cv", "test"); `parent` is a
        reference to the version this one was derived from; `aliases` are set in the same transaction.
        `data_sha256` names the copy of the training data stored beforehand with
        `artifacts.save_bytes(...)` (default: `lineage["data"]["stored_copy_sha256"]`); the registry
        then keeps that file while a version names it and deletes it with the last one.
        """
        in_lineage = _lineage_data_sha256(lineage)
        if data_sha256 is None:
            data_sha256 = in_lineage
        elif in_lineage is not None and in_lineage != data_sha256:
            raise InvalidRequest(
                f"data_sha256 {data_sha256!r} differs from lineage['data']['stored_copy_sha256'] "
                f"{in_lineage!r}; expected both to name the same stored copy of the training data"
            )
        values = _version_values(
            name=name,
            input_schema=input_schema,
            task=task,
            metric_name=metric_name,
            cv_score=cv_score,
            metrics=metrics,
            params=params,
            lineage=lineage,
            recipe=recipe,
            description=description,
            tags=tags,
            job_id=job_id,
            documents=documents,
            data_sha256=data_sha256,
        )
        aliases = tuple(validate_alias(alias) for alias in aliases)
        artifact = self.artifacts.save(model)
        return self._insert_version(
            values, artifact, lambda: self.artifacts.save(model), parent=parent, aliases=aliases
        )

    def update_metadata(
        self,
        ref: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        documents: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Copy a version as its next PATCH with a new description, tags and/or documents.

        Documents given here are merged over the source version's; the artifact is shared.
        """
        if description is None and tags is None and documents is None:
            raise InvalidRequest("update_metadata needs at least one of description, tags or documents")
        new_documents = _check_documents(documents)
        with self.db.connect() as connection:
            with in_transaction(connection):
                source = self._get(connection, ref)
                patch = connection.execute(
                    "SELECT max(patch) FROM model_versions WHERE model_name = ? AND major = ? AND minor = ?",
                    [source.name, *parse_version(source.version)[:2]],
                ).fetchone()[0]
                major, minor, _ = parse_version(source.version)
                merged_documents = {**self._documents(connection, source.id), **new_documents}
                version_id = self._insert_rows(
                    connection,
                    name=source.name,
                    number=(major, minor, patch + 1),
                    description=source.description if description is None else str(description),
                    tags=source.tags if tags is None else dict(tags),
                    task=source.task,
                    metric_name=source.metric_name,
                    cv_score=source.cv_score,
                    metrics=source.metrics,
                    params=source.params,
                    input_schema=source.input_schema,
                    schema_fingerprint=source.schema_fingerprint,
                    lineage=source.lineage,
                    recipe=source.recipe,
                    parent_version_id=source.id,
                    job_id=source.job_id,
                    artifact=source.artifact,
                    data_sha256=source.data_sha256,
                    documents=merged_documents,
                )
            self._write_routing(connection)
            return self._get_by_id(connection, version_id)

    def _insert_version(
        self,
        values: dict[str, Any],
        artifact: ArtifactRef,
        ensure_artifact: Callable[[], ArtifactRef],
        *,
        parent: str | None,
        aliases: tuple[str, ...] = (),
        data_required: bool = True,
    ) -> ModelVersion:
        with self.db.connect() as connection:
            with in_transaction(connection):
                # a concurrent delete of identical content may have removed the file since we wrote
                # it; deletes happen under this lock, so checking here is enough
                if self.artifacts.find(artifact.sha256) is None:
                    artifact = ensure_artifact()
                data_sha256 = values["data_sha256"]
                if data_sha256 is not None and self.artifacts.find(data_sha256) is None:
                    if data_required:
                        raise ArtifactIntegrityError(
                            f"training-data copy {data_sha256} is not in the artifacts folder "
                            f"{self.artifacts.root}; expected it stored with artifacts.save_bytes(...) "
                            "before registering (store it again: a concurrent delete of an identical "
                            "copy may have removed it)"
                        )
                    values = {**values, "data_sha256": None}
                parent_id = self._get(connection, parent).id if parent else None
                latest = connection.execute(
                    f"SELECT major, minor, schema_fingerprint FROM model_versions WHERE model_name = ? "
                    f"ORDER BY {_SEMVER_DESC} LIMIT 1",
                    [values["name"]],
                ).fetchone()
                if latest is None:
                    number = (1, 0, 0)
                elif latest[2] != values["schema_fingerprint"]:
                    number = (latest[0] + 1, 0, 0)
                else:
                    number = (latest[0], latest[1] + 1, 0)
                version_id = self._insert_rows(
                    connection,
                    **values,
                    number=number,
                    parent_version_id=parent_id,
                    artifact=artifact,
                )
                for alias in aliases:
                    self._upsert_alias(connection, values["name"], alias, version_id)
            self._write_routing(connection)
            return self._get_by_id(connection, version_id)

    def _insert_rows(
        self,
        connection: duckdb.DuckDBPyConnection,
        *,
        name: str,
        number: tuple[int, int, int],
        description: str,
        tags: Mapping[str, Any],
        task: str | None,
        metric_name: str | None,
        cv_score: float | None,
        metrics: Mapping[str, Mapping[str, float]],
        params: Mapping[str, Any],
        input_schema: Any,
        schema_fingerprint: str,
        lineage: Mapping[str, Any],
        recipe: Mapping[str, Any],
        parent_version_id: str | None,
        job_id: str | None,
        artifact: ArtifactRef,
        data_sha256: str | None,
        documents: Mapping[str, Any],
    ) -> str:
        now = utc_now()
        version_id = uuid.uuid4().hex
        connection.execute(
            "INSERT INTO models (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", [name, now]
        )
        connection.execute(
            f"INSERT INTO model_versions ({_VERSION_COLUMNS}, major, minor, patch) "
            f"VALUES ({', '.join('?' * (_VERSION_COLUMNS.count(',') + 4))})",
            [
                version_id,
                name,
                format_version(*number),
                now,
                description,
                dumps(tags),
                task,
                metric_name,
                cv_score,
                dumps(params),
                dumps(input_schema),
                schema_fingerprint,
                dumps(lineage),
                dumps(recipe),
                parent_version_id,
                job_id,
                artifact.sha256,
                artifact.size,
                artifact.file,
                data_sha256,
                *number,
            ],
        )
        rows = [
            [version_id, split, metric, value]
            for split, values in metrics.items()
            for metric, value in values.items()
        ]
        if rows:
            connection.executemany("INSERT INTO version_metrics VALUES (?, ?, ?, ?)", rows)
        for kind, content in documents.items():
            connection.execute(
                "INSERT INTO version_documents VALUES (?, ?, ?, ?)", [version_id, kind, dumps(content), now]
            )
        return version_id

    # ------------------------------------------------------------------------------------- reads

    def get(self, ref: str) -> ModelVersion:
        """The version a reference points to; `NotFound` lists what exists."""
        with self.db.connect() as connection:
            return self._get(connection, ref)

    def versions(self, name: str) -> list[ModelVersion]:
        """All versions of a model, oldest number first."""
        validate_model_name(name)
        with self.db.connect() as connection:
            versions = self._fetch(connection, "model_name = ?", [name])
            if not versions:
                raise NotFound("model", name, self._model_names(connection))
            return versions

    def models(self) -> list[ModelSummary]:
        """Every model with its latest version, number of versions, aliases and deployment."""
        with self.db.connect() as connection:
            rows = connection.execute(
                "SELECT m.name, m.created_at, count(*) FROM models m JOIN model_versions v ON v.model_name = m.name "
                "GROUP BY m.name, m.created_at ORDER BY m.name"
            ).fetchall()
            latest = dict(
                connection.execute(
                    "SELECT model_name, arg_max(version, major * 1000000000000 + minor * 1000000 + patch) "
                    "FROM model_versions GROUP BY model_name"
                ).fetchall()
            )
            aliases: dict[str, dict[str, str]] = {}
            for model_name, alias, version in connection.execute(
                "SELECT a.model_name, a.alias, v.version FROM aliases a JOIN model_versions v ON v.id = a.version_id "
                "ORDER BY a.alias"
            ).fetchall():
                aliases.setdefault(model_name, {})[alias] = version
            deployments = {deployment.name: deployment for deployment in self._deployments(connection)}
        return [
            ModelSummary(
                name=name,
                created_at=as_utc(created_at),
                latest_version=latest[name],
                version_count=int(count),
                aliases=aliases.get(name, {}),
                deployment=deployments.get(name),
            )
            for name, created_at, count in rows
        ]

    def load(self, ref: str) -> Any:
        """Unpickle the artifact of a version after verifying its SHA-256 against the registry row."""
        version = self.get(ref)
        return self.artifacts.load(version.artifact, expected_sha256=version.artifact.sha256)

    def verify(self, ref: str) -> ArtifactRef:
        """Hash-check the artifact file of a version without loading it."""
        version = self.get(ref)
        return self.artifacts.verify(version.artifact, expected_sha256=version.artifact.sha256)

    def family_tree(self, name: str) -> list[LineageEdge]:
        """Parent -> child edges touching any version of `name` (parents may belong to other models)."""
        validate_model_name(name)
        with self.db.connect() as connection:
            if not connection.execute("SELECT 1 FROM models WHERE name = ?", [name]).fetchone():
                raise NotFound("model", name, self._model_names(connection))
            rows = connection.execute(
                "SELECT p.model_name || '@' || p.version, c.model_name || '@' || c.version, p.id, c.id "
                "FROM model_versions c JOIN model_versions p ON p.id = c.parent_version_id "
                "WHERE c.model_name = ? OR p.model_name = ? ORDER BY c.created_at, c.id",
                [name, name],
            ).fetchall()
        return [LineageEdge(*row) for row in rows]

    # --------------------------------------------------------------------------------- documents

    def put_document(self, ref: str, kind: str, content: Any) -> None:
        """Store (or replace) a JSON document of a version, e.g. a cached evaluation; no version bump."""
        validate_document_kind(kind)
        text = dumps(content)
        with self.db.transaction() as connection:
            version = self._get(connection, ref)
            connection.execute(
                "INSERT OR REPLACE INTO version_documents VALUES (?, ?, ?, ?)",
                [version.id, kind, text, utc_now()],
            )

    def get_document(self, ref: str, kind: str, default: Any = None) -> Any:
        """A document of a version, or `default` when it has none of that kind."""
        validate_document_kind(kind)
        with self.db.connect() as connection:
            version = self._get(connection, ref)
            row = connection.execute(
                "SELECT content FROM version_documents WHERE version_id = ? AND kind = ?", [version.id, kind]
            ).fetchone()
        return default if row is None else loads(row[0])

    def documents(self, ref: str) -> dict[str, Any]:
        """Every document of a version, by kind."""
        with self.db.connect() as connection:
            return self._documents(connection, self._get(connection, ref).id)

    def delete_document(self, ref: str, kind: str) -> bool:
        """Remove one document; True when it existed."""
        validate_document_kind(kind)
        with self.db.transaction() as connection:
            version = self._get(connection, ref)
            return bool(
                connection.execute(
                    "DELETE FROM version_documents WHERE version_id = ? AND kind = ? RETURNING kind",
                    [version.id, kind],
                ).fetchall()
            )

    # ----------------------------------------------------------------------------------- aliases

    def set_alias(self, ref: str, alias: str) -> ModelVersion:
        """Point `alias` of the model at the version `ref` resolves to (`set_alias("m@1.2.0", "production")`)."""
        validate_alias(alias)
        with self.db.connect() as connection:
            with in_transaction(connection):
                version = self._get(connection, ref)
                self._upsert_alias(connection, version.name, alias, version.id)
            self._write_routing(connection)
            return self._get_by_id(connection, version.id)

    def remove_alias(self, name: str, alias: str) -> None:
        """Drop an alias; refused while a deployment of the model refers to it."""
        validate_model_name(name)
        validate_alias(alias)
        with self.db.connect() as connection:
            with in_transaction(connection):
                existing = self._aliases(connection, name)
                if alias not in existing:
                    raise NotFound(f"alias of model {name!r}", alias, existing)
                deployment = self._deployment(connection, name)
                if deployment and f"{name}@{alias}" in (deployment.champion, deployment.challenger):
                    raise InvalidRequest(
                        f"alias {alias!r} of model {name!r} is used by its deployment; change or remove the "
                        "deployment first"
                    )
                connection.execute("DELETE FROM aliases WHERE model_name = ? AND alias = ?", [name, alias])
            self._write_routing(connection)

    def aliases(self, name: str) -> dict[str, str]:
        """`{alias: version}` of a model."""
        validate_model_name(name)
        with self.db.connect() as connection:
            self._require_model(connection, name)
            return self._aliases(connection, name)

    # ------------------------------------------------------------------------------- deployments

    def deploy(
        self,
        name: str,
        champion: str,
        challenger: str | None = None,
        *,
        mode: str = "ab",
        challenger_weight: float = 0.1,
    ) -> Deployment:
        """Serve `champion` (a reference of model `name`, aliases stay live) with an optional challenger.

        `mode="ab"` routes `challenger_weight` of the traffic to the challenger; `mode="shadow"` answers
        with the champion and also sends every request to the challenger, logging both (the weight is unused).
        """
        validate_model_name(name)
        if mode not in DEPLOYMENT_MODES:
            raise InvalidRequest(f"deployment mode {mode!r} is invalid: expected one of {DEPLOYMENT_MODES}")
        try:
            weight = float(challenger_weight)
        except (TypeError, ValueError):
            weight = float("nan")
        if not 0.0 <= weight <= 1.0:
            raise InvalidRequest(
                f"challenger_weight {challenger_weight!r} is invalid: expected a number in [0, 1]"
            )
        refs = [parse_ref(champion)] + ([parse_ref(challenger)] if challenger else [])
        for parsed in refs:
            if parsed.name != name:
                raise InvalidRequest(
                    f"deployment of model {name!r} cannot serve {str(parsed)!r}, a different model"
                )
        with self.db.connect() as connection:
            with in_transaction(connection):
                for parsed in refs:
                    self._get(connection, parsed)
                connection.execute(
                    "INSERT OR REPLACE INTO deployments VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        name,
                        str(refs[0]),
                        str(refs[1]) if challenger else None,
                        mode,
                        weight if challenger else 0.0,
                        utc_now(),
                    ],
                )
            self._write_routing(connection)
            return self._deployment(connection, name)

    def undeploy(self, name: str) -> None:
        """Remove the deployment of a model (it is then served by plain references only)."""
        validate_model_name(name)
        with self.db.connect() as connection:
            with in_transaction(connection):
                self._require_model(connection, name)
                connection.execute("DELETE FROM deployments WHERE model_name = ?", [name])
            self._write_routing(connection)

    def deployment(self, name: str) -> Deployment | None:
        """The deployment of a model, or None."""
        validate_model_name(name)
        with self.db.connect() as connection:
            self._require_model(connection, name)
            return self._deployment(connection, name)

    # ------------------------------------------------------------------------------------ delete

    def delete_version(self, ref: str) -> ModelVersion:
        """Delete one version: its rows, aliases, documents and (if unshared) its model and data files.

        Refused while a deployment resolves to it; deleting the last version deletes the model.
        """
        with self.db.connect() as connection:
            with in_transaction(connection):
                version = self._get(connection, ref)
                deployment = self._deployment(connection, version.name)
                if deployment:
                    for role, target in (
                        ("champion", deployment.champion),
                        ("challenger", deployment.challenger),
                    ):
                        if target and self._get(connection, target).id == version.id:
                            raise InvalidRequest(
                                f"version {version.ref} is the {role} ({target}) of the deployment of "
                                f"{version.name!r}; undeploy or redeploy first"
                            )
                self._delete_rows(connection, "id = ?", [version.id])
                remaining = connection.execute(
                    "SELECT count(*) FROM model_versions WHERE model_name = ?", [version.name]
                ).fetchone()[0]
                if remaining == 0:
                    connection.execute("DELETE FROM deployments WHERE model_name = ?", [version.name])
                    connection.execute("DELETE FROM models WHERE name = ?", [version.name])
            self._delete_unreferenced(connection, [version.artifact.sha256, version.data_sha256])
            self._write_routing(connection)
        return version

    def delete_model(self, name: str) -> int:
        """Delete a model with all its versions, aliases, documents, deployment and unshared artifacts.

        Artifacts are the model files and the training-data copies; a file another version still
        names (a reproduction, a model trained on the same data) stays.
        """
        validate_model_name(name)
        with self.db.connect() as connection:
            with in_transaction(connection):
                self._require_model(connection, name)
                shas = [
                    sha
                    for row in connection.execute(
                        "SELECT artifact_sha256, data_sha256 FROM model_versions WHERE model_name = ?", [name]
                    ).fetchall()
                    for sha in row
                ]
                count = self._delete_rows(connection, "model_name = ?", [name])
                connection.execute("DELETE FROM aliases WHERE model_name = ?", [name])
                connection.execute("DELETE FROM deployments WHERE model_name = ?", [name])
                connection.execute("DELETE FROM models WHERE name = ?", [name])
            self._delete_unreferenced(connection, shas)
            self._write_routing(connection)
        return count

    def gc(self, *, min_age_seconds: float = 3600.0) -> list[Path]:
        """Remove artifact files no version references, and temp files of killed writers.

        A version references its model file and its training-data copy (`data_sha256`). Files
        younger than `min_age_seconds` are kept: another process may be about to commit them.
        """
        removed = []
        with self.db.connect() as connection:
            referenced = {
                row[0]
                for row in connection.execute(
                    "SELECT artifact_sha256 FROM model_versions UNION "
                    "SELECT data_sha256 FROM model_versions WHERE data_sha256 IS NOT NULL"
                ).fetchall()
            }
            cutoff = dt.datetime.now().timestamp() - min_age_seconds
            for artifact in self.artifacts.list():
                if artifact.sha256 not in referenced and artifact.path.stat().st_mtime < cutoff:
                    artifact.path.unlink(missing_ok=True)
                    removed.append(artifact.path)
            for temp in self.artifacts.stale_temp_files(min_age_seconds):
                temp.unlink(missing_ok=True)
                removed.append(temp)
        return removed

    # ---------------------------------------------------------------------------- import/export

    def export_version(self, ref: str, out_path: str | Path) -> Path:
        """Write one portable zip: the verified artifact, `model_card.json`, documents and a manifest."""
        with self.db.connect() as connection:
            version = self._get(connection, ref)
            documents = self._documents(connection, version.id)
        artifact = self.artifacts.verify(version.artifact, expected_sha256=version.artifact.sha256)
        return write_archive(
            out_path,
            card=model_card(version),
            artifact_path=artifact.path,
            artifact_sha256=artifact.sha256,
            documents=documents,
        )

    def import_archive(self, path: str | Path, name: str | None = None) -> ModelVersion:
        """Verify an exported zip and register it as the next version of `name` (default: its card's name).

        Everything is checked before anything is written, so a refused archive leaves the registry as it was.
        An archive holds no training data; when this home already stores the copy the card names
        (same data trained on here, or an import into the home it came from), the new version references it.
        """
        contents = open_archive(path)
        card = contents.card
        for key in ("lineage", "metrics", "params", "recipe", "tags"):
            if card.get(key) is not None and not isinstance(card[key], Mapping):
                raise ArchiveError(
                    f"archive {path}: the model card's {key!r} must be a JSON object, got {type(card[key]).__name__}"
                )
        for key in ("task", "metric_name", "description"):
            if card.get(key) is not None and not isinstance(card[key], str):
                raise ArchiveError(
                    f"archive {path}: the model card's {key!r} must be a string, got {type(card[key]).__name__}"
                )
        target = validate_model_name(name if name is not None else card["name"])
        lineage = dict(card.get("lineage") or {})
        data_sha256 = card.get("data_sha256") or _lineage_data_sha256(lineage)
        lineage["imported_from"] = {
            "archive": Path(path).name,
            "name": card.get("name"),
            "version": card.get("version"),
            "version_id": card.get("version_id"),
            "parent_version_id": card.get("parent_version_id"),
            "job_id": card.get("job_id"),
            "created_at": card.get("created_at"),
        }
        values = _version_values(
            name=target,
            input_schema=card.get("input_schema", {}),
            task=card.get("task"),
            metric_name=card.get("metric_name"),
            cv_score=card.get("cv_score"),
            metrics=card.get("metrics") or {},
            params=card.get("params") or {},
            lineage=lineage,
            recipe=card.get("recipe") or {},
            description=card.get("description") or "",
            tags=card.get("tags") or {},
            job_id=None,
            documents=contents.documents,
            data_sha256=data_sha256 if _is_sha256(data_sha256) else None,
        )
        suffix = Path(contents.artifact_member).suffix

        def copy_artifact() -> ArtifactRef:
            with contents.open_artifact() as stream:
                return self.artifacts.save_stream(
                    stream, suffix=suffix, expected_sha256=contents.artifact_sha256
                )

        return self._insert_version(values, copy_artifact(), copy_artifact, parent=None, data_required=False)

    read_card = staticmethod(read_card)

    # ----------------------------------------------------------------------------------- routing

    def write_routing(self) -> Path:
        """Rewrite `routing.json` from the database (e.g. at server start, after a crash)."""
        with self.db.connect() as connection:
            self._write_routing(connection)
        return self.routing_path

    def _write_routing(self, connection: duckdb.DuckDBPyConnection) -> None:
        models: dict[str, dict[str, Any]] = {}
        for (
            model_name,
            version,
            version_id,
            sha256,
            file,
            size,
            task,
            metric_name,
            schema_fp,
            input_schema,
        ) in connection.execute(
            "SELECT model_name, version, id, artifact_sha256, artifact_file, artifact_size, task, metric_name, "
            f"schema_fingerprint, input_schema FROM model_versions ORDER BY model_name, {_SEMVER_DESC}"
        ).fetchall():
            model = models.setdefault(
                model_name, {"latest": version, "aliases": {}, "deployment": None, "versions": {}}
            )
            model["versions"][version] = {
                "version_id": version_id,
                "sha256": sha256,
                "file": file,
                "size": size,
                "task": task,
                "metric_name": metric_name,
                "schema_fingerprint": schema_fp,
                "input_schema": loads(input_schema),
            }
        for model_name, alias, version in connection.execute(
            "SELECT a.model_name, a.alias, v.version FROM aliases a JOIN model_versions v ON v.id = a.version_id"
        ).fetchall():
            models[model_name]["aliases"][alias] = version
        for deployment in self._deployments(connection):
            model = models.get(deployment.name)
            if model is None:  # pragma: no cover - deployments are deleted with their model
                continue
            model["deployment"] = {
                "champion": deployment.champion,
                "champion_version": _resolve_in(model, deployment.champion),
                "challenger": deployment.challenger,
                "challenger_version": _resolve_in(model, deployment.challenger)
                if deployment.challenger
                else None,
                "mode": deployment.mode,
                "challenger_weight": deployment.challenger_weight,
            }
        atomic_write_json(
            self.routing_path,
            {"format": ROUTING_FORMAT, "generated_at": dt.datetime.now(dt.UTC).isoformat(), "models": models},
        )

    # ---------------------------------------------------------------------------------- helpers

    def _get(self, connection: duckdb.DuckDBPyConnection, ref: str | ModelRef) -> ModelVersion:
        parsed = parse_ref(ref)
        if parsed.alias:
            row = connection.execute(
                "SELECT version_id FROM aliases WHERE model_name = ? AND alias = ?",
                [parsed.name, parsed.alias],
            ).fetchone()
            if row is None:
                self._require_model(connection, parsed.name)
                raise NotFound(
                    f"alias of model {parsed.name!r}", parsed.alias, self._aliases(connection, parsed.name)
                )
            return self._get_by_id(connection, row[0])
        if parsed.version:
            found = self._fetch(connection, "model_name = ? AND version = ?", [parsed.name, parsed.version])
        else:
            found = self._fetch(
                connection,
                f"id = (SELECT id FROM model_versions WHERE model_name = ? ORDER BY {_SEMVER_DESC} LIMIT 1)",
                [parsed.name],
            )
        if not found:
            self._require_model(connection, parsed.name)
            existing = [
                row[0]
                for row in connection.execute(
                    "SELECT version FROM model_versions WHERE model_name = ?", [parsed.name]
                ).fetchall()
            ]
            raise NotFound(f"version of model {parsed.name!r}", parsed.version, existing)
        return found[0]

    def _get_by_id(self, connection: duckdb.DuckDBPyConnection, version_id: str) -> ModelVersion:
        return self._fetch(connection, "id = ?", [version_id])[0]

    def _fetch(
        self, connection: duckdb.DuckDBPyConnection, where: str, params: list[Any]
    ) -> list[ModelVersion]:
        # `where` is always a constant fragment written in this module; values go through `params`
        rows = connection.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE {where} ORDER BY major, minor, patch",
            params,
        ).fetchall()
        if not rows:
            return []
        metrics: dict[str, dict[str, dict[str, float]]] = {}
        for version_id, split, metric, value in connection.execute(
            f"SELECT version_id, split, name, value FROM version_metrics "
            f"WHERE version_id IN (SELECT id FROM model_versions WHERE {where}) ORDER BY split, name",
            params,
        ).fetchall():
            metrics.setdefault(version_id, {}).setdefault(split, {})[metric] = value
        aliases: dict[str, list[str]] = {}
        for version_id, alias in connection.execute(
            f"SELECT version_id, alias FROM aliases WHERE version_id IN (SELECT id FROM model_versions WHERE {where}) "
            "ORDER BY alias",
            params,
        ).fetchall():
            aliases.setdefault(version_id, []).append(alias)
        return [
            ModelVersion(
                id=row[0],
                name=row[1],
                version=row[2],
                created_at=as_utc(row[3]),
                description=row[4],
                tags=loads(row[5], {}),
                task=row[6],
                metric_name=row[7],
                cv_score=row[8],
                metrics=metrics.get(row[0], {}),
                params=loads(row[9], {}),
                input_schema=loads(row[10]),
                schema_fingerprint=row[11],
                lineage=loads(row[12], {}),
                recipe=loads(row[13], {}),
                parent_version_id=row[14],
                job_id=row[15],
                artifact=ArtifactRef(row[16], row[17], self.artifacts.path_of(row[18])),
                aliases=tuple(aliases.get(row[0], ())),
                data_sha256=row[19],
            )
            for row in rows
        ]

    def _documents(self, connection: duckdb.DuckDBPyConnection, version_id: str) -> dict[str, Any]:
        return {
            kind: loads(content)
            for kind, content in connection.execute(
                "SELECT kind, content FROM version_documents WHERE version_id = ? ORDER BY kind", [version_id]
            ).fetchall()
        }

    def _aliases(self, connection: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
        return dict(
            connection.execute(
                "SELECT a.alias, v.version FROM aliases a JOIN model_versions v ON v.id = a.version_id "
                "WHERE a.model_name = ? ORDER BY a.alias",
                [name],
            ).fetchall()
        )

    def _upsert_alias(
        self, connection: duckdb.DuckDBPyConnection, name: str, alias: str, version_id: str
    ) -> None:
        connection.execute(
            "INSERT OR REPLACE INTO aliases VALUES (?, ?, ?, ?)", [name, alias, version_id, utc_now()]
        )

    def _deployments(
        self, connection: duckdb.DuckDBPyConnection, name: str | None = None
    ) -> list[Deployment]:
        sql = "SELECT model_name, champion, challenger, mode, challenger_weight, updated_at FROM deployments"
        rows = connection.execute(
            sql + (" WHERE model_name = ?" if name else "") + " ORDER BY model_name", [name] if name else []
        ).fetchall()
        return [Deployment(row[0], row[1], row[2], row[3], float(row[4]), as_utc(row[5])) for row in rows]

    def _deployment(self, connection: duckdb.DuckDBPyConnection, name: str) -> Deployment | None:
        found = self._deployments(connection, name)
        return found[0] if found else None

    def _model_names(self, connection: duckdb.DuckDBPyConnection) -> list[str]:
        return [row[0] for row in connection.execute("SELECT name FROM models ORDER BY name").fetchall()]

    def _require_model(self, connection: duckdb.DuckDBPyConnection, name: str) -> None:
        if not connection.execute("SELECT 1 FROM models WHERE name = ?", [name]).fetchone():
            raise NotFound("model", name, self._model_names(connection))

    def _delete_rows(self, connection: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> int:
        ids = [
            row[0]
            for row in connection.execute(f"SELECT id FROM model_versions WHERE {where}", params).fetchall()
        ]
        for version_id in ids:
            for table, column in (
                ("version_metrics", "version_id"),
                ("version_documents", "version_id"),
                ("aliases", "version_id"),
                ("reference_distributions", "version_id"),
                ("model_versions", "id"),
            ):
                connection.execute(f"DELETE FROM {table} WHERE {column} = ?", [version_id])
        return len(ids)

    def _delete_unreferenced(self, connection: duckdb.DuckDBPyConnection, shas: Iterable[str | None]) -> None:
        # runs after the commit but under the database lock, so no registration can race it
        for sha in set(shas) - {None}:
            still_used = connection.execute(
                "SELECT 1 FROM model_versions WHERE artifact_sha256 = ? OR data_sha256 = ? LIMIT 1",
                [sha, sha],
            ).fetchone()
            if not still_used:
                self.artifacts.delete(sha)


def _version_values(
    *,
    name: str,
    input_schema: Any,
    task: str | None,
    metric_name: str | None,
    cv_score: Any,
    metrics: Mapping[str, Mapping[str, float]] | None,
    params: Mapping[str, Any] | None,
    lineage: Mapping[str, Any] | None,
    recipe: Mapping[str, Any] | None,
    description: str,
    tags: Mapping[str, Any] | None,
    job_id: str | None,
    documents: Mapping[str, Any] | None,
    data_sha256: str | None,
) -> dict[str, Any]:
    """Validate what a caller gives for a new version; returns keyword arguments of `_insert_rows`."""
    validate_model_name(name)
    for value, what in ((params, "params"), (lineage, "lineage"), (recipe, "recipe"), (tags, "tags")):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidRequest(f"{what} must be a dict, got {type(value).__name__}")
    if data_sha256 is not None and not _is_sha256(data_sha256):
        raise InvalidRequest(
            f"data_sha256 {data_sha256!r} is invalid: expected the SHA-256 (64 lowercase hex characters) "
            "of a training-data copy stored with artifacts.save_bytes(...)"
        )
    return {
        "name": name,
        "description": str(description or ""),
        "tags": dict(tags or {}),
        "task": task,
        "metric_name": metric_name,
        "cv_score": _optional_float(cv_score, "cv_score"),
        "metrics": _check_metrics(metrics),
        "params": dict(params or {}),
        "input_schema": input_schema,
        "schema_fingerprint": fingerprint(input_schema),
        "lineage": dict(lineage or {}),
        "recipe": dict(recipe or {}),
        "job_id": job_id,
        "documents": _check_documents(documents),
        "data_sha256": data_sha256,
    }


def _lineage_data_sha256(lineage: Any) -> Any:
    """`lineage["data"]["stored_copy_sha256"]` (where the engine records its training-data copy), or None."""
    data = lineage.get("data") if isinstance(lineage, Mapping) else None
    return data.get("stored_copy_sha256") if isinstance(data, Mapping) else None


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _resolve_in(model: dict[str, Any], ref: str) -> str | None:
    parsed = parse_ref(ref)
    if parsed.alias:
        return model["aliases"].get(parsed.alias)
    return parsed.version or model["latest"]


def _optional_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a number, got {value!r}") from None


def _check_metrics(metrics: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    checked: dict[str, dict[str, float]] = {}
    for split, values in (metrics or {}).items():
        if not isinstance(values, Mapping):
            raise InvalidRequest(
                f"metrics[{split!r}] must be a dict of metric name -> number (metrics are {{split: {{name: value}}}}), "
                f"got {values!r}"
            )
        checked[str(split)] = {
            str(name): _optional_float(value, f"metric {split}/{name}") for name, value in values.items()
        }
    return checked


def _check_documents(documents: Mapping[str, Any] | None) -> dict[str, Any]:
    checked = {}
    for kind, content in (documents or {}).items():
        validate_document_kind(kind)
        dumps(content)  # refuse what cannot be stored before anything is written
        checked[kind] = content
    return checked
