"""The REST API as a plain function from a `Request` to a `Response`: routes, auth, errors. No sockets.

`Api.handle` never raises: refusals become `{"error": {"code", "message", "details"}}` with an honest
status (400 malformed JSON, 401 token, 404 unknown model or route, 405 with `Allow`, 413 body too
large, 415 content type, 422 invalid input), and anything unexpected becomes a 500 carrying an
error id that is logged with its traceback (never sent). The socket adapter (`server`) and the
in-process tests both call `handle`, so the whole API is testable without a network.

All routes live under `/api/v1`; `model_id` is a registry reference (`NAME`, `NAME@1.2.0`,
`NAME@production`). When the server has a token, every route but `/health` needs
`Authorization: Bearer TOKEN` (the playground page also accepts `?token=` because a browser
cannot add headers to a link).

The token is off by default, so a local server is also guarded against the browser: a body must
declare its type (`application/json`, or `text/csv` where a CSV is taken; 415 otherwise, so a
form or `text/plain` post from another site never passes for JSON), a request whose `Origin` is
not the server's own gets 403, and a server bound to a loopback address answers 403 to any `Host`
that is not a loopback name (DNS rebinding). curl and other programs send no `Origin`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from .errors import ApiError, bad_request
from .payloads import CSV_TYPE, JSON_TYPE, KEY_HEADER, parse_json, parse_rows

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024
READ_BLOCK = 1 << 20
UPLOAD_TYPES = ("text/csv", "application/octet-stream", "application/vnd.apache.parquet")


# --------------------------------------------------------------------------- request and response
class Body:
    """A request body read on demand, never beyond the size limit (413 when it would be)."""

    def __init__(self, stream, length: int | None, limit: int, *, chunked: bool = False):
        self.stream = stream
        self.length = length
        self.limit = limit
        self.chunked = chunked
        self.consumed = length == 0 and not chunked
        self.complete = self.consumed  # every byte of the body was read, nothing more

    @classmethod
    def of(cls, data: bytes, limit: int = DEFAULT_MAX_BODY_BYTES) -> Body:
        import io

        return cls(io.BytesIO(data), len(data), limit)

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            "payload_too_large",
            f"the request body is larger than the limit of {self.limit:,} bytes",
            {"limit_bytes": self.limit},
        )

    def blocks(self) -> Iterator[bytes]:
        """The body in blocks of at most `READ_BLOCK` bytes."""
        if self.consumed:
            return
        self.consumed = True
        if self.chunked:
            yield from self._chunked_blocks()
            self.complete = True
            return
        if self.length is None:
            self.complete = True
            return
        if self.length > self.limit:
            raise self._too_large()
        left = self.length
        while left > 0:
            block = self.stream.read(min(READ_BLOCK, left))
            if not block:
                raise bad_request(f"the request body ended after {self.length - left} of {self.length} bytes")
            left -= len(block)
            yield block
        self.complete = True

    def _chunked_blocks(self) -> Iterator[bytes]:
        total = 0
        while True:
            line = self.stream.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise bad_request("malformed chunked request body") from None
            if size == 0:
                while self.stream.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            total += size
            if total > self.limit:
                raise self._too_large()
            data = self.stream.read(size)
            if len(data) != size:
                raise bad_request("the chunked request body ended early")
            self.stream.readline(1024)
            yield data

    def read(self) -> bytes:
        return b"".join(self.blocks())

    def spool(self):
        """The body copied to a temporary file (kept in memory up to `SPOOL_BYTES`), rewound."""
        spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        for block in self.blocks():
            spooled.write(block)
        spooled.seek(0)
        return spooled


@dataclass
class Request:
    """What the API needs of an HTTP request; `headers` keys are lower case."""

    method: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Body = field(default_factory=lambda: Body.of(b""))

    def __post_init__(self):
        path, _, query = self.target.partition("?")
        self.path = path
        self.query = parse_qs(query, keep_blank_values=True)
        self.headers = {k.lower(): v for k, v in self.headers.items()}

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    """Status, body (bytes, or an iterator of bytes sent with chunked encoding) and headers."""

    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def streamed(self) -> bool:
        return not isinstance(self.body, (bytes, bytearray))

    def json(self) -> Any:
        """The decoded JSON body (tests)."""
        return json.loads(self.data())

    def data(self) -> bytes:
        if self.streamed:
            self.body = b"".join(self.body)
        return bytes(self.body)


def _default(obj: Any) -> Any:
    from store.jsonfiles import to_jsonable

    return to_jsonable(obj)


def encode(obj: Any) -> bytes:
    """Strict JSON (NaN becomes null)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_default).encode()
    except ValueError:
        from store.jsonfiles import to_jsonable

        return json.dumps(to_jsonable(obj), separators=(",", ":"), allow_nan=False).encode()


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(status, encode(obj), JSON_TYPE, headers or {})


