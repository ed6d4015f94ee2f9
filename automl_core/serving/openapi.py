"""The OpenAPI 3.1 description of the API, built from the same constants the code uses."""

from __future__ import annotations

from .api import PREFIX
from .management import TRAIN_SETTINGS
from .payloads import DATAFRAME_RECORDS, DATAFRAME_SPLIT, FORMAT_KEYS, INPUTS, INSTANCES, KEY, KEY_HEADER

MODEL_ID = {
    "name": "model_id",
    "in": "path",
    "required": True,
    "description": "A registry reference: NAME (latest, or the deployment when one exists), NAME@1.2.0 (pins that "
    "version), NAME@production (the deployment when it is the deployment's champion reference, else that alias).",
    "schema": {"type": "string", "examples": ["loans", "loans@1.2.0", "loans@production"]},
}
REQUEST_ID = {
    "name": "X-Request-Id",
    "in": "header",
    "required": False,
    "description": "Your id for this request (1-64 characters of letters, digits, '.', '_', ':', '-'); a random one otherwise. "
    "Batch row i is logged as '<id>-<i>' (use these ids to post feedback).",
    "schema": {"type": "string"},
}
STICKY_KEY = {
    "name": KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "A/B stickiness: the same key always gets the same variant (the body field 'key' does the same).",
    "schema": {"type": "string"},
}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _error("Malformed JSON or an unknown payload shape"),
    "401": _error("Missing or wrong token (when the server has one)"),
    "404": _error("Unknown model, version, alias, job or route"),
    "405": _error("Method not allowed (see the Allow header)"),
    "413": _error("Body larger than the server's limit (checked before the body is read)"),
    "403": _error(
        "A request from a web page of another origin (Origin is not this server's), or, when the server is bound "
        "to a loopback address, one whose Host is not a loopback name (DNS rebinding)"
    ),
    "415": _error("Missing or wrong Content-Type (a body is never guessed to be JSON)"),
    "422": _error("Rows that do not fit the model's input schema (the column and the value are named)"),
    "500": _error("Unexpected error; the message carries an error id found in the server log"),
}


def _ops(*codes: str) -> dict:
    return {code: ERRORS[code] for code in codes}


