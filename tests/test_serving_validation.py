"""The payload contract and the input checks: every refusal names what is wrong, nothing unexpected passes."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from automl_core.serving.errors import ApiError
from automl_core.serving.payloads import Rows, parse_json, parse_rows
from automl_core.serving.validation import InputSchema, read_boolean, read_date, read_label, read_number
from tests.test_serving_support import fit_pipeline, messy_csv, messy_frame, raw_rows


@pytest.fixture(scope="module")
def schema():
    frame = messy_frame(300).drop(columns=["approved", "grade"])
    return InputSchema.from_pipeline(fit_pipeline(frame, "rate", "lightgbm", task="regression"))


@pytest.fixture(scope="module")
def row():
    return raw_rows(messy_csv(5, seed=3))[0]


# --------------------------------------------------------------------------- payload formats
def test_every_payload_format_gives_the_same_rows():
    a, b = {"x": 1, "y": "u"}, {"x": 2, "y": None}
    many = [
        parse_rows({"inputs": [a, b]}),
        parse_rows({"dataframe_records": [a, b]}),
        parse_rows({"instances": [a, b]}),
        parse_rows(
            {"dataframe_split": {"columns": ["x", "y"], "data": [[1, "u"], [2, None]], "index": [0, 1]}}
        ),
    ]
    for rows in many:
        assert len(rows) == 2 and not rows.single
        assert [rows.record(0), rows.record(1)] == [a, b]
        assert rows.column_names() == ["x", "y"] and rows.column("x") == [1, 2]
    one = parse_rows({"inputs": a, "key": "customer-7"})
    assert one.single and one.key == "customer-7" and one.record(0) == a
    assert parse_rows({"instances": a, "key": 12}).key == "12"


BAD_PAYLOADS = [
    ([1, 2], 400, "must be an object"),
    ({}, 400, "exactly one of"),
    ({"inputs": {}, "instances": {}}, 400, "found inputs, instances"),
    ({"input": {"x": 1}}, 400, "unknown key 'input'"),
    ({"inputs": [{"x": 1}, 3]}, 400, r"inputs\[1\]"),
    ({"inputs": "x=1"}, 400, "list of row objects"),
    ({"dataframe_records": {"x": 1}}, 400, "list of row objects"),
    ({"dataframe_split": [[1]]}, 400, "'columns' and 'data'"),
    (
        {"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}},
        400,
        r"data\[0\]' must be a list of 1 values",
    ),
    ({"dataframe_split": {"columns": ["x", "x"], "data": []}}, 400, "twice"),
    ({"dataframe_split": {"columns": [1], "data": []}}, 400, "column names"),
    ({"dataframe_split": {"columns": ["x"], "data": 5}}, 400, "list of rows"),
    ({"dataframe_split": {"columns": ["x"], "data": [], "extra": 1}}, 400, "unknown key"),
    ({"inputs": {"x": 1}, "key": [1]}, 400, "'key' must be a string"),
    ({"inputs": []}, 422, "no rows"),
]


@pytest.mark.parametrize(("payload", "status", "match"), BAD_PAYLOADS)
def test_malformed_payloads_are_refused_with_a_reason(payload, status, match):
    with pytest.raises(ApiError, match=match) as caught:
        parse_rows(payload)
    assert caught.value.status == status
    assert set(caught.value.body()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"inputs": ', "line 1 column 12"),
        (b"[" * 100000, "nested"),
    ],
)
def test_bodies_that_are_not_json_are_400(body, match):
    with pytest.raises(ApiError, match=match) as caught:
        parse_json(body)
    assert caught.value.status == 400


def test_a_json_body_with_a_byte_order_mark_is_read():
    assert parse_json(b"\xef\xbb\xbf" + json.dumps({"inputs": {}}).encode()) == {"inputs": {}}


# --------------------------------------------------------------------------- single values
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (2.5, 2.5),
        ("7", 7.0),
        (" -1.50 ", -1.5),
        (".5", 0.5),
        ("$12", 12.0),
        ("12 kg", 12.0),
        (None, math.nan),
        ("n/a", math.nan),
        ("", math.nan),
        (float("nan"), math.nan),
    ],
)
def test_numbers_are_read_from_numbers_text_and_missing_words(value, expected):
    got = read_number(value, None)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (True, "wrong_type"),
        ([1], "wrong_type"),
        ({"a": 1}, "wrong_type"),
        ("abc", "unparsable"),
        ("1,5 kg 3", "unparsable"),
        (float("inf"), "unparsable"),
        ("inf", "unparsable"),
        ("1_000", "unparsable"),
        ("1e5", "unparsable"),
        ("+5", "unparsable"),
    ],
)
def test_values_that_are_not_numbers_are_refused(value, code):
    with pytest.raises(ValueError) as caught:
        read_number(value, None)
    assert caught.value.code == code


def test_text_in_a_column_of_clean_numbers_is_read_like_a_one_row_file():
    # A JSON value is read by the rule its own digits follow, as `automl predict` reads a file of
    # that one row: a spreadsheet's "1,639.3" is a number, not a refusal.
    from automl_core.intake import ColumnSpec, typed_column

    texts = [
        "12",
        "-3.5",
        ".5",
        "12.",
        "$12",
        "12 kg",
        "< 5",
        "5+",
        "(7)",
        "1,234",
        "1e5",
        "+5",
        "abc",
        "n/a",
        " 8 ",
        "1,639.3",
        "1.639,3",
        "2,5",
        "€1.234,50",
    ]
    want = [typed_column(pd.Series([t], dtype=object), ColumnSpec("x", "numeric")).iloc[0] for t in texts]
    assert want[texts.index("1,639.3")] == 1639.3 and want[texts.index("2,5")] == 2.5
    for text, expected in zip(texts, want, strict=True):
        try:
            got = read_number(text, None)
        except ValueError:
            assert math.isnan(expected) and text.strip().lower() not in ("n/a",), text
            continue
        assert got == expected or (math.isnan(got) and math.isnan(expected)), text


def test_labels_booleans_and_dates_read_like_the_cleaner():
    assert read_label("  CA ") == "CA" and read_label("N/A") is None and read_label(12) == "12"
    assert read_label(2.5) == "2.5" and read_label(float("nan")) is None
    for bad in (True, [1]):
        with pytest.raises(ValueError, match="expected a label"):
            read_label(bad)
    assert read_boolean("Yes") == 1.0 and read_boolean(False) == 0.0 and math.isnan(read_boolean(""))
    with pytest.raises(ValueError, match="true/false"):
        read_boolean("maybe")
    with pytest.raises(ValueError, match="true/false"):
        read_boolean([True])
    assert read_date("2021-03-04", None) == np.datetime64("2021-03-04T00:00:00", "ns")
    assert read_date("04/03/2021", "%d/%m/%Y") == np.datetime64("2021-03-04", "ns")
    assert read_date(" none ", None) is None
    with pytest.raises(ValueError, match="not a date in the format"):
        read_date("2021-03-04", "%d/%m/%Y")
    with pytest.raises(ValueError, match="as text"):
        read_date(20210304, None)


# --------------------------------------------------------------------------- rows
def test_a_good_row_is_read_and_logged_as_json_safe_values(schema, row):
    typed = schema.type_row({**row, "ratio": ""})
    assert set(typed.values) == set(schema.columns)
    assert typed.logged["ratio"] is None and isinstance(typed.logged["Annual Income"], float)
    assert typed.logged["issued"] == row["issued"].strip()
    assert typed.ignored == ["loan_id", "rate", "approved", "grade"] and "ignored" in typed.warnings[-1]
    json.dumps(typed.logged, allow_nan=False)


def test_every_bad_column_of_a_row_is_named_with_its_value(schema, row):
    bad = {**row, "Annual Income": "lots", "term": [36], "issued": "someday", "owns_home": "perhaps"}
    del bad["state"]
    with pytest.raises(ApiError) as caught:
        schema.type_row(bad)
    error = caught.value
    assert error.status == 422 and "more problems" in error.message
    by_column = {d["column"]: d for d in error.details}
    assert by_column["state"]["problem"] == "missing"
    assert by_column["Annual Income"] == {
        **by_column["Annual Income"],
        "value": "lots",
        "problem": "unparsable",
    }
    assert "written like" in by_column["Annual Income"]["message"]
    assert by_column["term"]["problem"] == "wrong_type" and by_column["term"]["value"] == "a list"
    assert by_column["issued"]["problem"] == "unparsable" and by_column["owns_home"]["value"] == "perhaps"


def test_labels_never_seen_in_training_are_accepted_with_a_warning(schema, row):
    typed = schema.type_row({**row, "state": "Atlantis", "emp_title": "a brand new job"})
    assert typed.values["state"] == "Atlantis"
    assert any("'Atlantis' was not seen in training" in w for w in typed.warnings)
    assert not any("brand new" in w for w in typed.warnings)  # free text has no fixed set of values


def test_a_batch_is_read_like_single_rows(schema):
    rows = raw_rows(messy_csv(30, seed=5))
    frame = pd.DataFrame(rows, dtype=object)
    typed = schema.type_frame(frame)
    for i in (0, 7, 29):
        single = schema.type_row(rows[i]).values
        for name in schema.columns:
            a, b = typed.frame[name].iloc[i], single[name]
            assert (pd.isna(a) and (b is None or (isinstance(b, float) and math.isnan(b)))) or a == b, (
                name,
                a,
                b,
            )
    assert typed.ignored == ["loan_id", "rate", "approved", "grade"]


def test_json_batches_may_mix_numbers_and_text_in_a_column(schema):
    rows = raw_rows(messy_csv(4, seed=5))
    rows[0]["Annual Income"], rows[1]["Annual Income"] = 52000, "$52,000.00"
    rows[2]["state"], rows[3]["ratio"] = 7, None
    typed = schema.type_frame(pd.DataFrame(rows, dtype=object))
    assert typed.frame["Annual Income"].iloc[0] == typed.frame["Annual Income"].iloc[1] == 52000.0
    assert typed.frame["state"].iloc[2] == "7" and np.isnan(typed.frame["ratio"].iloc[3])
    assert typed.unseen["state"] == (1, "7") and any("'state'" in w for w in typed.warnings)


def test_bad_cells_of_a_batch_are_named_with_their_row(schema):
    rows = raw_rows(messy_csv(12, seed=5))
    rows[3]["Annual Income"] = "a lot"
    rows[9]["owns_home"] = True
    rows[10]["issued"] = 20200101
    rows[11]["state"] = ["CA"]
    with pytest.raises(ApiError) as caught:
        schema.type_frame(pd.DataFrame(rows, dtype=object), first_row=100)
    details = {(d["column"], d["row"]): d for d in caught.value.details}
    assert details[("Annual Income", 103)]["value"] == "a lot"
    assert ("issued", 110) in details and ("state", 111) in details
    assert caught.value.message.startswith("row 103: column 'Annual Income'")
    missing = pd.DataFrame(rows, dtype=object).drop(columns=["term"])
    with pytest.raises(ApiError, match="'term' is missing"):
        schema.type_frame(missing)


def test_typed_columns_of_other_dtypes_are_accepted(schema):
    rows = raw_rows(messy_csv(6, seed=5))
    frame = pd.DataFrame(rows, dtype=object)
    frame["ratio"] = pd.to_numeric(frame["ratio"])
    frame["issued"] = pd.to_datetime(frame["issued"])
    frame["owns_home"] = frame["owns_home"].map({"yes": 1.0, "no": 0.0})
    typed = schema.type_frame(frame)
    assert typed.frame["issued"].dtype.kind == "M" and typed.frame["owns_home"].isin([0.0, 1.0]).all()
    frame["owns_home"] = 2.0
    with pytest.raises(ApiError, match="owns_home"):
        schema.type_frame(frame)
    frame["owns_home"], frame["ratio"] = 1.0, True
    with pytest.raises(ApiError, match="ratio"):
        schema.type_frame(frame)


def test_the_schema_describes_itself_and_its_example_row_is_valid(schema):
    described = {c["name"]: c for c in schema.describe()}
    assert described["Annual Income"]["kind"] == "numeric" and "number_format" in described["Annual Income"]
    assert described["state"]["categories"] and described["issued"]["kind"] == "datetime"
    example = schema.example_row()
    typed = schema.type_row(example)
    assert not typed.warnings
    assert Rows(records=[example]).record(0) == example
