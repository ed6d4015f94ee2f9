"""AutoML analyst workbench engine: intake, problem detection, search, evaluation, jobs and serving.

Pure Python (no Streamlit); the dashboard in `pages/` and the prediction server call into it.
Names are imported lazily, so `import automl_core.serving` or the CLI start without loading the
machine-learning libraries until they are needed.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make LightGBM, XGBoost and scikit-learn 10-40x slower as
# soon as another process (a second job, the app, a server) uses a core. Waiting passively costs
# little when the machine is idle. Must be set before the first OpenMP library loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._lazy import lazy_getattr  # noqa: E402 - after the OpenMP setting

_EXPORTS = {
    "AutoML": ".automl",
    "AutoMLError": ".errors",
    "BudgetError": ".errors",
    "Cancelled": ".errors",
    "DataError": ".errors",
    "SchemaError": ".errors",
    "TargetError": ".errors",
    "ProblemSpec": ".problem",
    "detect_problem": ".problem",
    "SearchEvent": ".search",
    "TableProfile": ".intake",
    "profile_table": ".intake",
    "read_table": ".intake",
    "Explainer": ".explain",
    "feature_importance": ".explain",
    "shap_summary": ".explain",
    "local_surrogate": ".explain",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