def error_response(error: ApiError) -> Response:
    headers = dict(error.headers)
    return Response(error.status, encode(error.body()), JSON_TYPE, headers)


# --------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class Route:
    pattern: re.Pattern
    methods: dict[str, str]  # HTTP method -> handler method name
    public: bool = False
    query_token: bool = False


def _route(template: str, methods: dict[str, str], **flags) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(re.compile(f"^{regex}/?$"), methods, **flags)


ROUTES = (
    _route(f"{PREFIX}/health", {"GET": "health"}, public=True),
    _route(f"{PREFIX}/openapi.json", {"GET": "openapi"}),
    _route("/openapi.json", {"GET": "openapi"}),
    _route(f"{PREFIX}/models", {"GET": "list_models"}),
    _route(f"{PREFIX}/models/train", {"POST": "train"}),
    _route(f"{PREFIX}/models/compare", {"POST": "compare"}),
    _route(f"{PREFIX}/models/jobs/{{job_id}}", {"GET": "job"}),
    _route(f"{PREFIX}/models/{{model_id}}", {"GET": "model_details", "DELETE": "delete_model"}),
    _route(f"{PREFIX}/models/{{model_id}}/metrics", {"GET": "metrics"}),
    _route(f"{PREFIX}/models/{{model_id}}/importance", {"GET": "importance"}),
    _route(f"{PREFIX}/models/{{model_id}}/explain", {"POST": "explain"}),
    _route(f"{PREFIX}/models/{{model_id}}/playground", {"GET": "playground"}, query_token=True),
    _route(f"{PREFIX}/predict/{{model_id}}", {"POST": "predict"}),
    _route(f"{PREFIX}/predict/{{model_id}}/batch", {"POST": "predict_batch"}),
    _route(f"{PREFIX}/feedback", {"POST": "feedback"}),
)


