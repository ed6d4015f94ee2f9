"""The prediction core: reference -> model, A/B and shadow routing, prediction, logging. No HTTP.

`PredictionService` answers `predict_row`, `predict_rows` and `predict_csv` for a registry
reference. References resolve through the store's routing snapshot (`routing.json`, one `stat`
per request, no database), so promoting a version or changing a deployment takes effect on the
next request. Loaded models are cached by artifact SHA-256 (a version number can be reused after a
delete, a hash cannot), each with its input schema and, when it compiles, its single-row fast path.

Deployments apply when a model is asked for by its bare name (`loans`) or by exactly the
reference its deployment serves as champion (`loans@production` when the champion is
`loans@production`): an A/B test sends `challenger_weight` of the requests to the challenger (the
same request key always gets the same variant); a shadow deployment answers every request with
the champion and also runs every request through the challenger in the background, logging its
answer. A version number (`loans@1.2.0`) or another alias pins one version and bypasses it.

Every prediction is logged for monitoring (inputs as read, outputs, version, variant, latency,
request id; batch row i as `<request id>-<i>`) into the store's buffered JSONL writer. The request
path only queues a closure: one background thread builds the records and writes them in batches,
and it waits while requests are in flight (at most a quarter second), because in one Python
process any work competes with the requests for the interpreter.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import queue
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, invalid_input, not_found
from .payloads import Rows

logger = logging.getLogger(__name__)

CLASSIFICATION = ("binary", "multiclass")
CHUNK_ROWS = 5000
LOG_FLUSH_SECONDS = 1.0  # buffered log records reach the disk within about a second
LOG_FLUSH_RECORDS = 20_000
# The store's writer would flush on its own thread past this many records (or every 30 s); the
# service flushes it itself, from the background thread, when no request is in flight.
LOG_MAX_BUFFER = 200_000
LOG_SAFETY_FLUSH_SECONDS = 30.0
# A CSV body up to this many rows is read once; a larger one twice (checked first, then predicted).
KEEP_CSV_ROWS = 20_000
DEFAULT_MAX_MODELS = 16
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id(given: str | None = None) -> str:
    """The client's `X-Request-Id` when it is a sane token, else a fresh random id."""
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _follows_deployment(snapshot, parsed) -> bool:
    """Whether a reference goes through its model's deployment (when there is one).

    A bare name does, and so does exactly the champion's reference when that is an alias
    (`loans@production` while the deployment's champion is `loans@production`): that is how the
    dashboard and most clients call a deployed model. A version number (`loans@1.2.0`) pins it.
    """
    if parsed.version:
        return False
    if not parsed.alias:
        return True
    deployment = (snapshot.models.get(parsed.name) or {}).get("deployment") or {}
    return deployment.get("champion") == str(parsed)


