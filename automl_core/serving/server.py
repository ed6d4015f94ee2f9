"""The standard-library HTTP adapter: `ThreadingHTTPServer` in front of `api.Api.handle`.

HTTP/1.1 with keep-alive, and Nagle's algorithm turned off on every connection (without
`TCP_NODELAY` a keep-alive client waits ~40 ms per response for the delayed ACK). A response is
written with one `send` (status line, headers and body together); streamed bodies use chunked
encoding. The body size limit is checked against `Content-Length` before a byte of the body is
read (413, then the connection is closed); idle or slow connections time out; past
`max_connections` open connections a new one gets 503 at once. Errors the standard library
raises while parsing a request line or headers are answered in the API's JSON error shape.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .api import DEFAULT_MAX_BODY_BYTES, Api, Body, Request, Response, encode
from .errors import ApiError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 256
_DRAIN_LIMIT = 1 << 20
_REASONS = {code: phrase for code, (phrase, _) in BaseHTTPRequestHandler.responses.items()}


class _Clock:
    """The `Date` header, formatted once per second."""

    def __init__(self):
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._text = email.utils.formatdate(second, usegmt=True)
            self._second = second
        return self._text


class RequestHandler(BaseHTTPRequestHandler):
    """One connection: reads requests, hands them to the API, writes the answers."""

    protocol_version = "HTTP/1.1"
    server_version = "automl-serve/1"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    clock = _Clock()

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not a TCP socket
            pass

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = "HTTP/1.1"
                self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve()
            self.wfile.flush()
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True

    def _serve(self) -> None:
        server: ServingHTTPServer = self.server  # type: ignore[assignment]
        limit = server.max_body_bytes
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        length_text = self.headers.get("Content-Length")
        chunked = encoding == "chunked"
        length: int | None = 0
        if encoding and not chunked:
            self._refuse(ApiError(501, "not_implemented", f"Transfer-Encoding {encoding!r} is not supported"))
            return
        if not chunked and length_text is not None:
            try:
                length = int(length_text)
                if length < 0:
                    raise ValueError
            except ValueError:
                self._refuse(
                    ApiError(400, "bad_request", f"Content-Length {length_text!r} is not a byte count")
                )
                return
            if length > limit:
                self._refuse(
                    ApiError(
                        413,
                        "payload_too_large",
                        f"the request body ({length:,} bytes) is larger than the limit of {limit:,} bytes",
                        {"limit_bytes": limit, "content_length": length},
                    )
                )
                return
        body = Body(self.rfile, None if chunked else length, limit, chunked=chunked)
        request = Request(self.command, self.path, dict(self.headers.items()), body)
        response = server.api.handle(request)
        if not body.consumed:
            self._drain(body, length, chunked)
        if not body.complete:
            self.close_connection = True  # the rest of a broken body must not be read as a request
        if response.status == 413:
            self.close_connection = True
        self._write(response)
        if server.access_log:
            logger.info('%s "%s %s" %d', self.client_address[0], self.command, self.path, response.status)

    def _drain(self, body: Body, length: int | None, chunked: bool) -> None:
        """Skip an unread body so the connection can carry the next request, or close it."""
        if chunked or (length or 0) > _DRAIN_LIMIT:
            self.close_connection = True
            return
        try:
            for _ in body.blocks():
                pass
        except Exception:  # noqa: BLE001 - a broken body only ends this connection (complete stays False)
            pass

    def _refuse(self, error: ApiError) -> None:
        self.close_connection = True
        self._write(Response(error.status, encode(error.body()), headers=dict(error.headers)))

    def _head(self, response: Response, extra: dict[str, str]) -> bytes:
        lines = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}",
            f"Server: {self.server_version}",
            f"Date: {self.clock.now()}",
            f"Content-Type: {response.content_type}",
        ]
        lines += [f"{k}: {v}" for k, v in {**response.headers, **extra}.items()]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    def _write(self, response: Response) -> None:
        if self.command == "HEAD" or response.status in (204, 304):
            length = 0 if response.status in (204, 304) else len(response.data())
            self.wfile.write(self._head(response, {"Content-Length": str(length)}))
            return
        if not response.streamed:
            data = bytes(response.body)
            self.wfile.write(self._head(response, {"Content-Length": str(len(data))}) + data)
            return
        chunked = (
            self.request_version != "HTTP/1.0"
        )  # an HTTP/1.0 client reads the body until the connection closes
        if not chunked:
            self.close_connection = True
        self.wfile.write(self._head(response, {"Transfer-Encoding": "chunked"} if chunked else {}))
        pieces = iter(response.body)
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        except OSError:  # the client went away mid-stream
            self.close_connection = True
            return
        except Exception as exc:  # noqa: BLE001 - end the transfer unterminated: the client sees it failed
            error_id = f"{time.time_ns():x}"[-12:]
            logger.error("streamed response failed (error id %s)", error_id, exc_info=exc)
            self.close_connection = True
            return
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def handle_expect_100(self) -> bool:
        """Refuse a body over the limit instead of inviting the client to send it."""
        length = self.headers.get("Content-Length", "")
        limit = self.server.max_body_bytes  # type: ignore[attr-defined]
        if length.isdigit() and int(length) > limit:
            self._refuse(
                ApiError(
                    413,
                    "payload_too_large",
                    f"the request body ({int(length):,} bytes) is larger than the limit of {limit:,} bytes",
                    {"limit_bytes": limit, "content_length": int(length)},
                )
            )
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the standard library's request parsing, in the API's JSON shape."""
        reason = _REASONS.get(code, "error")
        text = message or reason
        error = ApiError(code, reason.lower().replace(" ", "_"), f"{text}{': ' + explain if explain else ''}")
        self.close_connection = True
        try:
            self._write(Response(code, encode(error.body())))
        except OSError:
            pass

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the standard library's signature
        if getattr(self.server, "access_log", False):
            logger.info("%s - %s", self.address_string(), format % args)


