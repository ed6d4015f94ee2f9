"""Shared helpers of the serving tests: small pipelines built like `AutoML` builds them, messy data, a store.

Pipelines are fitted directly (cleaner, preprocessor for a style, one family) instead of through a
search, so each test module gets exactly the model kinds it needs in well under a second.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from automl_core.ensemble import WeightedEnsemble
from automl_core.intake import profile_table, read_table
from automl_core.models import FAMILIES, FamilyModel
from automl_core.preprocess import TableCleaner, build_preprocessor
from automl_core.problem import target_values
from tests.conftest import dataset_path

STATES = ["CA", "NY", "TX", "WA", "OH", "FL", "IL", "GA"]
TITLES = ["nurse", "teacher", "software engineer", "driver", "manager", "sales associate", "owner", "analyst"]
LEVELS = ["senior", "junior", "lead", "assistant", "chief", "head", "staff", "trainee"]
PLACES = ["acme", "city hall", "general hospital", "the school", "a bakery", "the bank", "a startup", "home"]


def messy_csv(n: int = 400, seed: int = 0) -> bytes:
    """A CSV written the way people write files: currency, units, '< 1 year', yes/no, US dates, free text."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(11, 0.5, n).round(2)
    months = rng.choice([36, 60], n)
    years = rng.integers(0, 12, n)
    state = rng.choice(STATES, n)
    own = rng.choice(["yes", "no"], n)
    day = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    title = [
        f"{a} {b} at {c}"
        for a, b, c in zip(rng.choice(LEVELS, n), rng.choice(TITLES, n), rng.choice(PLACES, n), strict=True)
    ]
    amount = rng.integers(1, 40, n) * 1000
    branch = rng.choice([f"B{i:02d}" for i in range(40)], n)
    score = 5 + 3 * (state == "CA") + (months == 60) * 2 + np.log(income) / 3 + rng.normal(0, 0.5, n)
    frame = pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(n)],
            "Annual Income": [f"${v:,.2f}" for v in income],
            "term": [f"{m} months" for m in months],
            "emp_length": [
                "< 1 year" if y == 0 else ("10+ years" if y >= 10 else f"{y} years") for y in years
            ],
            "state": state,
            "owns_home": own,
            "issued": day.strftime("%m/%d/%Y"),
            "emp_title": title,
            "amount": [f"{v:,}" for v in amount],
            "branch": branch,
            "ratio": np.where(rng.random(n) < 0.1, np.nan, rng.random(n).round(3)),
            "rate": score.round(2),
            "approved": np.where(score > np.median(score), "Yes", "No"),
            "grade": np.select(
                [score < np.quantile(score, 0.33), score < np.quantile(score, 0.66)], ["C", "B"], "A"
            ),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def fit_pipeline(
    frame: pd.DataFrame,
    target: str,
    family: str,
    *,
    task: str,
    drop: tuple = (),
    random_state: int = 0,
    params: dict | None = None,
) -> Pipeline:
    """Cleaner + the family's preprocessor style + the family's model, fitted like `AutoML._refit` fits them."""
    profile = profile_table(frame, target)
    y = target_values(frame, target, profile)
    keep = y.notna().to_numpy()
    X = frame.loc[keep].drop(columns=[target, *drop]).reset_index(drop=True)
    y = y[keep].to_numpy()
    y = y.astype(float) if task == "regression" else y.astype(object)
    cleaner = TableCleaner(specs=profile.specs, exclude=[target]).fit(X)
    X_clean = cleaner.transform(X)
    style = FAMILIES[family].style
    prep = build_preprocessor(cleaner.kinds_, X_clean, style, task=task, random_state=random_state)
    Xt = np.asarray(prep.fit_transform(X_clean, y), dtype=np.float64)
    categorical = ()
    if style == "tree":
        cat = next((cols for name, _, cols in prep.transformers if name == "cat"), [])
        categorical = tuple(range(len(cat)))
    defaults = {
        "lightgbm": {"n_estimators": 60, "num_leaves": 15, "min_child_samples": 5},
        "xgboost": {"n_estimators": 40, "max_depth": 3},
        "random_forest": {"n_estimators": 30},
    }
    model = FamilyModel(
        family=family,
        params=params or defaults.get(family, {}),
        task=task,
        categorical_features=categorical,
        n_jobs=1,
        random_state=random_state,
    ).fit(Xt, y)
    return Pipeline([("clean", cleaner), ("prep", prep), ("model", model)])


def ensemble_of(
    pipelines: list[Pipeline], frame: pd.DataFrame, target: str, task: str, weights=None
) -> Pipeline:
    """A `WeightedEnsemble` over the members of fitted pipelines that share their cleaner."""
    cleaner = pipelines[0].named_steps["clean"]
    members = [
        (f"m{i}", Pipeline([("prep", p.named_steps["prep"]), ("model", p.named_steps["model"])]))
        for i, p in enumerate(pipelines)
    ]
    X_clean = cleaner.transform(frame.drop(columns=[target]))
    ensemble = WeightedEnsemble(members, weights=weights, task=task).fit(X_clean, None, fitted=True)
    return Pipeline([("clean", cleaner), ("model", ensemble)])


def messy_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    return read_table(messy_csv(n, seed), name="messy.csv")


def titanic_frame() -> pd.DataFrame:
    return read_table(dataset_path("titanic", "train"))


def raw_rows(csv: bytes) -> list[dict]:
    """Rows of a CSV as a client would send them: every cell as the text written in the file."""
    return pd.read_csv(io.BytesIO(csv), dtype=str, keep_default_na=False).to_dict("records")


def register(
    store,
    name: str,
    pipeline: Pipeline,
    task: str,
    *,
    data: bytes | None = None,
    target: str | None = None,
    aliases=(),
):
    """Register a hand-built pipeline with the documents a server reads."""
    cleaner = pipeline.named_steps["clean"]
    model = pipeline.steps[-1][1]
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])] or None
    lineage = {"target": target, "task": task}
    if data is not None:
        lineage["data"] = {
            "stored_copy_sha256": store.artifacts.save_bytes(data).sha256,
            "file": f"{name}.csv",
        }
    return store.registry.register(
        name,
        pipeline,
        input_schema={"columns": [{"name": c, "kind": k} for c, k in cleaner.kinds_.items()], "task": task},
        task=task,
        metric_name="roc_auc" if task == "binary" else "rmse",
        lineage=lineage,
        documents={
            "meta": {
                "task": task,
                "classes": classes,
                "target": target,
                "input_columns": list(cleaner.input_columns_),
            }
        },
        aliases=aliases,
    )


def test_messy_csv_reads_as_numbers_dates_and_labels():
    frame = messy_frame(200)
    profile = profile_table(frame, "rate")
    kinds = {c.name: c.kind for c in profile.columns}
    assert kinds["Annual Income"] == kinds["term"] == kinds["emp_length"] == kinds["amount"] == "numeric"
    assert (
        kinds["issued"] == "datetime" and kinds["owns_home"] == "boolean" and kinds["state"] == "categorical"
    )
    assert kinds["emp_title"] == "text" and kinds["loan_id"] == "identifier"
    assert profile.specs["Annual Income"].number_rule is not None


class Exploding(BaseEstimator):
    """A model step that fails at prediction time (to check that a server answers 500 and keeps serving)."""

    task = "regression"

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict(self, X):
        raise RuntimeError("this model always fails: internal detail that must not reach a client")


def exploding_pipeline(pipeline: Pipeline) -> Pipeline:
    return Pipeline([("clean", pipeline.named_steps["clean"]), ("model", Exploding().fit(None))])
