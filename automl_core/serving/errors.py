"""The one error type of the serving package: an HTTP status, a code, a message and details.

Every refusal the server makes is an `ApiError`; the adapter turns it into
`{"error": {"code", "message", "details"}}` with its status. Messages name the culprit (column,
value, model, path) and what was expected, and never carry a stack trace.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the server refuses or cannot answer, with the HTTP status to answer it with."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else []
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def bad_request(message: str, details: Any = None) -> ApiError:
    return ApiError(400, "bad_request", message, details)


def invalid_input(message: str, details: Any = None) -> ApiError:
    return ApiError(422, "invalid_input", message, details)


def not_found(message: str, details: Any = None) -> ApiError:
    return ApiError(404, "not_found", message, details)
