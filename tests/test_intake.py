"""Reading and profiling tables the way analysts upload them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automl_core import DataError, TargetError, profile_table, read_table
from automl_core.problem import detect_problem, split_target
from tests.conftest import dataset_path

ALL_FILES = ["co2", "credit_default", "diabetes", "diamonds", "hpc_jobs", "loans_messy", "penguins", "titanic", "wine"]


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_shared_dataset_reads_and_profiles(name):
    frame = read_table(dataset_path(name))
    profile = profile_table(frame)
    assert profile.n_rows == len(frame) > 100
    assert all(c.kind in ("numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant")
               for c in profile.columns)
    assert any(c.role == "feature" for c in profile.columns)


@pytest.fixture(scope="module")
def loans():
    frame = read_table(dataset_path("loans_messy"))
    return frame, profile_table(frame, "interest_rate")


def test_messy_loans_columns_get_the_right_kinds_and_roles(loans):
    _, profile = loans
    expect = {
        "loan_id": ("identifier", "excluded"),
        "data_source": ("constant", "excluded"),
        "emp_title": ("text", "feature"),
        "emp_length": ("numeric", "feature"),
        "Annual Income": ("numeric", "feature"),
        "Loan Amount": ("numeric", "feature"),
        "total_credit_limit": ("numeric", "feature"),
        "term": ("numeric", "feature"),
        "issue_date": ("datetime", "feature"),
        "state": ("categorical", "feature"),
        "interest_rate": ("numeric", "target"),
    }
    for column, (kind, role) in expect.items():
        col = profile.column(column)
        assert (col.kind, col.role) == (kind, role), (column, col.reason)


def test_messy_loans_reasons_explain_each_choice(loans):
    _, profile = loans
    assert "currency" in profile.column("Annual Income").reason
    assert "month" in profile.column("term").reason
    assert "identifier" in profile.column("loan_id").reason
    assert "LendingClub" in profile.column("data_source").reason


def test_messy_loans_rows_empty_unlabeled_and_duplicates_are_counted(loans):
    frame, profile = loans
    assert profile.empty_rows_dropped == 10
    assert len(frame) == 10030
    assert profile.unlabeled_rows == 200
    assert profile.duplicate_rows == 30
    problem = detect_problem(frame, "interest_rate", profile)
    X, y, dropped = split_target(frame, problem, profile)
    assert dropped == 200 and len(y) == 9830 and y.notna().all()
    assert "interest_rate" not in X.columns


def test_currency_and_thousands_become_numbers(loans):
    from automl_core.intake import typed_column

    frame, profile = loans
    income = typed_column(frame["Annual Income"], profile.specs["Annual Income"])
    assert income.iloc[0] == 90000.0
    amount = typed_column(frame["Loan Amount"], profile.specs["Loan Amount"])
    assert amount.iloc[0] == 28000.0
    term = typed_column(frame["term"], profile.specs["term"])
    assert set(term.dropna().unique()) == {36.0, 60.0}


def test_profile_is_json_serialisable(loans):
    _, profile = loans
    text = json.dumps(profile.to_dict(), default=str)
    assert "Annual Income" in text
    table = profile.to_frame()
    assert list(table.columns[:3]) == ["column", "kind", "role"]


@pytest.mark.parametrize(
    "payload, encoding",
    [
        ("city;amount;label\nZürich;1,5;yes\nGenève;2,5;no\nBern;3,5;yes\n", "utf-8-sig"),
        ("city;amount;label\nZürich;1,5;yes\nGenève;2,5;no\nBern;3,5;yes\n", "latin-1"),
        ("city;amount;label\nZürich;1,5;yes\nGenève;2,5;no\nBern;3,5;yes\n", "utf-16"),
    ],
)
def test_encodings_and_semicolons_are_read(tmp_path, payload, encoding):
    path = tmp_path / "data.csv"
    path.write_bytes(payload.encode(encoding))
    frame = read_table(path)
    assert list(frame.columns) == ["city", "amount", "label"]
    assert frame["city"].tolist() == ["Zürich", "Genève", "Bern"]
    profile = profile_table(frame)
    assert profile.column("amount").kind == "numeric"
    assert profile.column("label").kind == "boolean"


def test_quoted_fields_blank_lines_and_empty_rows(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('name,price,when\n"Smith, J.","$1,200.50",2024-01-05\n\n,,\n"Doe, A.","$99.00",2024-02-07\n\n')
    frame = read_table(path)
    assert len(frame) == 2
    assert frame.attrs["empty_rows_dropped"] == 1
    assert frame["name"].tolist() == ["Smith, J.", "Doe, A."]
    from automl_core.intake import typed_column

    profile = profile_table(frame)
    assert typed_column(frame["price"], profile.specs["price"]).tolist() == [1200.5, 99.0]
    assert profile.column("when").kind == "datetime"


def test_text_dates_percentages_and_yes_no(tmp_path):
    rows = "\n".join(f"{m:02d}/15/2023,{m * 1.5}%,{'Y' if m % 2 else 'N'},{m}" for m in range(1, 13))
    path = tmp_path / "d.csv"
    path.write_text("day,rate,flag,value\n" + rows + "\n")
    profile = profile_table(read_table(path))
    assert profile.column("day").kind == "datetime"
    assert profile.column("rate").kind == "numeric" and "%" in profile.column("rate").reason
    assert profile.column("flag").kind == "boolean"


def test_parquet_is_read(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"]})
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    back = read_table(path)
    assert back["a"].tolist() == [1.0, 2.0, 3.0]
    assert back["b"].tolist() == ["x", "y", "x"]


def test_bytes_and_file_objects_are_read():
    import io

    data = b"a,b\n1,x\n2,y\n"
    assert len(read_table(data, name="up.csv")) == 2
    assert len(read_table(io.BytesIO(data))) == 2


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"a,b,c\n", "no data rows"),
        (b"a,b\n\n\n", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a text file"),
    ],
)
def test_bad_files_get_specific_errors_naming_the_file(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        read_table(path)
    assert "bad.csv" in str(info.value)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="folder"):
        read_table(tmp_path)


def test_unknown_target_suggests_close_names():
    frame = read_table(dataset_path("loans_messy"))
    with pytest.raises(TargetError, match="Did you mean 'interest_rate'"):
        profile_table(frame, "interest rate")
    with pytest.raises(TargetError, match="Did you mean 'Annual Income'"):
        profile_table(frame, "annual income")


def test_target_with_a_single_value_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x,y\n" + "\n".join(f"{i},same" for i in range(30)))
    frame = read_table(path)
    profile = profile_table(frame, "y")
    with pytest.raises(TargetError, match="single value"):
        detect_problem(frame, "y", profile)


def test_a_single_column_file_cannot_be_trained(tmp_path):
    path = tmp_path / "single.csv"
    path.write_text("y\n" + "\n".join(str(i % 7 + 0.5 * i) for i in range(40)))
    frame = read_table(path)
    profile = profile_table(frame, "y")
    problem = detect_problem(frame, "y", profile)
    with pytest.raises(DataError, match="single column"):
        split_target(frame, problem, profile)


def test_numeric_running_number_is_an_identifier_but_measurements_are_not():
    from automl_core.intake import infer_column_spec

    ids = pd.Series(np.arange(1000, 1100, dtype=float), name="row")
    assert infer_column_spec(ids).kind == "identifier"
    measurements = pd.Series(np.random.default_rng(0).normal(size=100), name="weight")
    assert infer_column_spec(measurements).kind == "numeric"
    named = pd.Series(np.random.default_rng(0).permutation(500).astype(float), name="customer_id")
    assert infer_column_spec(named).kind == "identifier"


def test_one_row_per_year_is_a_date_column_but_other_year_like_numbers_are_not():
    from automl_core.intake import infer_column_spec, typed_column

    years = pd.Series(np.arange(1950, 2021, dtype=float), name="fiscal_year")
    spec = infer_column_spec(years)
    assert spec.kind == "datetime" and spec.date_format == "%Y"
    assert typed_column(pd.Series([1999, 2000]), spec).dt.year.tolist() == [1999, 2000]
    repeated = pd.Series(np.repeat(np.arange(2000, 2010), 5), name="year")  # many rows per year: a number
    assert infer_column_spec(repeated).kind == "numeric"
    income = pd.Series(np.arange(1000, 1100, dtype=float), name="yearly_income")
    assert infer_column_spec(income).kind == "identifier"


def test_dataframe_input_gets_a_stable_fingerprint():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert read_table(frame).attrs["fingerprint"] == read_table(frame.copy()).attrs["fingerprint"]
    assert read_table(frame).attrs["fingerprint"] != read_table(frame.iloc[::-1]).attrs["fingerprint"]
    assert read_table(frame).attrs["fingerprint"] != read_table(frame.astype({"a": "float64"})).attrs["fingerprint"]
    odd = pd.DataFrame({"tags": [["x"], ["y", "z"]], "n": [1, 2]})  # unhashable cells are hashed as text
    assert read_table(odd).attrs["fingerprint"] == read_table(odd.copy()).attrs["fingerprint"]


def test_profile_examples_are_the_first_distinct_values_as_written():
    frame = pd.DataFrame({
        "x": [2.5, 2.5, None, 1.0, 7.0, 9.0],
        "when": pd.to_datetime(["2021-01-02", "2021-01-02", "2021-03-04", None, "2021-05-06", "2021-07-08"]),
        "label": ["b", "a", "b", "c", "d", "a"],
    })
    profile = profile_table(frame)
    examples = {c.name: c.examples for c in profile.columns}
    assert examples == {"x": ["2.5", "1.0", "7.0"], "when": ["2021-01-02", "2021-03-04", "2021-05-06"],
                        "label": ["b", "a", "c"]}
    rare = pd.DataFrame({"k": ["same"] * 20_000 + ["late", "later"]})  # beyond the first 10,000 rows
    assert profile_table(rare).columns[0].examples == ["same", "late", "later"]


def test_file_fingerprint_is_the_sha256_of_the_bytes():
    import hashlib

    path = dataset_path("wine")
    assert read_table(path).attrs["fingerprint"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_day_first_dates_are_read_day_first_at_prediction_time_too(tmp_path):
    from automl_core.preprocess import TableCleaner

    rows = "\n".join(f"{d:02d}/{m:02d}/2022,{d * m}" for m in range(1, 13) for d in (3, 15, 28))
    path = tmp_path / "days.csv"
    path.write_text("when,value\n" + rows + "\n")
    frame = read_table(path)
    profile = profile_table(frame)
    assert profile.specs["when"].date_format == "%d/%m/%Y"
    cleaner = TableCleaner(specs=profile.specs).fit(frame)
    new = pd.DataFrame({"when": ["04/01/2022"], "value": ["1"]})
    assert cleaner.transform(new)["when"].iloc[0] == pd.Timestamp("2022-01-04")
