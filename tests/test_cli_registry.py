"""`automl models ...` and `automl jobs` in-process: listing, lineage, aliases, export/import, retrain."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from automl_core.cli import main
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("AUTOML_HOME", str(home))
    code = main(["train", str(dataset_path("titanic", "train")), "--target", "survived", "--time-budget", "5",
                 "--include", "linear", "--quiet", "--name", "titanic"])
    assert code == 0
    yield home
    mp.undo()


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_listing_and_showing_with_lineage(home, capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "titanic" in out and "1.0.0" in out
    code, out, _ = run(capsys, "models", "--json")
    assert json.loads(out)[0]["name"] == "titanic"
    code, out, _ = run(capsys, "models", "show", "titanic")
    assert "data: titanic.train.csv" in out and "cv plan:" in out
    code, out, _ = run(capsys, "models", "show", "titanic@1.0.0", "--json")
    shown = json.loads(out)
    assert shown["lineage"]["data"]["rows"] == 981 and shown["input_schema"]["columns"][0]["name"] == "pclass"


def test_unknown_references_are_clear_errors(home, capsys):
    code, _, err = run(capsys, "models", "show", "titanic@9.9.9")
    assert code == 1 and "9.9.9" in err and err.startswith("error:")
    code, _, err = run(capsys, "models", "promote", "titanic@1.0.0", "--alias", "Bad Alias!")
    assert code == 1 and "alias" in err.lower()


def test_promote_export_import_retrain_and_tree(home, capsys, tmp_path):
    assert run(capsys, "models", "promote", "titanic@1.0.0", "--alias", "production")[0] == 0
    code, out, _ = run(capsys, "predict", "titanic@production", str(dataset_path("titanic", "test")),
                       "--out", str(tmp_path / "p.csv"))
    assert code == 0 and len(pd.read_csv(tmp_path / "p.csv")) == 328
    archive = tmp_path / "t.zip"
    assert run(capsys, "models", "export", "titanic@production", "--out", str(archive))[0] == 0
    code, out, _ = run(capsys, "models", "import", str(archive), "--name", "colleague")
    assert code == 0 and "colleague@1.0.0" in out
    newer = tmp_path / "newer.csv"
    pd.read_csv(dataset_path("titanic", "test")).to_csv(newer, index=False)
    code, out, _ = run(capsys, "models", "retrain", "titanic@1.0.0", str(newer), "--quiet", "--json")
    assert code == 0 and json.loads(out)["ref"] == "titanic@1.1.0"
    code, out, _ = run(capsys, "models", "reproduce", "titanic@1.0.0", "--quiet")
    assert code == 0 and "titanic@1.2.0" in out and "child of titanic@1.0.0" in out
    code, out, _ = run(capsys, "models", "tree", "titanic")
    assert "titanic@1.0.0 → titanic@1.1.0" in out
    assert json.loads(run(capsys, "models", "tree", "titanic", "--json")[1])
    code, out, _ = run(capsys, "jobs")
    assert code == 0
    code, out, _ = run(capsys, "jobs", "--json")
    assert json.loads(out) == []
    assert run(capsys, "models", "delete", "colleague@1.0.0")[0] == 0
    assert run(capsys, "models", "delete", "titanic@1.2.0")[0] == 0
