"""Reading values that people write as text: numbers with decoration, booleans, dates.

DuckDB's CSV sniffer already types clean numbers, booleans and ISO dates. What it leaves as text
is handled here: currency symbols, thousands separators, percentages, units such as
"36 months", comparison marks such as "< 1 year" or "10+ years", yes/no booleans and dates in
other common formats. Each rule is learned once per column (`infer_*`) and then applied the same
way to the training frame, to files given for prediction and to single JSON rows on the server
(`parse_*_value`), so a model sees the same numbers everywhere.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Cell texts that mean "no value" in files made by people and spreadsheets.
NA_TOKENS = frozenset(
    {"", "na", "n/a", "nan", "null", "none", "-", "--", "?", "#n/a", "missing", "nil", "undefined"}
)
TRUE_TOKENS = frozenset({"true", "yes", "y", "t"})
FALSE_TOKENS = frozenset({"false", "no", "n", "f"})
CURRENCY = "$€£¥₹"

_NUMBER = re.compile(
    r"^(?P<cmp>[<>~≈]=?)?\s*"
    r"(?P<neg1>[-−])?\s*[" + CURRENCY + r"]?\s*(?P<neg2>[-−])?\s*"
    r"(?P<num>\d[\d,.'\s]*|[.,]\d+)"
    r"\s*(?P<plus>\+)?\s*(?P<pct>%)?\s*(?P<unit>[^\W\d_][^\W\d_ ./]*(?:[ ./][^\W\d_]+)?)?\.?$"
)
_PAREN_NEGATIVE = re.compile(r"^\((?P<inner>.*)\)$")
_MIN_SHARE = 0.95
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%Y-%m",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %H:%M",
)


@dataclass(frozen=True)
class NumberRule:
    """How one column writes its numbers: the separators and the unit it carries."""

    decimal: str = "."
    thousands: str = ","
    unit: str | None = None
    percent: bool = False
    currency: bool = False

    def describe(self) -> str:
        parts = []
        if self.currency:
            parts.append("currency symbols removed")
        if self.thousands:
            parts.append(f"'{self.thousands}' read as thousands separator")
        if self.decimal != ".":
            parts.append(f"'{self.decimal}' read as decimal mark")
        if self.percent:
            parts.append("'%' removed (value kept as written, not divided by 100)")
        if self.unit:
            parts.append(f"unit '{self.unit}' removed")
        return ", ".join(parts) or "plain numbers"


def is_na_token(value: object) -> bool:
    """True for None, NaN and the usual written forms of a missing value."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value.strip().lower() in NA_TOKENS
    return value is pd.NA or value is pd.NaT


def clean_text(series: pd.Series) -> pd.Series:
    """Strip whitespace and turn NA tokens into real missing values; keeps everything as str."""
    text = series.astype("string").str.strip()
    mask = text.str.lower().isin(NA_TOKENS)
    return text.mask(mask | text.isna())


def _normalise_unit(unit: str | None) -> str | None:
    if not unit:
        return None
    unit = unit.strip().lower().rstrip(".")
    return unit[:-1] if len(unit) > 3 and unit.endswith("s") else unit


def _guess_separators(numbers: pd.Series) -> tuple[str, str]:
    """Decide which of '.' and ',' is the decimal mark from how the column uses them."""
    with_both = numbers[numbers.str.contains(",", regex=False) & numbers.str.contains(".", regex=False)]
    if len(with_both):
        last_comma = with_both.str.rfind(",")
        last_dot = with_both.str.rfind(".")
        return (",", ".") if (last_comma > last_dot).mean() > 0.5 else (".", ",")
    with_comma = numbers[numbers.str.contains(",", regex=False)]
    if len(with_comma):
        # "28,000" is a thousands separator; "3,5" or "12,75" is a decimal comma.
        after = with_comma.str.extract(r",(\d+)$")[0].str.len()
        if (after == 3).mean() >= 0.5 or with_comma.str.count(",").max() > 1:
            return ".", ","
        return ",", "."
    with_dot = numbers[numbers.str.contains(".", regex=False)]
    if len(with_dot) and with_dot.str.count(r"\.").max() > 1:
        return ",", "."  # "1.234.567" only makes sense as thousands dots
    return ".", ","


def infer_number_rule(text: pd.Series) -> NumberRule | None:
    """Learn a `NumberRule` when nearly all non-missing cells are numbers, else None.

    `text` is a cleaned string series (see `clean_text`). At least 95 % of the present values must
    parse, and a column whose values carry two different units is not numeric ("5 kg", "3 lb").
    """
    present = text.dropna()
    if present.empty:
        return None
    sample = present if len(present) <= 20000 else present.sample(20000, random_state=0)
    body = sample.str.replace(_PAREN_NEGATIVE, r"\g<inner>", regex=True)
    parts = body.str.extract(_NUMBER)
    ok = parts["num"].notna()
    if ok.mean() < _MIN_SHARE or ok.sum() == 0:
        return None
    units = parts.loc[ok, "unit"].dropna().map(_normalise_unit).dropna()
    unit_set = set(units.unique())
    if len(unit_set) > 1:
        return None
    numbers = parts.loc[ok, "num"].str.replace(r"[\s']", "", regex=True)
    decimal, thousands = _guess_separators(numbers)
    if not numbers.str.contains(thousands, regex=False).any():
        thousands = ""
    rule = NumberRule(
        decimal=decimal,
        thousands=thousands,
        unit=next(iter(unit_set)) if unit_set else None,
        percent=bool(parts["pct"].notna().any()),
        currency=bool(sample.str.contains(f"[{CURRENCY}]", regex=True).any()),
    )
    values = parse_numbers(sample, rule)
    if values.notna().mean() < _MIN_SHARE:
        return None
    return rule


