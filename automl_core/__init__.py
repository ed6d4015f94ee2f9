"""AutoML analyst workbench engine: intake, problem detection, search, evaluation, jobs and serving.

Pure Python (no Streamlit); the dashboard in `pages/` and the prediction server call into it.
"""

from .automl import AutoML
from .errors import AutoMLError, BudgetError, Cancelled, DataError, SchemaError, TargetError
from .intake import TableProfile, profile_table, read_table
from .problem import ProblemSpec, detect_problem
from .search import SearchEvent

__all__ = [
    "AutoML",
    "AutoMLError",
    "BudgetError",
    "Cancelled",
    "DataError",
    "ProblemSpec",
    "SchemaError",
    "SearchEvent",
    "TableProfile",
    "TargetError",
    "detect_problem",
    "profile_table",
    "read_table",
]
