"""What-if: how one prediction moves when a single input sweeps its training range.

The playground draws it; it lives here so that it is computed the same way wherever it is shown
and can be tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .modelfile import predictions_frame

SWEEP_KINDS = ("numeric", "categorical", "boolean", "datetime")


@dataclass(frozen=True)
class WhatIfCurve:
    """The model's output for each tried value of one input, every other input held fixed."""

    column: str
    kind: str
    values: list
    output: np.ndarray
    label: str  # what `output` is: "prediction" or "probability of <class>"

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"value": self.values, "output": self.output})


def sweep_values(info: dict, points: int = 41) -> list:
    """Values to try for one input, from its training statistics (`TableCleaner.schema_` entries)."""
    kind = info.get("kind")
    if kind == "numeric":
        values = np.linspace(float(info["min"]), float(info["max"]), points)
        return list(np.unique(np.round(values)) if info.get("integer") else values)
    if kind == "categorical":
        return list(info.get("categories") or [])[:40]
    if kind == "boolean":
        return [False, True]
    if kind == "datetime":
        return list(pd.date_range(info["min"], info["max"], periods=min(points, 30)))
    raise ValueError(f"inputs of kind {kind!r} cannot be swept; use one of {', '.join(SWEEP_KINDS)}")


def output_of(predictions: pd.DataFrame, meta: dict, focus_class: Any = None) -> tuple[pd.Series, str]:
    """The number a what-if curve follows: the prediction, or one class's probability.

    The class is `focus_class` when given, else the positive class of a binary model, else the last class.
    """
    if meta.get("task") in ("binary", "multiclass"):
        classes = [str(c) for c in meta.get("classes") or []]
        focus = focus_class if focus_class is not None else meta.get("positive_class")
        column = f"proba_{focus}"
        if column not in predictions.columns and classes:
            column = f"proba_{classes[-1]}"
        return predictions[column], f"probability of {column.removeprefix('proba_')}"
    return pd.to_numeric(predictions["prediction"], errors="coerce"), "prediction"


def what_if(
    model, meta: dict, row: pd.DataFrame, column: str, info: dict, *, focus_class: Any = None
) -> WhatIfCurve:
    """Predict `row` once per value of `column` (from `sweep_values(info)`), all else unchanged."""
    if len(row) != 1:
        raise ValueError(f"what-if starts from exactly one row, got {len(row)}")
    if column not in row.columns:
        raise ValueError(
            f"column {column!r} is not an input of this row; inputs: {', '.join(map(str, row.columns))}"
        )
    values = sweep_values(info)
    sweep = pd.concat([row] * len(values), ignore_index=True)
    sweep[column] = values
    output, label = output_of(predictions_frame(model, meta, sweep), meta, focus_class)
    return WhatIfCurve(column, str(info.get("kind")), values, output.to_numpy(dtype=float), label)
