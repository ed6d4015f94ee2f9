"""Shared fixtures: small slices of the shared real datasets, a temporary AUTOML_HOME, fitted models.

Fitted models are session-scoped and trained with small budgets so the whole suite stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("AUTOML_DATASETS", ROOT.parent / "shared" / "datasets"))
SPLITS = DATASETS / "splits"
# Small splits are vendored so the core of the suite also runs where ../shared is absent.
VENDORED = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT))


SAMPLES = ROOT / "automl_core" / "samples"


def dataset_path(name: str, split: str | None = None) -> Path:
    path = SPLITS / f"{name}.{split}.csv" if split else DATASETS / f"{name}.csv"
    if not path.exists():
        path = VENDORED / f"{name}.{split}.csv" if split else SAMPLES / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"shared dataset {path} is not available")
    return path


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.exists():
        pytest.skip("shared datasets are not available")
    return DATASETS


@pytest.fixture()
def automl_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOML_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def titanic_frame() -> pd.DataFrame:
    from automl_core import read_table

    return read_table(dataset_path("titanic", "train"))


@pytest.fixture(scope="session")
def titanic_model(titanic_frame):
    """A small binary model (no ensemble, three families) trained once for the session."""
    from automl_core import AutoML

    return AutoML(time_budget=6, include=["lightgbm", "linear"], cv=3, random_state=0).fit(titanic_frame, "survived")


@pytest.fixture(scope="session")
def diabetes_frame() -> pd.DataFrame:
    from automl_core import read_table

    return read_table(dataset_path("diabetes", "train"))


@pytest.fixture(scope="session")
def diabetes_model(diabetes_frame):
    from automl_core import AutoML

    return AutoML(time_budget=6, include=["lightgbm", "linear"], cv=3, random_state=0).fit(
        diabetes_frame, "progression"
    )


@pytest.fixture(scope="session")
def wine_frame() -> pd.DataFrame:
    from automl_core import read_table

    return read_table(dataset_path("wine", "train"))


@pytest.fixture(scope="session")
def wine_model(wine_frame):
    from automl_core import AutoML

    return AutoML(time_budget=6, include=["lightgbm", "linear"], cv=3, random_state=0).fit(wine_frame, "cultivar")
