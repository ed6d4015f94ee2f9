"""Numbers, booleans and dates written as text."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from automl_core.parsing import (
    NumberRule,
    clean_text,
    infer_boolean,
    infer_date_format,
    infer_number_rule,
    is_na_token,
    parse_boolean_value,
    parse_booleans,
    parse_dates,
    parse_number_value,
    parse_numbers,
)


@pytest.mark.parametrize(
    "values, expected",
    [
        (["$90,000.00", "$1,200.50", None], [90000.0, 1200.5, math.nan]),
        (["28,000", "2,000", "300"], [28000.0, 2000.0, 300.0]),
        (["36 months", "60 months"], [36.0, 60.0]),
        (["2", "6", "< 1 year", "10+ years", "n/a"], [2.0, 6.0, 0.5, 10.0, math.nan]),
        (["12%", "3.5%"], [12.0, 3.5]),
        (["1.234,56", "2,5"], [1234.56, 2.5]),
        (["3,5", "2,75"], [3.5, 2.75]),
        (["(1,000)", "500", "-20"], [-1000.0, 500.0, -20.0]),
        (["€ 12", "€ 7,50"], [12.0, 7.5]),
    ],
)
def test_numbers_written_as_text_are_parsed(values, expected):
    series = pd.Series(values, dtype="string")
    rule = infer_number_rule(clean_text(series))
    assert rule is not None
    got = parse_numbers(series, rule).tolist()
    for g, e in zip(got, expected):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e)


@pytest.mark.parametrize("values", [["5 kg", "3 lb"], ["abc", "def"], ["1st", "2nd", "3rd"], ["A1", "B2"]])
def test_labels_are_not_mistaken_for_numbers(values):
    assert infer_number_rule(clean_text(pd.Series(values, dtype="string"))) is None


def test_rule_description_names_only_what_was_used():
    assert NumberRule(thousands="", unit="month").describe() == "unit 'month' removed"
    assert "currency" in NumberRule(currency=True).describe()
    assert NumberRule(thousands="").describe() == "plain numbers"


def test_single_values_parse_like_the_column():
    rule = NumberRule(currency=True)
    assert parse_number_value("$1,000", rule) == 1000.0
    assert math.isnan(parse_number_value("n/a", rule))
    assert parse_number_value(3, rule) == 3.0
    assert math.isnan(parse_number_value(None, rule))
    assert parse_number_value(True, rule) == 1.0
    assert parse_number_value("4.5", None) == 4.5
    with pytest.raises(ValueError, match="not a number"):
        parse_number_value("lots", rule)
    with pytest.raises(ValueError, match="expected a number"):
        parse_number_value([1], rule)


def test_booleans():
    assert infer_boolean(clean_text(pd.Series(["Yes", "no", "YES", None])))
    assert not infer_boolean(clean_text(pd.Series(["yes", "maybe"])))
    assert not infer_boolean(clean_text(pd.Series(["yes", "no", "maybe"])))
    assert parse_booleans(pd.Series(["Yes", "no", None])).tolist()[:2] == [1.0, 0.0]
    assert parse_booleans(pd.Series([True, False])).tolist() == [1.0, 0.0]
    assert parse_boolean_value("Y") == 1.0 and parse_boolean_value("false") == 0.0
    assert parse_boolean_value(0) == 0.0 and math.isnan(parse_boolean_value(""))
    with pytest.raises(ValueError, match="true/false"):
        parse_boolean_value("perhaps")
    with pytest.raises(ValueError):
        parse_boolean_value(7)


def test_dates_in_common_formats():
    assert infer_date_format(pd.Series(["03/15/2018", "12/01/2019"], dtype="string")) == "%m/%d/%Y"
    assert infer_date_format(pd.Series(["15.03.2018", "01.12.2019"], dtype="string")) == "%d.%m.%Y"
    assert infer_date_format(pd.Series(["hello", "world"], dtype="string")) is None
    parsed = parse_dates(pd.Series(["2020-01-02", "bad"]), "%Y-%m-%d")
    assert parsed.iloc[0] == pd.Timestamp("2020-01-02") and pd.isna(parsed.iloc[1])
    utc = pd.Series(pd.to_datetime(["2020-01-02T10:00:00Z"]))
    assert parse_dates(utc, None).dt.tz is None
    assert parse_dates(pd.Series(["2020-01-02 10:00"]), None).iloc[0].hour == 10


def test_na_tokens():
    for token in ("", "NA", "n/a", "null", "-", None, float("nan")):
        assert is_na_token(token)
    assert not is_na_token("0")