def sticky_share(name: str, key: str) -> float:
    """A number in [0, 1) fixed by (model name, key): the same key always lands on the same variant."""
    digest = hashlib.blake2b(f"{name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def plain(value: Any) -> Any:
    """A numpy scalar as a JSON-able Python value (NaN becomes None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- loaded models
@dataclass
class LoadedModel:
    """One artifact ready to answer: pipeline, input schema, fast path (or why there is none)."""

    sha256: str
    pipeline: Any
    rest: Any
    schema: Any
    task: str
    classes: list | None
    class_names: list[str] | None
    fast: Any
    fast_reason: str | None
    load_seconds: float

    def outputs_for_frame(self, frame):
        """(predictions, probabilities or None) for a typed frame, through the pipeline after its cleaner."""
        import numpy as np

        if self.task in CLASSIFICATION:
            proba = np.asarray(self.rest.predict_proba(frame), dtype=float)
            labels = np.asarray(self.classes, dtype=object)
            return labels[np.argmax(proba, axis=1)], proba
        return np.asarray(self.rest.predict(frame)), None

    def outputs_for_typed(self, typed):
        """(predictions, probabilities or None) for a `TypedFrame`: compiled batch path, else the pipeline."""
        if self.fast is None:
            return self.outputs_for_frame(typed.frame)
        import numpy as np

        output = self.fast.outputs_batch(typed.columns, len(typed))
        if self.task in CLASSIFICATION:
            labels = np.asarray(self.classes, dtype=object)
            return labels[np.argmax(output, axis=1)], output
        return output, None

    def predict_typed_row(self, values: dict) -> tuple[Any, Any]:
        """(prediction, probabilities or None) for one typed row: fast path, else a one-row frame."""
        if self.fast is not None:
            return self.fast.predict(values)
        from .fastpath import typed_frame

        predictions, proba = self.outputs_for_frame(typed_frame(self.schema, [values]))
        return predictions[0], None if proba is None else proba[0]

    def probability_dict(self, proba) -> dict[str, float]:
        return {name: float(p) for name, p in zip(self.class_names, proba, strict=True)}


def load_model(pipeline, sha256: str, task: str | None, *, fast: bool = True) -> LoadedModel:
    """Wrap a fitted pipeline for serving: its schema, classes and compiled fast path."""
    from .fastpath import FastPath, Unsupported
    from .validation import InputSchema

    start = time.perf_counter()
    schema = InputSchema.from_pipeline(pipeline)
    model = pipeline.steps[-1][1]
    task = task or getattr(model, "task", None) or "regression"
    classes = None
    if task in CLASSIFICATION:
        classes = [plain(c) for c in getattr(pipeline, "classes_", getattr(model, "classes_", []))]
    fast_path, reason = None, "disabled"
    if fast:
        try:
            fast_path, reason = FastPath(pipeline, schema, task), None
        except Unsupported as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a fast path that cannot compile only costs speed
            logger.warning("fast path of %s could not be compiled: %s", sha256[:12], exc)
            reason = f"could not compile: {type(exc).__name__}: {exc}"
    return LoadedModel(
        sha256=sha256,
        pipeline=pipeline,
        rest=pipeline[1:],
        schema=schema,
        task=task,
        classes=classes,
        class_names=None if classes is None else [str(c) for c in classes],
        fast=fast_path,
        fast_reason=reason,
        load_seconds=time.perf_counter() - start,
    )


class ModelCache:
    """Loaded models by artifact SHA-256, least recently used evicted; one load per hash at a time."""

    def __init__(self, artifacts, *, max_models: int = DEFAULT_MAX_MODELS, fast: bool = True):
        self.artifacts = artifacts
        self.max_models = max_models
        self.fast = fast
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, sha256: str, task: str | None) -> LoadedModel:
        with self._lock:
            found = self._models.get(sha256)
            if found is not None:
                self._models.move_to_end(sha256)
                return found
            gate = self._loading.setdefault(sha256, threading.Lock())
        with gate:
            with self._lock:
                found = self._models.get(sha256)
            if found is not None:
                return found
            pipeline = self.artifacts.load(sha256)
            loaded = load_model(pipeline, sha256, task, fast=self.fast)
            with self._lock:
                self._models[sha256] = loaded
                self._loading.pop(sha256, None)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            return loaded

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def forget(self, sha256: str) -> None:
        with self._lock:
            self._models.pop(sha256, None)


# --------------------------------------------------------------------------- background work
class Background:
    """One daemon thread running queued closures (log records, shadow predictions) when requests are idle.

    The server is one Python process, so background work competes with requests for the interpreter.
    A job therefore waits (at most `max_delay` seconds) until no request is in flight, unless the
    queue is half full; `on_tick` runs whenever the queue empties and at least every `tick` seconds
    (the service writes its buffered log records there). A full queue drops the job and counts it.
    """

    def __init__(
        self,
        maxsize: int = 2048,
        *,
        idle: threading.Event | None = None,
        max_delay: float = 0.25,
        tick: float = 1.0,
        on_tick: Callable[[], None] | None = None,
    ):
        self._queue: queue.Queue = queue.Queue(maxsize)
        self.maxsize = maxsize
        self.idle = idle
        self.max_delay = max_delay
        self.tick = tick
        self.on_tick = on_tick
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        self.failed = 0

    def submit(self, job: Callable[[], None]) -> bool:
        self._ensure_thread()
        try:
            self._queue.put_nowait(job)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="serving-background", daemon=True)
                    self._thread.start()

    def wait_for_idle(self) -> None:
        """Let in-flight requests finish first (bounded by `max_delay`, skipped when the queue fills up)."""
        if self.idle is not None and self._queue.qsize() < self.maxsize // 2:
            self.idle.wait(self.max_delay)

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self.tick)
            except queue.Empty:
                self._run_tick()
                continue
            try:
                if job is None:
                    return
                self.wait_for_idle()
                job()
            except Exception:  # noqa: BLE001 - background work must never stop the thread
                self.failed += 1
                logger.exception("background job failed")
            finally:
                self._queue.task_done()
            if self._queue.empty():
                self._run_tick()

    def _run_tick(self) -> None:
        if self.on_tick is None:
            return
        try:
            self.on_tick()
        except Exception:  # noqa: BLE001 - a failed flush is retried at the next tick
            self.failed += 1
            logger.exception("background tick failed")

    def wait(self) -> None:
        """Block until everything queued so far has run."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self.wait()
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None


# --------------------------------------------------------------------------- routing
@dataclass
class Route:
    """Which version answers a request, as which variant, and which one shadows it."""

    asked: str
    name: str
    version: Any  # store.RoutedVersion
    variant: str | None = None
    shadow: Any = None


@dataclass
class RowsResult:
    """Outputs of a batch, ready to encode."""

    route: Route
    request_id: str
    predictions: Any
    probabilities: Any
    class_names: list[str] | None
    warnings: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


class CsvBatch:
    """A CSV body read and checked; its predictions stream once, from `outputs()` or `csv()`.

    `outputs()` pairs each chunk of input rows, as read, with its predictions (the dashboard shows
    them side by side: both come from one reading, so they cannot drift apart); `csv()` is the
    server's answer, the CSV contract of `automl predict`. Either logs and shadows every chunk.
    """

    def __init__(self, service, route, loaded, request_id, warnings, ignored, rows, chunks, start):
        self.service = service
        self.route: Route = route
        self.loaded: LoadedModel = loaded
        self.request_id: str = request_id
        self.warnings: list[str] = warnings
        self.ignored: list[str] = ignored
        self.rows: int = rows
        self._chunks = chunks
        self._start = start

    def outputs(self) -> Iterator[tuple[Any, Any]]:
        """(input rows as read, predictions frame) per chunk, in order, both indexed from 0."""
        service, route, loaded = self.service, self.route, self.loaded
        variant = route.variant or "champion"
        for offset, chunk, typed in self._chunks():
            labels, proba = loaded.outputs_for_typed(typed)
            service._log_chunk(
                route, variant, self.request_id, offset, typed, labels, proba, loaded, self._start
            )
            if route.shadow is not None:
                service.background.submit(
                    lambda c=chunk, o=offset: service._shadow_frame(route, c, self.request_id, o)
                )
            yield chunk, _prediction_frame(labels, proba, loaded.class_names)
        service.counters["predictions"] += 1
        service.counters["rows"] += self.rows

    def csv(self) -> Iterator[bytes]:
        """The predictions as CSV text: a header, then one line per input row."""
        import io

        header = True
        for _, predictions in self.outputs():
            out = io.StringIO()
            predictions.to_csv(out, index=False, header=header, lineterminator="\n")
            header = False
            yield out.getvalue().encode()


class PredictionService:
    """Predictions for registry references, with deployments and monitoring logs; thread-safe."""

    def __init__(
        self,
        store,
        *,
        log_predictions: bool = True,
        max_models: int = DEFAULT_MAX_MODELS,
        fast_path: bool = True,
        seed: int | None = None,
    ):
        self.store = store
        self.routing = store.routing()
        self.models = ModelCache(store.artifacts, max_models=max_models, fast=fast_path)
        self.log_predictions = log_predictions
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()
        self._last_flush = time.monotonic()
        self.background = Background(idle=self.idle, on_tick=self._flush_if_due)
        self._random = random.Random(seed)
        self._loggers_lock = threading.Lock()
        self._prediction_logger = None
        self._feedback_logger = None
        self.started = time.time()
        self.counters = {"predictions": 0, "rows": 0, "shadow_failures": 0}

    # ------------------------------------------------------------------------------ in-flight requests
    def begin(self) -> None:
        """A request started (background work waits for requests to finish)."""
        with self._in_flight_lock:
            self._in_flight += 1
            self.idle.clear()

    def end(self) -> None:
        with self._in_flight_lock:
            self._in_flight = max(0, self._in_flight - 1)
            if self._in_flight == 0:
                self.idle.set()

    def track(self, chunks):
        """A streamed body that counts as in flight until it is fully sent (or abandoned)."""
        self.begin()
        try:
            yield from chunks
        finally:
            self.end()

    # ------------------------------------------------------------------------------ routing
    def route(self, ref: str, key: str | None = None) -> Route:
        """Resolve a reference; the deployment applies to a bare name and to the champion's alias."""
        from store import InvalidRequest, NotFound, parse_ref

        snapshot = self.routing.current()
        try:
            parsed = parse_ref(ref)
            version = snapshot.resolve(parsed)
            deployment = snapshot.deployment(parsed.name) if _follows_deployment(snapshot, parsed) else None
        except NotFound as exc:
            raise not_found(str(exc), {"model": ref, "available": exc.available[:50]}) from None
        except InvalidRequest as exc:
            raise not_found(str(exc), {"model": ref}) from None
        route = Route(asked=ref, name=parsed.name, version=version)
        if deployment is None:
            return route
        route.version = deployment.champion
        route.variant = "champion"
        if deployment.challenger is None:
            return route
        if deployment.mode == "shadow":  # every request also goes to the challenger, in the background
            route.shadow = deployment.challenger
            return route
        share = sticky_share(parsed.name, key) if key is not None else self._random.random()
        if share < deployment.challenger_weight:
            route.version = deployment.challenger
            route.variant = "challenger"
        return route

    def model(self, version) -> LoadedModel:
        """The loaded model of a routed version (cached by its artifact hash)."""
        try:
            return self.models.get(version.sha256, version.task)
        except Exception as exc:
            from store import ArtifactIntegrityError

            if isinstance(exc, ArtifactIntegrityError):
                # the store's message names files of this host: it goes to the log, under an error id
                error_id = uuid.uuid4().hex[:12]
                logger.error(
                    "model file of %s failed its check (error id %s): %s", version.ref, error_id, exc
                )
                raise ApiError(
                    500,
                    "artifact_integrity",
                    f"the model file of {version.ref} failed its integrity check (error id {error_id}; "
                    "details are in the server log)",
                    {"error_id": error_id},
                ) from None
            raise

    def warm(self, refs: list[str] | None = None) -> list[str]:
        """Load the versions behind aliases and deployments (or `refs`) ahead of the first request."""
        snapshot = self.routing.current()
        if refs is None:
            refs = []
            for name, model in snapshot.models.items():
                refs.append(name)
                refs.extend(f"{name}@{alias}" for alias in model.get("aliases", {}))
                deployment = model.get("deployment") or {}
                for key in ("champion_version", "challenger_version"):
                    if deployment.get(key):
                        refs.append(f"{name}@{deployment[key]}")
        done = []
        for ref in dict.fromkeys(refs):
            try:
                self.model(snapshot.resolve(ref))
                done.append(ref)
            except Exception as exc:  # noqa: BLE001 - warming is best effort
                logger.warning("could not preload %s: %s", ref, exc)
        return done

    # ------------------------------------------------------------------------------ one row
    def predict_row(
        self, ref: str, rows: Rows, *, key: str | None = None, request_id: str | None = None
    ) -> dict:
        """The answer to one row: prediction, probabilities, version, variant, warnings."""
        start = time.perf_counter()
        if len(rows) != 1:
            raise invalid_input(
                f"this endpoint predicts one row, got {len(rows)}; send several rows to /predict/{ref}/batch",
                {"rows": len(rows)},
            )
        route = self.route(ref, key if key is not None else rows.key)
        loaded = self.model(route.version)
        raw = rows.record(0)
        typed = loaded.schema.type_row(raw)
        prediction, proba = loaded.predict_typed_row(typed.values)
        request_id = new_request_id(request_id)
        answer: dict[str, Any] = {
            "model": ref,
            "version": route.version.ref,
            "request_id": request_id,
            "predictions": [plain(prediction)],
        }
        if proba is not None:
            answer["probabilities"] = [loaded.probability_dict(proba)]
        if route.variant is not None:
            answer["variant"] = route.variant
        answer["warnings"] = typed.warnings
        if typed.ignored:
            answer["ignored_columns"] = typed.ignored
        latency = (time.perf_counter() - start) * 1000
        self.counters["predictions"] += 1
        self.counters["rows"] += 1
        if self.log_predictions:
            outputs = {"prediction": answer["predictions"][0]}
            if proba is not None:
                outputs["probabilities"] = answer["probabilities"][0]
            self.background.submit(
                self._row_logger(
                    request_id, route, route.variant or "champion", typed.logged, outputs, latency
                )
            )
        if route.shadow is not None:
            self.background.submit(lambda: self._shadow_row(route, raw, request_id))
        return answer

    def _row_logger(self, request_id, route: Route, variant: str, inputs, outputs, latency):
        def write() -> None:
            self.prediction_logger().log(
                request_id=request_id,
                model=route.name,
                version=route.version.version,
                variant=variant,
                inputs=inputs,
                outputs=outputs,
                latency_ms=round(latency, 4),
            )

        return write

    def _shadow_row(self, route: Route, raw: dict, request_id: str) -> None:
        start = time.perf_counter()
        try:
            loaded = self.model(route.shadow)
            typed = loaded.schema.type_row(raw)
            prediction, proba = loaded.predict_typed_row(typed.values)
        except Exception as exc:  # noqa: BLE001 - the challenger's failure never reaches the client
            self.counters["shadow_failures"] += 1
            logger.warning("shadow %s failed on request %s: %s", route.shadow.ref, request_id, exc)
            return
        outputs = {"prediction": plain(prediction)}
        if proba is not None:
            outputs["probabilities"] = loaded.probability_dict(proba)
        if self.log_predictions:
            shadow_route = Route(route.asked, route.name, route.shadow)
            latency = (time.perf_counter() - start) * 1000
            self._row_logger(request_id, shadow_route, "shadow", typed.logged, outputs, latency)()

    # ------------------------------------------------------------------------------ many rows
    def predict_rows(
        self, ref: str, rows: Rows, *, key: str | None = None, request_id: str | None = None
    ) -> RowsResult:
        """Predictions for a JSON batch (already in memory), in chunks of `CHUNK_ROWS` rows."""
        import numpy as np

        start = time.perf_counter()
        route = self.route(ref, key if key is not None else rows.key)
        loaded = self.model(route.version)
        frame = _rows_frame(rows, loaded.schema.columns)
        typed = loaded.schema.type_frame(frame)
        request_id = new_request_id(request_id)
        predictions, probabilities = [], []
        for lo in range(0, len(typed), CHUNK_ROWS):
            part = typed.slice(lo, lo + CHUNK_ROWS)
            labels, proba = loaded.outputs_for_typed(part)
            predictions.append(labels)
            if proba is not None:
                probabilities.append(proba)
            self._log_chunk(
                route, route.variant or "champion", request_id, lo, part, labels, proba, loaded, start
            )
        result = RowsResult(
            route=route,
            request_id=request_id,
            predictions=np.concatenate(predictions),
            probabilities=np.vstack(probabilities) if probabilities else None,
            class_names=loaded.class_names,
            warnings=typed.warnings,
            ignored=typed.ignored,
        )
        self.counters["predictions"] += 1
        self.counters["rows"] += len(typed)
        if route.shadow is not None:
            self.background.submit(lambda: self._shadow_frame(route, frame, request_id))
        return result

    def predict_csv(
        self, ref: str, source, *, key: str | None = None, request_id: str | None = None
    ) -> CsvBatch:
        """A CSV body read and checked, ready to stream its predictions (`CsvBatch`).

        `source` is a seekable binary file, read like the app reads an uploaded file (`csvbody`):
        the same encodings and dialects, every row kept, so output row i answers input row i.
        Every row is read and checked first, so a 422 names the first bad cells before anything
        is sent. A body of up to `KEEP_CSV_ROWS` rows is then predicted from that reading; a
        larger one is read again chunk by chunk, so memory stays bounded by a chunk.
        """
        from .csvbody import detect_dialect, read_chunks
        from .validation import batch_warnings

        start = time.perf_counter()
        route = self.route(ref, key)
        loaded = self.model(route.version)
        request_id = new_request_id(request_id)
        dialect = detect_dialect(source, loaded.schema.columns)
        unseen: dict[str, tuple[int, str]] = {}
        ignored: list[str] = []
        n_rows = 0
        kept: list | None = []  # typed chunks of a small body, so it is read only once
        for offset, chunk in read_chunks(source, dialect, CHUNK_ROWS):
            typed = loaded.schema.type_frame(chunk, first_row=offset)
            ignored = typed.ignored
            for name, (count, example) in typed.unseen.items():
                seen = unseen.get(name)
                unseen[name] = (count + (seen[0] if seen else 0), seen[1] if seen else example)
            n_rows += len(chunk)
            if kept is not None:
                kept.append((offset, chunk, typed))
                if n_rows > KEEP_CSV_ROWS:
                    kept = None
        if n_rows == 0:
            raise invalid_input("the CSV body has a header but no rows; send at least one row to predict")

        def chunks() -> Iterator[tuple[int, Any, Any]]:
            if kept is not None:
                yield from kept
                return
            for offset, chunk in read_chunks(source, dialect, CHUNK_ROWS):
                yield offset, chunk, loaded.schema.type_frame(chunk, first_row=offset)

        return CsvBatch(
            self, route, loaded, request_id, batch_warnings(unseen, ignored), ignored, n_rows, chunks, start
        )

    def _log_chunk(self, route, variant, request_id, offset, typed, labels, proba, loaded, start) -> None:
        """Queue the log records of one chunk; they are built in the background thread."""
        if not self.log_predictions:
            return
        latency = (time.perf_counter() - start) * 1000
        names = loaded.class_names

        def write() -> None:
            inputs = _logged_records(typed)
            append = self.prediction_logger().write  # records in the layout of PredictionLogger.log
            predictions = labels.tolist()
            if labels.dtype.kind == "f":
                predictions = [None if v != v else v for v in predictions]
            probabilities = proba.tolist() if proba is not None else None
            ts, version, lat = time.time(), route.version.version, round(latency, 4)
            for i, row in enumerate(inputs):
                outputs = {"prediction": predictions[i]}
                if probabilities is not None:
                    outputs["probabilities"] = dict(zip(names, probabilities[i], strict=True))
                append(
                    {
                        "request_id": f"{request_id}-{offset + i}",
                        "ts": ts,
                        "model": route.name,
                        "version": version,
                        "variant": variant,
                        "inputs": row,
                        "outputs": outputs,
                        "latency_ms": lat,
                    }
                )

        self.background.submit(write)

    def _shadow_frame(self, route: Route, frame, request_id: str, offset: int = 0) -> None:
        start = time.perf_counter()
        try:
            loaded = self.model(route.shadow)
            typed = loaded.schema.type_frame(frame, first_row=offset)
            labels, proba = loaded.outputs_for_typed(typed)
        except Exception as exc:  # noqa: BLE001 - the challenger's failure never reaches the client
            self.counters["shadow_failures"] += 1
            logger.warning("shadow %s failed on request %s: %s", route.shadow.ref, request_id, exc)
            return
        shadow_route = Route(route.asked, route.name, route.shadow)
        self._log_chunk(shadow_route, "shadow", request_id, offset, typed, labels, proba, loaded, start)

    # ------------------------------------------------------------------------------ logs
    def prediction_logger(self):
        """This process's prediction log; records are written by the background thread (`_flush_if_due`)."""
        if self._prediction_logger is None:
            with self._loggers_lock:
                if self._prediction_logger is None:
                    self._prediction_logger = self.store.monitoring.prediction_logger(
                        flush_interval=LOG_SAFETY_FLUSH_SECONDS, max_buffer=LOG_MAX_BUFFER
                    )
        return self._prediction_logger

    def _flush_if_due(self) -> None:
        """Write buffered log records: at least every second, at once when many are waiting."""
        writer = self._prediction_logger
        if writer is None:
            return
        pending = writer.pending
        if pending and (
            pending >= LOG_FLUSH_RECORDS or time.monotonic() - self._last_flush >= LOG_FLUSH_SECONDS
        ):
            self.background.wait_for_idle()
            writer.flush()
            self._last_flush = time.monotonic()

    def feedback_logger(self):
        if self._feedback_logger is None:
            with self._loggers_lock:
                if self._feedback_logger is None:
                    self._feedback_logger = self.store.monitoring.feedback_logger()
        return self._feedback_logger

    def record_feedback(self, items: list[dict]) -> int:
        """Queue actual outcomes for earlier request ids; returns how many were accepted."""
        log = self.feedback_logger().log
        for item in items:
            log(request_id=item["request_id"], actual=item["actual"])
        return len(items)

    def flush(self) -> None:
        """Write every queued log record now (tests and shutdown)."""
        self.background.wait()
        for writer in (self._prediction_logger, self._feedback_logger):
            if writer is not None:
                writer.flush()

    def close(self) -> None:
        self.background.close()
        for writer in (self._prediction_logger, self._feedback_logger):
            if writer is not None:
                writer.close()

    def health(self) -> dict:
        return {
            "status": "ok",
            "uptime_seconds": round(time.time() - self.started, 3),
            "pid": os.getpid(),
            "models_loaded": len(self.models.loaded()),
            "predictions": self.counters["predictions"],
            "rows": self.counters["rows"],
            "log_records_dropped": self.background.dropped,
            "background_failures": self.background.failed,
            "shadow_failures": self.counters["shadow_failures"],
        }


# --------------------------------------------------------------------------- frames
def _rows_frame(rows: Rows, required: list[str]):
    """A raw object frame of a JSON batch; 422 when some rows lack an input column."""
    import pandas as pd

    if rows.records is not None:
        problems = []
        for name in required:
            lacking = [i for i, row in enumerate(rows.records) if name not in row]
            if lacking and len(lacking) < len(rows.records):
                shown = ", ".join(map(str, lacking[:10])) + (" ..." if len(lacking) > 10 else "")
                problems.append(
                    {
                        "column": name,
                        "problem": "missing",
                        "rows": lacking[:100],
                        "message": f"column {name!r} is missing in row{'s' if len(lacking) > 1 else ''} {shown}",
                    }
                )
        if problems:
            raise invalid_input(
                problems[0]["message"]
                + (f" (and {len(problems) - 1} more columns)" if len(problems) > 1 else ""),
                problems,
            )
        columns = rows.column_names()
        data = {name: pd.Series([row.get(name) for row in rows.records], dtype=object) for name in columns}
        return pd.DataFrame(data, columns=columns, index=pd.RangeIndex(len(rows.records)))
    # object columns keep each value as sent (an int stays an int), like the single-row path reads it
    return pd.DataFrame(rows.data, columns=rows.columns, dtype=object)


def _prediction_frame(labels, proba, class_names):
    """The CSV contract of `automl predict`: `prediction`, plus `proba_<class>` per class."""
    import pandas as pd

    out = pd.DataFrame({"prediction": labels})
    if proba is not None:
        for j, name in enumerate(class_names):
            out[f"proba_{name}"] = proba[:, j]
    return out


def _logged_records(typed) -> list[dict]:
    """Typed rows as JSON-safe dicts (missing as None; dates as written), for the prediction log."""
    import numpy as np

    columns = {}
    for name, values in typed.columns.items():
        if name in typed.raw_dates:
            columns[name] = [
                v.strip() if isinstance(v, str) and v.strip() else None for v in typed.raw_dates[name]
            ]
        elif values.dtype.kind == "f":
            columns[name] = np.where(np.isnan(values), None, values).tolist()
        else:
            columns[name] = values.tolist()
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