class ServingHTTPServer(ThreadingHTTPServer):
    """A thread per connection (daemon threads), at most `max_connections` at once."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address,
        api: Api,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        access_log: bool = False,
    ):
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, RequestHandler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                body = encode(ApiError(503, "busy", "too many open connections; try again").body())
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        logger.exception("connection from %s failed", client_address[0] if client_address else "?")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(
    store=None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    data_dirs: list | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    access_log: bool = False,
    api: Api | None = None,
) -> ServingHTTPServer:
    """A bound server (port 0 picks a free one); call `serve_forever()` on it."""
    if api is None:
        if store is None:
            from store import Store

            store = Store()
        api = Api(store, token=token, data_dirs=data_dirs, max_body_bytes=max_body_bytes)
    server = ServingHTTPServer((host, port), api, max_body_bytes=max_body_bytes, access_log=access_log)
    if _is_loopback_address(server.server_address[0]):
        api.loopback_only = True  # only loopback Host names: a rebound DNS name is refused (403)
    return server


def _is_loopback_address(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def warm_up(server: ServingHTTPServer) -> None:
    """Housekeeping and preloading after the socket is open: recover the store, load aliased models."""
    try:
        server.api.store.recover()
    except Exception as exc:  # noqa: BLE001 - a busy database only delays recovery to the next start
        logger.warning("store recovery skipped: %s", exc)
    try:
        loaded = server.api.service.warm()
        if loaded:
            logger.info("preloaded %s", ", ".join(loaded))
    except Exception as exc:  # noqa: BLE001
        logger.warning("preloading failed: %s", exc)


def serve(server: ServingHTTPServer, *, warm: bool = True) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM), then flush the prediction logs."""
    import signal

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if in_main else None
    if warm:
        threading.Thread(target=warm_up, args=(server,), name="serving-warm-up", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        server.server_close()
        server.api.close()