def rule_of_digits(values: pd.Series) -> NumberRule:
    """The number rule followed by the cells that hold digits; plain numbers when there is none.

    How text in a column trained on clean numbers is read at prediction time: "1,639.3" from a
    spreadsheet is a number, not a missing value.
    """
    text = clean_text(values)
    with_digits = text[text.str.contains(r"\d", regex=True).fillna(False).astype(bool)]
    return infer_number_rule(with_digits) or NumberRule(thousands="")


def _to_float(numbers: pd.Series, rule: NumberRule) -> pd.Series:
    cleaned = numbers.str.replace(r"[\s']", "", regex=True)
    if rule.thousands:
        cleaned = cleaned.str.replace(rule.thousands, "", regex=False)
    if rule.decimal != ".":
        cleaned = cleaned.str.replace(rule.decimal, ".", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").astype("float64")


def parse_numbers(values: pd.Series, rule: NumberRule) -> pd.Series:
    """Apply a `NumberRule` to a whole column; cells that do not parse become NaN.

    Numbers already typed as numbers pass through. "< x" becomes a value just below x
    (x - 0.5 for x >= 1, else x / 2) and "x+" becomes x, so "< 1 year" and "10+ years" keep their order.
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = clean_text(values)
    negative_paren = text.str.match(_PAREN_NEGATIVE).fillna(False).astype(bool)
    body = text.str.replace(_PAREN_NEGATIVE, r"\g<inner>", regex=True)
    parts = body.str.extract(_NUMBER)
    number = _to_float(parts["num"].fillna(""), rule)
    if rule.unit is not None:
        unit = parts["unit"].map(_normalise_unit, na_action="ignore")
        number = number.where(unit.isna() | (unit == rule.unit))
    sign = np.where(parts["neg1"].notna() | parts["neg2"].notna() | negative_paren, -1.0, 1.0)
    number = number * sign
    less = parts["cmp"].fillna("").str.startswith("<").to_numpy()
    if less.any():
        lowered = np.where(number >= 1, number - 0.5, number / 2)
        number = number.where(~less, lowered)
    return number.astype("float64")


def parse_number_value(value: object, rule: NumberRule | None) -> float:
    """Parse one cell (server fast path); NaN for missing, ValueError when it is not a number."""
    if value is None or isinstance(value, bool):
        if value is None:
            return math.nan
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if value.strip().lower() in NA_TOKENS:
        return math.nan
    if rule is None:
        return float(value.strip())
    parsed = parse_numbers(pd.Series([value], dtype="string"), rule).iloc[0]
    if math.isnan(parsed):
        raise ValueError(f"{value!r} is not a number")
    return float(parsed)


def infer_boolean(text: pd.Series) -> bool:
    """True when the present values are exactly two tokens, one true-like and one false-like."""
    present = text.dropna().str.lower()
    if present.empty:
        return False
    tokens = set(present.unique())
    if len(tokens) != 2:
        return False
    return bool(tokens & TRUE_TOKENS) and bool(tokens & FALSE_TOKENS) and tokens <= TRUE_TOKENS | FALSE_TOKENS


def parse_booleans(values: pd.Series) -> pd.Series:
    """Yes/no style text (or real booleans) to 1.0 / 0.0 / NaN."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    lowered = clean_text(values).str.lower()
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    out[lowered.isin(TRUE_TOKENS | {"1", "1.0"}).fillna(False).astype(bool)] = 1.0
    out[lowered.isin(FALSE_TOKENS | {"0", "0.0"}).fillna(False).astype(bool)] = 0.0
    return out


def parse_boolean_value(value: object) -> float:
    if is_na_token(value):
        return math.nan
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        if float(value) in (0.0, 1.0):
            return float(value)
        raise ValueError(f"expected true/false, got {value!r}")
    token = str(value).strip().lower()
    if token in TRUE_TOKENS or token in {"1", "1.0"}:
        return 1.0
    if token in FALSE_TOKENS or token in {"0", "0.0"}:
        return 0.0
    raise ValueError(f"expected true/false or yes/no, got {value!r}")


def infer_date_format(text: pd.Series) -> str | None:
    """The first common date format that reads nearly all present values, else None."""
    present = text.dropna()
    if present.empty or not present.str.contains(r"\d", regex=True).all():
        return None
    sample = present.head(500)
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        if parsed.notna().mean() >= _MIN_SHARE:
            full = pd.to_datetime(present, format=fmt, errors="coerce")
            if full.notna().mean() >= _MIN_SHARE:
                return fmt
    return None


def parse_dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Text or datetime values to naive datetime64; unparsable cells become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert("UTC").dt.tz_localize(None)
        return out.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        # Years written as numbers (1950, or 1950.0 once a missing cell made the column float).
        whole = values.where(np.mod(values, 1) == 0)
        values = whole.astype("Int64").astype("string")
    text = clean_text(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        else:
            parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")
