"""`store` sits below the engine and the UI: it imports neither, and nothing heavy at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

STORE = Path(__file__).resolve().parents[1] / "store"
ALLOWED_THIRD_PARTY = {"duckdb", "pandas", "numpy", "joblib"}


def imported_top_level_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_store_modules_import_only_the_standard_library_and_their_few_dependencies(path):
    outside = (
        imported_top_level_modules(path) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - {"store"}
    )
    assert outside == set(), f"{path.name} imports {sorted(outside)}"


def test_importing_store_does_not_import_pandas_joblib_or_the_engine():
    code = "import sys, store; print(sorted(m for m in ('pandas', 'joblib', 'automl_core', 'streamlit') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
