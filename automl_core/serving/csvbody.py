"""A CSV request body read the way the app reads an uploaded file, in chunks of bounded memory.

The dashboard reads files with `automl_core.intake.read_table`: the encoding is chosen by the
intake's rule (UTF-8 with or without BOM, UTF-16, else Latin-1) and DuckDB's sniffer finds the
delimiter, quoting, escaping, comment lines and leading lines to skip; blank lines are dropped.
A prediction body is read the same way, with two differences that prediction needs: no row is
ever dropped (an all-empty row gets its own prediction, so output row i answers input row i, as
`read_table(..., drop_empty_rows=False)` keeps them), and cells stay text (the input schema then
reads each one exactly like the same value sent as a JSON string; an empty cell is missing).

The dialect is found once, on the head of the body, and the whole body is then parsed by pandas'
C reader in chunks, so 100,000 rows never sit in memory at once. When the header line read as
plain comma-separated text already names every input of the model, and the head holds nothing
a sniffer could read otherwise (backslash escapes, comment lines), that reading is the only one
under which the model's columns exist, so the sniffer is skipped: it costs several milliseconds,
which a 1,000-row batch cannot spare. Anything else goes through DuckDB's sniffer, like the app.
"""

from __future__ import annotations

import csv
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request, invalid_input

SNIFF_BYTES = 1 << 20  # the head that decides encoding and dialect (the intake's sniff size)
_EMPTY = "(empty)"  # DuckDB's sniff_csv for "none"
_duckdb_lock = threading.Lock()
_duckdb_connection = None


@dataclass(frozen=True)
class CsvDialect:
    """How to parse one CSV body: text encoding and pandas `read_csv` options."""

    encoding: str
    delimiter: str = ","
    quotechar: str | None = '"'
    escapechar: str | None = None
    skiprows: int = 0
    comment: str | None = None
    sniffed_by: str = "header"  # "header", "duckdb" or "python"

    def read_csv_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "sep": self.delimiter,
            "encoding": self.encoding,
            "skiprows": self.skiprows or None,
            "comment": self.comment,
        }
        if self.quotechar is None:
            options["quoting"] = csv.QUOTE_NONE
        else:
            options["quotechar"] = self.quotechar
            options["doublequote"] = self.escapechar in (None, self.quotechar)
            if self.escapechar not in (None, self.quotechar):
                options["escapechar"] = self.escapechar
        return options


def detect_dialect(source, columns: Sequence[str] = ()) -> CsvDialect:
    """The encoding and dialect of a CSV body (a seekable binary file), found on its head.

    `columns` are the model's inputs: a header that names them all when split at commas settles
    the dialect without the sniffer. Raises a 400 `ApiError` for a body that is not text.
    """
    from automl_core.errors import DataError
    from automl_core.intake import _detect_encoding  # the app's rule, so both read the same text

    source.seek(0)
    head = source.read(SNIFF_BYTES + 1)  # one byte more tells the rule the body goes on
    source.seek(0)
    if not head.strip():
        raise invalid_input("the CSV body is empty; expected a header line and rows")
    try:
        encoding = _detect_encoding(head, "the CSV body")
    except DataError as exc:
        raise bad_request(str(exc)) from None
    if encoding == "utf-8" and head.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    sample = _sample_text(head[:SNIFF_BYTES], encoding, complete=len(head) <= SNIFF_BYTES)
    if _header_names_every_column(sample, columns):
        return CsvDialect(encoding)
    found = _duckdb_dialect(sample, encoding) or _python_dialect(sample, encoding)
    return found or CsvDialect(encoding, sniffed_by="default")


def read_chunks(source, dialect: CsvDialect, chunk_rows: int) -> Iterator[tuple[int, Any]]:
    """(first row number, frame of text cells, missing as NaN) for each chunk of a CSV body."""
    import pandas as pd

    source.seek(0)
    try:
        reader = pd.read_csv(
            source,
            dtype=str,
            keep_default_na=False,
            na_values=[""],  # an empty cell is missing; any text ("NA", "-") is the schema's to read
            skip_blank_lines=True,
            skipinitialspace=False,
            encoding_errors="replace",  # like the app, which reads undecodable bytes as U+FFFD
            chunksize=chunk_rows,
            **dialect.read_csv_options(),
        )
        offset = 0
        for chunk in reader:
            chunk.columns = [str(c).strip() for c in chunk.columns]
            yield offset, chunk.reset_index(drop=True).astype(object)
            offset += len(chunk)
    except pd.errors.EmptyDataError:
        raise invalid_input("the CSV body is empty; expected a header line and rows") from None
    except (pd.errors.ParserError, UnicodeError, ValueError, csv.Error) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ApiError(400, "bad_request", f"the CSV body cannot be read: {message}") from None


# --------------------------------------------------------------------------- sniffing
def _sample_text(head: bytes, encoding: str, *, complete: bool) -> str:
    """The head as text, cut after its last full line unless it is the whole body."""
    text = head.decode(encoding, errors="replace")
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut > 0 else text
    return text


def _header_names_every_column(sample: str, columns: Sequence[str]) -> bool:
    if not columns or "\\" in sample or "\n#" in sample or sample.startswith("#"):
        return False
    first = sample.splitlines()[0] if sample else ""
    try:
        names = {name.strip() for name in next(csv.reader([first]))}
    except (csv.Error, StopIteration):
        return False
    return all(column in names for column in columns)


def _duckdb_dialect(sample: str, encoding: str) -> CsvDialect | None:
    """The dialect DuckDB's sniffer finds (the sniffer `read_table` uses), or None."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency of the engine
        return None
    global _duckdb_connection
    fd, path = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(sample.encode("utf-8"))
        with _duckdb_lock:
            if _duckdb_connection is None:
                _duckdb_connection = duckdb.connect(config={"threads": 1})
            row = _duckdb_connection.execute(
                "SELECT Delimiter, Quote, Escape, SkipRows, Comment "
                "FROM sniff_csv(?, header = true, null_padding = true, sample_size = -1)",
                [path],
            ).fetchone()
    except Exception:  # noqa: BLE001 - DuckDB raises several types; the Python sniffer comes next
        return None
    finally:
        os.unlink(path)
    delimiter, quote, escape, skip, comment = row
    if not delimiter or delimiter == _EMPTY or len(delimiter) != 1:
        return None
    return CsvDialect(
        encoding,
        delimiter=delimiter,
        quotechar=None if quote in (None, "", _EMPTY) else quote,
        escapechar=None if escape in (None, "", _EMPTY) else escape,
        skiprows=int(skip or 0),
        comment=None if comment in (None, "", _EMPTY) else comment,
        sniffed_by="duckdb",
    )


def _python_dialect(sample: str, encoding: str) -> CsvDialect | None:
    """The dialect of Python's sniffer (what `read_table` falls back to after DuckDB), or None."""
    try:
        found = csv.Sniffer().sniff(sample[:65536])
    except csv.Error:
        return None
    return CsvDialect(
        encoding,
        delimiter=found.delimiter,
        quotechar=found.quotechar or '"',
        escapechar=None if found.doublequote else found.escapechar,
        sniffed_by="python",
    )