class Api:
    """The workbench's REST API over one store."""

    def __init__(
        self,
        store,
        *,
        token: str | None = None,
        data_dirs: list | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        service=None,
        log_predictions: bool = True,
        job_workers: int | None = None,
        loopback_only: bool = False,
    ):
        from .core import PredictionService
        from .management import Management

        self.store = store
        self.token = token or None
        self.max_body_bytes = max_body_bytes
        self.loopback_only = loopback_only  # refuse Host headers that are not loopback names (DNS rebinding)
        self.service = service or PredictionService(store, log_predictions=log_predictions)
        self.management = Management(store, self.service, data_dirs=data_dirs, job_workers=job_workers)
        self._openapi_bytes: bytes | None = None

    # ------------------------------------------------------------------------------ dispatch
    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        self.service.begin()
        try:
            response = self._dispatch(request)
            if response.streamed:
                response.body = self.service.track(response.body)
            return response
        except ApiError as error:
            return error_response(error)
        except Exception as exc:  # noqa: BLE001 - the server answers 500 and keeps serving
            return self._internal_error(exc)
        finally:
            self.service.end()

    def _internal_error(self, exc: Exception) -> Response:
        mapped = _known_error(exc)
        if mapped is not None:
            return error_response(mapped)
        error_id = uuid.uuid4().hex[:12]
        logger.error("internal error %s", error_id, exc_info=exc)
        return error_response(
            ApiError(
                500,
                "internal_error",
                f"the server could not answer this request (error id {error_id})",
                {"error_id": error_id},
            )
        )

    def match(self, path: str) -> dict[str, tuple[Route, str, dict[str, str]]]:
        """(route, handler name, decoded path parameters) by HTTP method, for a path."""
        methods: dict[str, tuple[Route, str, dict[str, str]]] = {}
        for route in ROUTES:
            found = route.pattern.match(path)
            if found is None:
                continue
            params = {k: unquote(v) for k, v in found.groupdict().items()}
            for method, handler in route.methods.items():
                methods.setdefault(method, (route, handler, params))
                if method == "GET":
                    methods.setdefault("HEAD", (route, handler, params))
        return methods

    def _check_origin(self, request: Request) -> None:
        """403 for a request a web page of another site made the browser send.

        A page cannot set `Host`: after DNS rebinding (evil.example resolving to 127.0.0.1) its
        requests still say `Host: evil.example`, so a server bound to a loopback address answers
        only loopback names. A cross-site `fetch` or form always carries `Origin`, which must then
        be this server's own (`http://` + `Host`), as it is for the playground page it serves.
        Programs (curl, client libraries) send no `Origin` and are not affected.
        """
        host = request.headers.get("host", "").strip()
        if self.loopback_only and host and not _is_loopback_host(host):
            raise ApiError(
                403,
                "forbidden_host",
                f"this server listens on a loopback address and answers only requests addressed to "
                f"localhost, 127.0.0.1 or [::1]; got Host {host!r}",
                {"host": host},
            )
        origin = request.headers.get("origin")
        if origin is None:
            return
        own = f"http://{host.lower()}" if host else None
        if origin.strip().lower().rstrip("/") != own:
            raise ApiError(
                403,
                "forbidden_origin",
                f"requests from web pages of another origin are refused: Origin {origin!r} is not this "
                f"server's own ({own or 'unknown: no Host header'}); call the API from a program, or from "
                "the pages this server serves",
                {"origin": origin},
            )

    def _dispatch(self, request: Request) -> Response:
        self._check_origin(request)
        methods = self.match(request.path)
        if not methods:
            raise ApiError(
                404,
                "not_found",
                f"no route {request.path!r}; the API lives under {PREFIX} (see {PREFIX}/openapi.json)",
            )
        allow = ", ".join(sorted(methods | {"OPTIONS": None}))
        method = request.method.upper()
        route = methods[method][0] if method in methods else next(iter(methods.values()))[0]
        if not route.public:
            self._authorize(request, route)
        if method == "OPTIONS":
            return Response(204, b"", JSON_TYPE, {"Allow": allow})
        if method not in methods:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {request.path}; allowed: {allow}",
                {"allowed": allow.split(", ")},
                headers={"Allow": allow},
            )
        _, handler, params = methods[method]
        return getattr(self, f"_{handler}")(request, **params)

    def _authorize(self, request: Request, route: Route) -> None:
        if self.token is None:
            return
        given = None
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            given = header[7:].strip()
        elif request.headers.get("x-api-token"):
            given = request.headers["x-api-token"].strip()
        elif route.query_token:
            given = request.param("token")
        if given is None:
            raise ApiError(
                401,
                "unauthorized",
                "this server needs a token: send 'Authorization: Bearer TOKEN'",
                headers={"WWW-Authenticate": 'Bearer realm="automl"'},
            )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "the token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="automl", error="invalid_token"'},
            )

    # ------------------------------------------------------------------------------ helpers
    def _json_body(self, request: Request) -> Any:
        kind = request.content_type
        if kind != JSON_TYPE:
            raise _unsupported(kind, [JSON_TYPE])
        return parse_json(request.body.read())

    # ------------------------------------------------------------------------------ handlers
    def _health(self, request: Request) -> Response:
        return json_response(self.service.health())

    def _openapi(self, request: Request) -> Response:
        if self._openapi_bytes is None:
            from .openapi import openapi_spec

            self._openapi_bytes = encode(openapi_spec())
        return Response(200, self._openapi_bytes, JSON_TYPE)

    def _list_models(self, request: Request) -> Response:
        return json_response(self.management.list_models())

    def _model_details(self, request: Request, model_id: str) -> Response:
        return json_response(self.management.model_details(model_id))

    def _delete_model(self, request: Request, model_id: str) -> Response:
        return json_response(self.management.delete(model_id))

    def _metrics(self, request: Request, model_id: str) -> Response:
        return json_response(self.management.metrics(model_id))

    def _importance(self, request: Request, model_id: str) -> Response:
        return json_response(self.management.importance(model_id))

    def _explain(self, request: Request, model_id: str) -> Response:
        rows = parse_rows(self._json_body(request))
        return json_response(self.management.explain(model_id, rows))

    def _compare(self, request: Request) -> Response:
        return json_response(self.management.compare(self._json_body(request)))

    def _train(self, request: Request) -> Response:
        kind = request.content_type
        if kind in UPLOAD_TYPES:
            settings = {k: v[-1] for k, v in request.query.items()}
            filename = settings.pop("filename", None) or "upload.csv"
            upload = request.body.read()
            if not upload.strip():
                raise bad_request("the uploaded file is empty")
            answer = self.management.train(settings, upload, filename)
        elif kind == JSON_TYPE:
            body = self._json_body(request)
            if not isinstance(body, dict):
                raise bad_request("the body must be an object of training settings")
            answer = self.management.train(body)
        else:
            raise _unsupported(
                kind,
                [JSON_TYPE, *UPLOAD_TYPES],
                f"send the training settings as {JSON_TYPE}, or the file as text/csv with settings in the query",
            )
        return json_response(answer, 202, {"Location": answer["status_url"]})

    def _job(self, request: Request, job_id: str) -> Response:
        return json_response(self.management.job(job_id))

    def _playground(self, request: Request, model_id: str) -> Response:
        from .playground import playground_page

        details = self.management.model_details(model_id)
        # the caller proved it holds the token; the page's script needs it to call the API
        page = playground_page(model_id, details, token=self.token)
        return Response(
            200,
            page.encode(),
            "text/html; charset=utf-8",
            {
                "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    def _predict(self, request: Request, model_id: str) -> Response:
        rows = parse_rows(self._json_body(request))
        answer = self.service.predict_row(
            model_id,
            rows,
            key=request.headers.get(KEY_HEADER.lower()),
            request_id=request.headers.get("x-request-id"),
        )
        return json_response(answer)

    def _predict_batch(self, request: Request, model_id: str) -> Response:
        key = request.headers.get(KEY_HEADER.lower()) or request.param("key")
        request_id = request.headers.get("x-request-id")
        if request.content_type == CSV_TYPE:
            source = request.body.spool()
            try:
                batch = self.service.predict_csv(model_id, source, key=key, request_id=request_id)
            except BaseException:
                source.close()
                raise
            headers = {
                "X-Request-Id": batch.request_id,
                "X-Model-Version": batch.route.version.ref,
                "X-Rows": str(batch.rows),
            }
            if batch.route.variant:
                headers["X-Variant"] = batch.route.variant
            if batch.warnings:
                headers["X-Warnings"] = _header_text(" | ".join(batch.warnings))
            return Response(200, _closing(batch.csv(), source), "text/csv; charset=utf-8", headers)
        if request.content_type != JSON_TYPE:
            raise _unsupported(request.content_type, [JSON_TYPE, CSV_TYPE])
        rows = parse_rows(self._json_body(request))
        result = self.service.predict_rows(model_id, rows, key=key or rows.key, request_id=request_id)
        return Response(200, _encode_rows(model_id, result), JSON_TYPE, {"X-Request-Id": result.request_id})

    def _feedback(self, request: Request) -> Response:
        body = self._json_body(request)
        items = body.get("feedback") if isinstance(body, dict) and "feedback" in body else body
        items = [items] if isinstance(items, dict) else items
        if not isinstance(items, list) or not items:
            raise bad_request(
                'expected {"request_id": ..., "actual": ...}, a list of them, or {"feedback": [...]}'
            )
        problems = []
        for i, item in enumerate(items):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("request_id"), str)
                or "actual" not in item
            ):
                problems.append(
                    {"index": i, "problem": "expected an object with a string 'request_id' and 'actual'"}
                )
            elif isinstance(item["actual"], (dict, list)):
                problems.append(
                    {"index": i, "problem": "'actual' must be a single value (number, text or boolean)"}
                )
            elif len(item["request_id"]) > 128:
                problems.append({"index": i, "problem": "'request_id' is longer than 128 characters"})
        if problems:
            raise ApiError(
                422,
                "invalid_input",
                f"feedback item {problems[0]['index']}: {problems[0]['problem']}",
                problems,
            )
        accepted = self.service.record_feedback(items)
        return json_response({"accepted": accepted}, 202)

    def close(self) -> None:
        self.management.close()
        self.service.close()


