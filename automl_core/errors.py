"""Error types of the engine, in one leaf module.

Every error is a `ValueError` subclass whose message names the culprit (file, column, row)
and what was expected, so the CLI, the server and the dashboard can show it as it is.
"""

from __future__ import annotations


class AutoMLError(ValueError):
    """Base class: a problem with the user's input or request, explained in the message."""


class DataError(AutoMLError):
    """The data file or frame cannot be used as it is (empty, not text, single column...)."""


class TargetError(AutoMLError):
    """The target column is missing, unusable, or does not fit the requested task."""


class SchemaError(AutoMLError):
    """Input rows do not match the model's input schema (missing columns, wrong types)."""

    def __init__(self, message: str, *, details: list[dict] | None = None):
        super().__init__(message)
        self.details = details or []


class BudgetError(AutoMLError):
    """The time budget is too small to train anything."""


class Cancelled(Exception):  # noqa: N818 - reads better at the raise site: `raise Cancelled(...)`
    """Raised from a progress callback to stop a search; not an input error."""
