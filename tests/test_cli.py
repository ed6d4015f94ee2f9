"""The `automl` command-line contract, end to end in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from automl_core.cli import ProgressBar, main
from automl_core.modelfile import load_model_dir
from automl_core.search import SearchEvent
from tests.conftest import ROOT, dataset_path


def run_cli(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "automl_core.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained_titanic(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    result = run_cli(
        "train", dataset_path("titanic", "train"), "--target", "survived", "--time-budget", "8",
        "--out", out, "--json", "--include", "lightgbm,linear",
    )
    assert result.returncode == 0, result.stderr
    return out, result


def test_train_prints_the_json_contract_last(trained_titanic):
    _, result = trained_titanic
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["task"] == "binary"
    assert summary["metric"] == "roc_auc"
    assert 0.7 < summary["cv_score"] <= 1.0
    assert summary["best"]
    assert {"model", "score", "fit_time"} <= set(summary["leaderboard"][0])
    assert summary["seconds"] < 8 * 2 + 4  # room for a loaded machine; the benchmarks measure the overrun
    assert "%" in result.stderr  # progress bar on stderr


def test_predict_writes_prediction_and_class_probabilities(trained_titanic, tmp_path):
    out, _ = trained_titanic
    test = pd.read_csv(dataset_path("titanic", "test"))
    features = test.drop(columns=["survived"]).assign(extra="ignored")
    data = tmp_path / "in.csv"
    features.to_csv(data, index=False)
    pred = tmp_path / "pred.csv"
    result = run_cli("predict", out, data, "--out", pred)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(pred)
    assert list(frame.columns) == ["prediction", "proba_died", "proba_survived"]
    assert len(frame) == len(test)
    assert frame[["proba_died", "proba_survived"]].sum(axis=1).round(6).eq(1).all()
    assert set(frame.prediction) <= {"died", "survived"}


def test_predict_warns_about_what_it_could_not_read(trained_titanic, tmp_path):
    out, _ = trained_titanic
    test = pd.read_csv(dataset_path("titanic", "test")).head(20).drop(columns=["survived"])
    test["age"] = test["age"].astype(object)
    test.loc[0, "age"], test.loc[1, "sex"] = "unknown", "other"
    data = tmp_path / "in.csv"
    test.to_csv(data, index=False)
    result = run_cli("predict", out, data, "--out", tmp_path / "p.csv")
    assert result.returncode == 0 and len(pd.read_csv(tmp_path / "p.csv")) == 20
    assert "warning: column 'age': 1 of 20 values could not be read as numbers (for example 'unknown')" in result.stderr
    assert "warning: column 'sex': 1 rows hold labels not seen in training (for example 'other')" in result.stderr


def test_predict_names_missing_columns(trained_titanic, tmp_path):
    out, _ = trained_titanic
    data = tmp_path / "in.csv"
    pd.read_csv(dataset_path("titanic", "test")).drop(columns=["age", "sex"]).to_csv(data, index=False)
    result = run_cli("predict", out, data, "--out", tmp_path / "p.csv")
    assert result.returncode == 1
    assert "missing required columns" in result.stderr and "'sex'" in result.stderr and "'age'" in result.stderr
    assert "Traceback" not in result.stderr


def test_tampered_model_file_is_refused(trained_titanic, tmp_path):
    import shutil

    out, _ = trained_titanic
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with open(copy / "model.joblib", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(Exception, match="SHA-256"):
        load_model_dir(copy)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nope.csv", "--target", "y"], "does not exist"),
        (["train", "__DATA__", "--target", "survive"], "Did you mean 'survived'"),
        (["predict", "__NOT_A_MODEL__", "__DATA__"], "not a model folder"),
        (["train", "__DATA__", "--target", "survived", "--task", "regression"], "regression needs numbers"),
        (["train", "__DATA__", "--target", "age", "--task", "timeseries", "--time-column", "sibsp"],
         "time column 'sibsp' of titanic.train.csv was read as numeric, not as dates"),
    ],
)
def test_bad_input_gets_one_clear_line_and_exit_code_1(args, message, tmp_path, capsys):
    data = str(dataset_path("titanic", "train"))
    args = [a.replace("__DATA__", data).replace("__NOT_A_MODEL__", str(tmp_path)) for a in args]
    code = main(args + (["--time-budget", "5"] if args[0] == "train" else []))
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and err.strip().splitlines()[-1].startswith("error: ")


def test_an_unexpected_exception_is_one_line_unless_debugging(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("automl_core.cli.cmd_predict", broken)
    monkeypatch.delenv("AUTOML_DEBUG", raising=False)
    assert main(["predict", "m", "d.csv"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected ZeroDivisionError: division by zero") and "Traceback" not in err
    monkeypatch.setenv("AUTOML_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["predict", "m", "d.csv"])


def test_clustering_without_a_target(tmp_path, capsys):
    data = tmp_path / "p.csv"
    pd.read_csv(dataset_path("penguins", "train")).drop(columns=["species"]).to_csv(data, index=False)
    code = main(["train", str(data), "--task", "clustering", "--time-budget", "6", "--out", str(tmp_path / "m"),
                 "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["task"] == "clustering"
    assert main(["predict", str(tmp_path / "m"), str(data), "--out", str(tmp_path / "c.csv")]) == 0
    clusters = pd.read_csv(tmp_path / "c.csv")["prediction"]
    assert clusters.nunique() >= 2


def test_progress_bar_writes_a_line_per_stage(tmp_path):
    import io

    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(SearchEvent("stage", "search", 10.0, 1.0, 9.0, "searching"))
    bar(SearchEvent("trial_finished", "search", 20.0, 2.0, 8.0, "x", 0.8, "lightgbm_1"))
    bar(SearchEvent("done", "done", 100.0, 10.0, 0.0, "best", 0.9, "lightgbm_1"))
    text = stream.getvalue()
    assert "searching" in text and "100.0%" in text and "best 0.9000 (lightgbm_1)" in text


def test_the_summary_shows_the_search_score_beside_the_revalidated_one(capsys):
    from automl_core.cli import _print_summary

    _print_summary({
        "task": "binary", "problem": {"reason": "two values"}, "metric": "roc_auc", "cv_score": 0.84, "best": "lgbm_3",
        "revalidation": {"models": ["lgbm_3", "xgb_7", "linear_1"], "repeats": 2}, "unlabeled_rows_dropped": 1234,
        "leaderboard": [{"model": "lgbm_3", "score": 0.84, "search_score": 0.851, "fit_time": 0.1},
                        {"model": "rf_9", "score": 0.82, "search_score": None, "fit_time": 0.2}],
        "caveats": [{"kind": "leak", "severity": "critical", "message": "'z' alone predicts the target"}],
    })
    out = capsys.readouterr().out
    assert "caveat (critical): 'z' alone predicts the target" in out
    assert "3 finalists were re-validated on 2 fresh shuffles" in out
    assert "0.84 (0.851)" in out and "(None)" not in out
    assert "1,234 rows without a target value were left out" in out


@pytest.mark.parametrize(
    "name, target, codes",
    [("titanic", "survived", {"died": 0, "survived": 1}), ("wine", "cultivar", {"class_0": 0, "class_1": 1, "class_2": 2})],
)
def test_classes_written_as_whole_numbers_train_predict_and_evaluate(name, target, codes, tmp_path, automl_home, capsys):
    """A CSV's 0/1 (or 0/1/2) target is read as numbers: the classes must still be 0, 1 (not 0.0, 1.0),
    name the probability columns, and match the labels of a file to evaluate."""
    train, test = (tmp_path / f"{part}.csv" for part in ("train", "test"))
    for part, path in (("train", train), ("test", test)):
        frame = pd.read_csv(dataset_path(name, part))
        frame[target] = frame[target].map(codes)
        frame.to_csv(path, index=False)
    code = main(["train", str(train), "--target", target, "--time-budget", "6", "--include", "lightgbm,linear",
                 "--out", str(tmp_path / "m"), "--name", "coded", "--json", "--quiet"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["task"] == ("binary" if len(codes) == 2 else "multiclass")
    assert main(["predict", str(tmp_path / "m"), str(test), "--out", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["prediction", *(f"proba_{c}" for c in sorted(codes.values()))]
    assert set(predictions["prediction"]) <= set(codes.values())
    assert main(["evaluate", "coded@1.0.0", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["accuracy"] > 0.7


def test_train_reports_a_leaking_column_as_it_registers(tmp_path, automl_home, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x[:, 0] + rng.normal(scale=0.5, size=300)
    data = tmp_path / "leaky.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "copy_of_y": y * 2 + 1e-3 * rng.normal(size=300),
                  "y": y}).to_csv(data, index=False)
    assert main(["train", str(data), "--target", "y", "--time-budget", "6", "--include", "linear", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "registered as leaky@" in out
    assert any(line.startswith("caveat (") and "'copy_of_y'" in line for line in out.splitlines()), out