def _unsupported(kind: str, expected: list[str], hint: str | None = None) -> ApiError:
    """415 for a body of another (or no) content type: a browser form or a `text/plain` fetch
    from another site must not pass for JSON, so the type is never guessed from the bytes."""
    got = f"got {kind!r}" if kind else "the request has no Content-Type header"
    wanted = hint or f"expected Content-Type: {' or '.join(expected)}"
    return ApiError(415, "unsupported_media_type", f"{wanted}; {got}", {"expected": expected})


def _is_loopback_host(host: str) -> bool:
    """Whether a `Host` header names this machine: localhost (or *.localhost), 127.0.0.0/8, [::1]."""
    import ipaddress

    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _header_text(text: str, limit: int = 2000) -> str:
    ascii_text = text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
    return ascii_text[:limit]


def _closing(chunks: Iterator[bytes], resource) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        resource.close()


def _encode_rows(model_id: str, result) -> Iterator[bytes]:
    """A batch answer as JSON, encoded chunk by chunk."""
    import numpy as np

    from .core import CHUNK_ROWS

    head: dict[str, Any] = {
        "model": model_id,
        "version": result.route.version.ref,
        "request_id": result.request_id,
    }
    if result.route.variant is not None:
        head["variant"] = result.route.variant
    head["rows"] = int(len(result.predictions))
    head["warnings"] = result.warnings
    if result.ignored:
        head["ignored_columns"] = result.ignored
    yield encode(head)[:-1] + b',"predictions":['
    predictions = result.predictions
    for lo in range(0, len(predictions), CHUNK_ROWS):
        values = predictions[lo : lo + CHUNK_ROWS].tolist()  # labels are plain Python values already
        if predictions.dtype.kind == "f":
            values = [None if v != v else v for v in values]
        yield (b"," if lo else b"") + encode(values)[1:-1]
    if result.probabilities is not None:
        yield b'],"probabilities":['
        # one row as text: {"class": p, ...}; %r of a float is what json.dumps writes for it
        template = (
            "{" + ",".join(json.dumps(name).replace("%", "%%") + ":%r" for name in result.class_names) + "}"
        )
        proba = result.probabilities
        names = result.class_names
        for lo in range(0, len(proba), CHUNK_ROWS):
            part = proba[lo : lo + CHUNK_ROWS]
            if np.isfinite(part).all():
                text = ",".join(template % tuple(row) for row in part.tolist()).encode()
            else:  # never expected from a classifier; strict JSON (null) all the same
                text = encode([dict(zip(names, row, strict=True)) for row in part.tolist()])[1:-1]
            yield (b"," if lo else b"") + text
    yield b"]}"


def _known_error(exc: Exception) -> ApiError | None:
    """Errors of the engine and the store that explain themselves: a 4xx, not a 500."""
    from .management import store_errors

    mapped = store_errors(exc) if type(exc).__module__.startswith("store") else None
    if mapped is not None:
        return mapped
    if type(exc).__module__.startswith("automl_core") and isinstance(exc, ValueError):
        details = getattr(exc, "details", None)
        return ApiError(422, "invalid_input", str(exc), details)
    return None


Handler = Callable[[Request], Response]
