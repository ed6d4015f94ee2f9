"""JSON on disk: strict encoding, atomic replacement, and JSONL read around torn lines."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from store.jsonfiles import append_jsonl, atomic_write_json, dumps, fingerprint, last_jsonl, read_jsonl


@dataclasses.dataclass
class Point:
    x: int


def test_dumps_turns_numpy_nan_dates_paths_sets_and_dataclasses_into_strict_json():
    text = dumps(
        {
            "a": np.float32(1.5),
            "b": np.arange(2),
            "nan": float("nan"),
            "inf": np.inf,
            "when": dt.date(2024, 1, 2),
            "path": Path("/x"),
            "set": {2, 1},
            "point": Point(3),
            1: (True, None),
            "other": object,
        }
    )
    parsed = json.loads(text)
    assert parsed["a"] == 1.5 and parsed["b"] == [0, 1] and parsed["nan"] is None and parsed["inf"] is None
    assert (parsed["when"], parsed["path"], parsed["set"], parsed["point"]) == (
        "2024-01-02",
        "/x",
        [1, 2],
        {"x": 3},
    )
    assert parsed["1"] == [True, None] and "object" in parsed["other"]
    assert dumps(np.int64(4)) == "4"


def test_fingerprints_ignore_key_order_but_not_list_order():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1, "b": [1, 2]}) != fingerprint({"a": 1, "b": [2, 1]})


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "routing.json"
    atomic_write_json(target, {"v": 1})
    atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in target.parent.iterdir()] == ["routing.json"]


def test_read_jsonl_skips_corrupt_complete_lines_and_waits_for_an_unterminated_one(tmp_path):
    path = tmp_path / "log.jsonl"
    assert read_jsonl(path) == ([], 0)
    append_jsonl(path, [{"n": 1}])
    with open(path, "ab") as handle:
        handle.write(b'{"n": 2, "torn\n\n{"n": 3}\n{"n": 4')
    records, offset = read_jsonl(path)
    assert records == [{"n": 1}, {"n": 3}]
    assert path.read_bytes()[offset:] == b'{"n": 4'
    assert append_jsonl(path, []) == 0


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 65536])
def test_last_jsonl_scans_backwards_across_chunk_boundaries(tmp_path, chunk_size):
    path = tmp_path / "events.jsonl"
    assert last_jsonl(path, lambda r: True) is None
    append_jsonl(
        path, [{"type": "progress", "p": i, "pad": "x" * i} for i in range(20)] + [{"type": "trial"}]
    )
    with open(path, "ab") as handle:
        handle.write(b'{"type": "progress", "p": 99, "pad": "' + b"y" * 200)
    assert last_jsonl(path, lambda r: r["type"] == "progress", chunk_size=chunk_size)["p"] == 19
    assert last_jsonl(path, lambda r: r["type"] == "missing", chunk_size=chunk_size) is None


def test_a_file_holding_only_an_unterminated_line_has_no_last_record(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type": "progress"')
    assert last_jsonl(path, lambda r: True, chunk_size=4) is None
