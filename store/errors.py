"""Error types of the store, in one leaf module.

Every message names the culprit (model, version, file, job) and what was expected or what exists,
so the CLI, the server and the dashboard can show it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable


class StoreError(Exception):
    """Base class of every error raised by `store`."""


class InvalidRequest(StoreError, ValueError):
    """An argument cannot be used as given (bad reference, weight out of range, wrong job state...)."""


class InvalidName(InvalidRequest):
    """A model name, alias or document kind does not follow its naming rule."""


class NotFound(StoreError, LookupError):
    """A model, version, alias, job or document does not exist; the message lists what does."""

    def __init__(self, what: str, asked: str, available: Iterable[str] = ()):
        self.what = what
        self.asked = asked
        self.available = sorted(available)
        shown = ", ".join(self.available[:20]) if self.available else "none"
        more = f" (and {len(self.available) - 20} more)" if len(self.available) > 20 else ""
        super().__init__(f"{what} {asked!r} not found; available: {shown}{more}")

    def __reduce__(self):  # keep the error picklable across processes
        return (type(self), (self.what, self.asked, self.available))


class ArtifactIntegrityError(StoreError):
    """An artifact file is missing, outside the artifacts folder, or its bytes do not hash as expected."""


class ArchiveError(StoreError, ValueError):
    """A model archive (zip) is not a valid, untampered export of this store."""


class StoreBusy(StoreError):
    """The database stayed locked by other processes for longer than the retry budget."""


class SchemaVersionError(StoreError):
    """The database was written by a newer version of the code than this one."""
