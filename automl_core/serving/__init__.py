"""The prediction server: a framework-free core behind a standard-library HTTP adapter.

- `payloads`: the request formats (`inputs`, `dataframe_records`, `dataframe_split`, `instances`).
- `validation`: rows checked against a model's input schema and read the way training read them.
- `fastpath`: the compiled single-row path (no DataFrame), equal to the pipeline's outputs.
- `csvbody`: a CSV request body read like the app reads a file (encoding, dialect), in chunks.
- `core`: `PredictionService`, reference -> model, A/B and shadow deployments, prediction logs.
- `management`: models, training jobs, metrics, importance, explanations, comparisons.
- `api`: `Api.handle(Request) -> Response`, routes, auth and errors; testable without sockets.
- `server`: `make_server` / `serve`, the `ThreadingHTTPServer` adapter.
- `cli`: `add_parser(subparsers)` registers `automl serve`.

Importing this package loads neither pandas nor scikit-learn; they load with the first model.
"""

from __future__ import annotations

from automl_core._lazy import lazy_getattr

_EXPORTS = {
    "Api": ".api",
    "Request": ".api",
    "Response": ".api",
    "ApiError": ".errors",
    "PredictionService": ".core",
    "make_server": ".server",
    "serve": ".server",
    "add_parser": ".cli",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