def openapi_spec() -> dict:
    """The API as an OpenAPI 3.1 document."""
    row = {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "description": 'column -> raw value (numbers may be written as text, e.g. "$90,000.00"; null is missing)',
    }
    predict_request = {
        "type": "object",
        "description": f"Exactly one of {', '.join(FORMAT_KEYS)}; optionally '{KEY}' for A/B stickiness.",
        "properties": {
            INPUTS: {"oneOf": [row, {"type": "array", "items": row}]},
            DATAFRAME_RECORDS: {"type": "array", "items": row},
            DATAFRAME_SPLIT: {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                    "index": {"type": "array"},
                },
                "required": ["columns", "data"],
            },
            INSTANCES: {"oneOf": [row, {"type": "array", "items": row}]},
            KEY: {"type": "string"},
        },
        "examples": [{INPUTS: {"age": 31, "income": "$52,000.00", "state": "CA"}}],
    }
    predict_response = {
        "type": "object",
        "properties": {
            "model": {"type": "string", "description": "the reference asked for"},
            "version": {"type": "string", "description": "NAME@VERSION that answered"},
            "variant": {
                "type": "string",
                "enum": ["champion", "challenger"],
                "description": "when a deployment applies",
            },
            "request_id": {"type": "string"},
            "rows": {"type": "integer", "description": "batch only"},
            "predictions": {"type": "array"},
            "probabilities": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": {"type": "number"}},
                "description": "classifiers: one object per row, keyed by class name",
            },
            "warnings": {
                "type": "array",
                "items": {"type": "string"},
                "description": "labels never seen in training (accepted), ignored extra columns",
            },
            "ignored_columns": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["model", "version", "request_id", "predictions", "warnings"],
    }
    error = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
                "required": ["code", "message", "details"],
            }
        },
        "required": ["error"],
    }
    any_object = {"type": "object"}
    paths = {
        f"{PREFIX}/health": {
            "get": {
                "summary": "Liveness and counters (no token needed)",
                "security": [],
                "responses": {"200": _json(any_object)},
            }
        },
        f"{PREFIX}/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json(any_object)}}
        },
        f"{PREFIX}/models": {
            "get": {
                "summary": "List models with latest version, aliases and deployment",
                "responses": {"200": _json(any_object), **_ops("401")},
            }
        },
        f"{PREFIX}/models/train": {
            "post": {
                "summary": "Start a training job",
                "description": "JSON settings with 'data' = a path inside one of the server's --data-dir folders, or the "
                "file itself as the body (text/csv or application/octet-stream for Parquet) with the settings as query "
                "parameters (?target=...&task=...&time_budget=...&name=...). Answers 202 with the job id.",
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in [*(n for n in TRAIN_SETTINGS if n != "data"), "filename"]
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": dict(TRAIN_SETTINGS),
                                "required": ["data"],
                            }
                        },
                        "text/csv": {"schema": {"type": "string"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    }
                },
                "responses": {
                    "202": _json(any_object, "Job queued"),
                    **_ops("400", "401", "413", "415", "422"),
                    "403": _error("The data path is outside the allowed data folders"),
                },
            }
        },
        f"{PREFIX}/models/jobs/{{job_id}}": {
            "get": {
                "summary": "Status and progress of a training job",
                "parameters": [
                    {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json(any_object), **_ops("401", "404")},
            }
        },
        f"{PREFIX}/models/compare": {
            "post": {
                "summary": "Compare versions: fold-by-fold corrected t-test, or a paired bootstrap on a labelled file",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "models": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                                    "data": {
                                        "type": "string",
                                        "description": "optional path inside an allowed data folder",
                                    },
                                    "target": {"type": "string"},
                                },
                                "required": ["models"],
                            }
                        }
                    }
                },
                "responses": {"200": _json(any_object), **_ops("400", "401", "404", "422")},
            }
        },
        f"{PREFIX}/models/{{model_id}}": {
            "get": {
                "summary": "Version details: metrics, lineage, input schema, deployment, an example request",
                "parameters": [MODEL_ID],
                "responses": {"200": _json(any_object), **_ops("401", "404")},
            },
            "delete": {
                "summary": "Delete a version (NAME@1.2.0) or a whole model (NAME)",
                "parameters": [MODEL_ID],
                "responses": {
                    "200": _json(any_object),
                    **_ops("401", "404", "422"),
                    "409": _error("The version is used by a deployment"),
                },
            },
        },
        f"{PREFIX}/models/{{model_id}}/metrics": {
            "get": {
                "summary": "Cross-validated metrics and the full assessment",
                "parameters": [MODEL_ID],
                "responses": {"200": _json(any_object), **_ops("401", "404")},
            }
        },
        f"{PREFIX}/models/{{model_id}}/importance": {
            "get": {
                "summary": "Importance per input column (computed once per version, then cached)",
                "parameters": [MODEL_ID],
                "responses": {
                    "200": _json(any_object),
                    **_ops("401", "404"),
                    "409": _error("No stored training data"),
                },
            }
        },
        f"{PREFIX}/models/{{model_id}}/explain": {
            "post": {
                "summary": "Shapley contributions per input column for up to 100 rows",
                "parameters": [MODEL_ID],
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                    }
                },
                "responses": {"200": _json(any_object), **_ops("400", "401", "404", "415", "422")},
            }
        },
        f"{PREFIX}/models/{{model_id}}/playground": {
            "get": {
                "summary": "An HTML form generated from the input schema (accepts ?token= as browsers cannot send headers)",
                "parameters": [
                    MODEL_ID,
                    {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "HTML page", "content": {"text/html": {}}},
                    **_ops("401", "404"),
                },
            }
        },
        f"{PREFIX}/predict/{{model_id}}": {
            "post": {
                "summary": "Predict one row",
                "parameters": [MODEL_ID, REQUEST_ID, STICKY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/PredictResponse"}),
                    **_ops("400", "401", "404", "405", "413", "415", "422", "500"),
                },
            }
        },
        f"{PREFIX}/predict/{{model_id}}/batch": {
            "post": {
                "summary": "Predict many rows: JSON (any payload format) or a CSV body answered as CSV (streamed)",
                "description": "CSV answers have the columns of `automl predict`: prediction, then proba_<class> per class; "
                "the headers X-Request-Id, X-Model-Version, X-Variant and X-Warnings carry the rest. Every row is checked "
                "before the first byte is sent. A CSV body is read like the dashboard reads a file: the delimiter, quoting and "
                "encoding (UTF-8, UTF-16, Latin-1) are detected, blank lines are skipped, and every other row, an all-empty "
                "one included, gets its own answer line, in order.",
                "parameters": [MODEL_ID, REQUEST_ID, STICKY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "predictions",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_ops("400", "401", "404", "413", "415", "422", "500"),
                },
            }
        },
        f"{PREFIX}/feedback": {
            "post": {
                "summary": "Actual outcomes of earlier predictions, for monitoring accuracy",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Feedback"},
                                    {"type": "array", "items": {"$ref": "#/components/schemas/Feedback"}},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "feedback": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Feedback"},
                                            }
                                        },
                                    },
                                ]
                            }
                        }
                    }
                },
                "responses": {"202": _json(any_object, "Accepted"), **_ops("400", "401", "415", "422")},
            }
        },
    }
    for operations in paths.values():
        for operation in operations.values():  # the browser guard applies to every route
            operation["responses"].setdefault("403", ERRORS["403"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AutoML workbench API",
            "version": "1",
            "description": "Train, inspect, explain and serve the models of an AutoML workbench.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Needed only when the server was started with a token",
                }
            },
            "schemas": {
                "PredictRequest": predict_request,
                "PredictResponse": predict_response,
                "Error": error,
                "Feedback": {
                    "type": "object",
                    "properties": {"request_id": {"type": "string"}, "actual": {}},
                    "required": ["request_id", "actual"],
                },
            },
        },
    }
