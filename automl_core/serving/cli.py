"""`automl serve`: the prediction server from the command line.

    automl serve [--host 127.0.0.1] [--port 8000] [--token TOKEN] [--data-dir DIR] [--max-body-mb N]

Binds the loopback address unless told otherwise; the token may also come from AUTOML_API_TOKEN.
Models come from the store of AUTOML_HOME (default ~/.automl).
"""

from __future__ import annotations

import os
import sys

TOKEN_ENV_VAR = "AUTOML_API_TOKEN"


def add_parser(subparsers):
    """Register `serve` on the `automl` command's subparsers; returns the new parser."""
    from .server import DEFAULT_HOST, DEFAULT_PORT

    parser = subparsers.add_parser(
        "serve",
        help="serve registered models over HTTP (REST API, JSON and CSV)",
        description="Serve the registry of AUTOML_HOME over HTTP under /api/v1 (see /api/v1/openapi.json).",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--token", default=None, help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV_VAR})"
    )
    parser.add_argument(
        "--data-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="folder whose files POST /models/train may read by path (repeatable)",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=100.0, help="largest request body in MB (default 100)"
    )
    parser.add_argument("--access-log", action="store_true", help="log one line per request")
    parser.add_argument(
        "--no-warm", action="store_true", help="do not preload aliased and deployed models at start"
    )
    parser.set_defaults(func=cmd_serve)
    return parser


def cmd_serve(args) -> int:
    import logging

    from .server import make_server, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = args.token or os.environ.get(TOKEN_ENV_VAR) or None
    if args.max_body_mb <= 0:
        sys.stderr.write("error: --max-body-mb must be positive\n")
        return 2
    for folder in args.data_dir or []:
        if not os.path.isdir(folder):
            sys.stderr.write(f"error: --data-dir {folder!r} is not a folder\n")
            return 2
    try:
        server = make_server(
            host=args.host,
            port=args.port,
            token=token,
            data_dirs=args.data_dir,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            access_log=args.access_log,
        )
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 1
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(
            f"warning: serving on {args.host} without a token; anyone who can reach it can use it\n"
        )
    print(
        f"serving {server.api.store.root} on {server.url}/api/v1 (token {'required' if token else 'not required'})",
        flush=True,
    )
    serve(server, warm=not args.no_warm)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m automl_core.serving.cli` runs `serve` on its own (used by tests and benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser(prog="automl")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    sys.exit(main())
