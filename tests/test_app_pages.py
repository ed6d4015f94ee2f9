"""Each dashboard page's main path, driven through `streamlit.testing.v1.AppTest` (no browser).

Pages run through `app.py` (`switch_page`), so the router and the shared state are exercised too.
A tiny model is trained once per module in its own home; tests that change the registry use a
home of their own.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TITANIC = ROOT / "tests" / "data" / "titanic.train.csv"
TITANIC_TEST = ROOT / "tests" / "data" / "titanic.test.csv"
DIABETES = ROOT / "tests" / "data" / "diabetes.train.csv"


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def table(at: AppTest, *columns: str):
    """The first table shown that has all these columns (AppTest does not expose dataframe keys)."""
    for frame in at.dataframe:
        value = frame.value
        if set(columns) <= set(value.columns):
            return value
    raise AssertionError(
        f"no table with columns {columns}; shown: {[list(f.value.columns) for f in at.dataframe]}"
    )


def open_page(page: str | None = None, **state) -> AppTest:
    """Run the app, optionally on a page, with seeded session state; fail on any uncaught exception."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, texts(at.exception)
    return at


def train(home: Path, data: Path, target: str) -> str:
    from automl_core.training import TrainRequest, run_training
    from store import Store

    result = run_training(
        Store(home), TrainRequest(data=str(data), target=target, time_budget=3, include=("linear",))
    )
    return result.version.ref


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory) -> dict:
    """A home with a binary (titanic) and a regression (diabetes) model, trained once for the module."""
    home = tmp_path_factory.mktemp("trained") / "home"
    return {
        "home": home,
        "titanic": train(home, TITANIC, "survived"),
        "diabetes": train(home, DIABETES, "progression"),
    }


@pytest.fixture()
def home(trained_home, monkeypatch) -> dict:
    monkeypatch.setenv("AUTOML_HOME", str(trained_home["home"]))
    return trained_home


@pytest.fixture(scope="module")
def template_home(tmp_path_factory) -> Path:
    """A home holding titanic@1.0.0, never opened by the app: tests that change a registry copy it."""
    home = tmp_path_factory.mktemp("template") / "home"
    train(home, TITANIC, "survived")
    return home


@pytest.fixture()
def titanic_home(template_home, tmp_path, monkeypatch) -> Path:
    """A home of this test alone with titanic@1.0.0 registered (a copy of the template)."""
    path = tmp_path / "home"
    shutil.copytree(template_home, path)
    monkeypatch.setenv("AUTOML_HOME", str(path))
    return path


@pytest.fixture()
def own_home(tmp_path, monkeypatch) -> Path:
    """A home of this test alone (starts empty)."""
    path = tmp_path / "home"
    monkeypatch.setenv("AUTOML_HOME", str(path))
    return path


def seeded_data(path: Path = TITANIC, target: str | None = "survived") -> dict:
    import hashlib

    data = path.read_bytes()
    return {
        "data_bytes": data,
        "data_name": path.name,
        "data_sha": hashlib.sha256(data).hexdigest(),
        "target": target,
    }


# ----------------------------------------------------------------------------------- home
def test_home_on_an_empty_home_offers_samples_and_loading_one_opens_data(own_home):
    at = open_page()
    assert "AutoML workbench" in texts(at.title)
    assert at.metric[0].value == "0"  # registered models
    at.button(key="sample_titanic").click().run()
    assert not at.exception
    assert at.session_state["data_name"] == "titanic.csv"
    assert at.session_state["target"] == "survived"
    assert "binary" in texts(at.success)  # now on the Data page, with the problem detected


@pytest.mark.parametrize(
    "page", ["leaderboard", "model", "playground", "batch", "registry", "monitoring", "jobs"]
)
def test_pages_that_need_models_explain_what_to_do_on_an_empty_home(own_home, page):
    at = open_page(page)
    assert at.info, f"{page} shows no guidance on an empty home"


def test_train_page_without_data_points_to_the_data_page(own_home):
    at = open_page("train")
    assert "Choose a dataset first" in texts(at.info)


# ----------------------------------------------------------------------------------- data
def test_data_page_profiles_an_upload_and_detects_then_overrides_the_problem(own_home):
    at = open_page("data")
    at.file_uploader(key="upload").set_value(("titanic.train.csv", TITANIC.read_bytes(), "text/csv")).run()
    assert "Loaded 981 rows × 6 columns" in texts(at.success)
    at.selectbox(key="target_pick").select("survived").run()
    assert "target 'survived' has 2 distinct values" in texts(at.success)
    profile = table(at, "column", "kind", "role")
    assert set(profile["column"]) == {"pclass", "survived", "sex", "age", "sibsp", "parch"}
    assert profile.set_index("column").loc["survived", "role"] == "target"
    at.selectbox(key="task_pick").select("regression").run()
    assert "holds text" in texts(at.error)  # a refused override is explained, not raised
    at.selectbox(key="task_pick").select("multiclass").run()
    assert "chosen by you" in texts(at.success)
    assert not at.exception


def test_data_page_shows_a_bad_upload_as_an_error_next_to_the_uploader(own_home):
    at = open_page("data")
    at.file_uploader(key="upload").set_value(("photo.csv", b"\x89PNG\x00\x00\x01binary", "text/csv")).run()
    assert not at.exception
    assert "photo.csv" in texts(at.error) and "not a text file" in texts(at.error)


def test_data_page_explains_the_messy_sample(own_home):
    at = open_page("data")
    at.selectbox(key="sample_pick").select("loans_messy")
    at.button(key="load_sample").click().run()
    assert "regression" in texts(at.success) and "1,000" not in texts(at.error)
    profile = table(at, "column", "kind", "role").set_index("column")
    assert profile.loc["Annual Income", "kind"] == "numeric"
    assert profile.loc["loan_id", "role"] == "excluded"
    assert "200 rows have no value for the target" in texts(at.warning)


# ----------------------------------------------------------------------------------- train and jobs
def test_train_page_starts_a_background_job_that_the_jobs_page_follows(own_home):
    from store import Store

    at = open_page("train", **seeded_data())
    at.number_input(key="budget").set_value(3)
    at.multiselect(key="families").set_value(["linear"])
    at.button(key="train").click().run()
    assert not at.exception
    job_id = at.session_state["job_id"]
    assert job_id
    store = Store(own_home)
    deadline = time.monotonic() + 180
    while store.jobs.get(job_id).active and time.monotonic() < deadline:
        time.sleep(0.2)
    job = store.jobs.get(job_id)
    assert job.status == "succeeded", job.error
    assert job.params["include"] == ["linear"] and job.params["metric"] == "roc_auc"
    at = open_page("jobs", job_id=job_id)
    assert f"Registered **{job.result['ref']}**" in texts(at.success)
    assert not at.get("progress")  # nothing running any more


def test_jobs_page_shows_live_progress_and_cancels(own_home):
    from store import Store

    store = Store(own_home)
    job = store.jobs.create("train", {"name": "demo", "source": "demo.csv", "target": "y"})
    store.jobs.start(job.id)
    store.jobs.append_event(
        job.id,
        {
            "type": "progress",
            "stage": "search",
            "percent": 42.0,
            "time_left": 17.0,
            "elapsed": 12.0,
            "best_score": 0.875,
            "best_model": "lightgbm_3",
            "message": "tuning lightgbm",
        },
    )
    at = open_page("jobs")
    progress = at.get("progress")[0].proto
    assert "search · 42%" in progress.text
    assert "0.875" in texts(at.metric)
    at.button(key=f"cancel_{job.id}").click().run()
    assert store.jobs.cancel_requested(job.id)
    store.jobs.finish(job.id, "failed", error="the data ran out")
    time.sleep(1.1)  # the job list is cached for one second
    at.run()
    assert "the data ran out" in texts(at.error)


# ----------------------------------------------------------------------------------- leaderboard
def test_leaderboard_page_shows_the_board_the_trade_off_and_a_significance_test(home):
    at = open_page("leaderboard", model_ref=home["titanic"])
    board = table(at, "model", "score", "std")
    assert {"model", "score", "std", "predict_ms_per_row", "size_kb"} <= set(board.columns)
    assert len(board) >= 2
    verdicts = texts(at.success) + texts(at.info)
    assert " vs " in verdicts and "p = " in verdicts
    at.multiselect(key="compare_versions").set_value([home["titanic"], home["titanic"]]).run()
    assert not at.exception


def test_leaderboard_page_ranks_revalidated_finalists_and_says_which_pairs_compare(own_home, monkeypatch):
    from automl_core.training import TrainRequest, run_training
    from store import Store

    # Most of the budget may go to re-validation, so that it happens however loaded the machine is.
    monkeypatch.setattr("automl_core.revalidation.BUDGET_SHARE", 0.6)
    version = run_training(Store(own_home), TrainRequest(
        data=str(TITANIC), target="survived", time_budget=8, include=("lightgbm", "linear"), cv=3,
    )).version
    assert version.lineage["revalidation"], "a cheap pass on small data: the finalists are re-validated"
    at = open_page("leaderboard", model_ref=version.ref)
    board = table(at, "model", "score", "search_score")
    assert board.iloc[0]["model"] == version.lineage["chosen_model"] or board.iloc[0]["family"] == "ensemble"
    revalidated = board.loc[board["search_score"].notna(), "model"].tolist()
    searched = board.loc[board["search_score"].isna() & (board["family"] != "ensemble"), "model"].tolist()
    assert revalidated and searched
    at.multiselect(key="final_compare").set_value([revalidated[0], searched[0]]).run()
    assert not at.exception
    assert "scored on different folds" in texts(at.caption)
    at.multiselect(key="final_compare").set_value(revalidated[:2]).run()
    assert "p = " in texts(at.success) + texts(at.info)


def test_leaderboard_page_compares_versions(home):
    at = open_page("leaderboard", model_ref=home["titanic"])
    at.multiselect(key="compare_versions").set_value([home["titanic"], home["diabetes"]]).run()
    assert "different tasks" in texts(at.error)


def test_leaderboard_page_fills_in_while_a_job_runs(own_home):
    from store import Store

    store = Store(own_home)
    job = store.jobs.create("train", {"name": "live", "source": "x.csv", "target": "y", "metric": "rmse"})
    store.jobs.start(job.id)
    for i, score in enumerate([5.0, 4.0, 4.5], start=1):
        store.jobs.append_event(
            job.id,
            {
                "type": "trial",
                "name": f"linear_{i}",
                "family": "linear",
                "status": "ok",
                "score": score,
                "std": 0.1,
                "fold_scores": [score - 0.1, score + 0.1],
                "fit_time": 0.01,
                "predict_time_per_row": 1e-6,
                "size_bytes": 1024,
            },
        )
    at = open_page("leaderboard", job_id=job.id)
    board = table(at, "model", "score", "std")
    assert board["model"].tolist() == ["linear_2", "linear_3", "linear_1"]  # rmse: lower is better
    store.jobs.finish(job.id, "succeeded", result={"ref": "live@1.0.0"})
    at.run()  # the live area sees the end and switches the page to the registered version
    assert not at.exception and not at.warning
    assert "registered **live@1.0.0**" in texts(at.success)
    assert at.session_state["model_ref"] == "live@1.0.0"


# ----------------------------------------------------------------------------------- model
def test_model_page_shows_metrics_caveats_charts_importance_and_a_row_explanation(home):
    at = open_page("model", model_ref=home["titanic"])
    metrics = table(at, "metric", "value")
    assert len(metrics) >= 15 and "roc_auc" in set(metrics["metric"])
    assert "SHAP summary" in texts(at.markdown)
    assert "Prediction **" in texts(at.markdown)  # the per-row explanation
    charts = len(at.get("vega_lite_chart"))
    assert charts >= 6  # confusion matrix, ROC, PR, calibration, thresholds, SHAP...
    from store import Store

    registry, deadline = Store(home["home"]).registry, time.monotonic() + 30
    while registry.get_document(home["titanic"], "importance") is None and time.monotonic() < deadline:
        time.sleep(0.2)  # permutation importance runs in the background once per version
    importance = registry.get_document(home["titanic"], "importance")
    assert importance and {row["column"] for row in importance} == {"pclass", "sex", "age", "sibsp", "parch"}
    at.run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) > charts  # the permutation importance chart appeared


def test_model_page_shows_regression_intervals_and_residuals(home):
    at = open_page("model", model_ref=home["diabetes"])
    assert "measured coverage" in texts(at.info)
    assert "rmse" in set(table(at, "metric", "value")["metric"])


# ----------------------------------------------------------------------------------- playground
def test_playground_builds_the_form_from_the_schema_and_the_prediction_moves(home):
    at = open_page("playground", model_ref=home["titanic"])
    assert at.selectbox(key="pg_sex").options == ["male", "female"]
    age = at.slider(key="pg_age")
    assert age.min == pytest.approx(0.3333, abs=1e-3) and age.max == 80
    before = at.metric[0].value
    at.selectbox(key="pg_sex").select("female")
    at.selectbox(key="pg_pclass").select("1st").run()
    assert not at.exception
    assert before == "died" and at.metric[0].value == "survived"
    assert "move it to" in texts(at.caption)  # the local explanation
    at.toggle(key="lime").set_value(True).run()
    assert table(at, "column", "weight", "value")["column"].size == 5


def test_playground_regression_shows_the_interval(home):
    at = open_page("playground", model_ref=home["diabetes"])
    assert "prediction interval" in texts(at.caption)
    at.selectbox(key="whatif_column").select("bmi").run()
    assert not at.exception


# ----------------------------------------------------------------------------------- batch
def test_batch_page_predicts_an_upload_and_scores_it(home):
    at = open_page("batch", model_ref=home["titanic"])
    at.file_uploader(key="batch_upload").set_value(
        ("titanic.test.csv", TITANIC_TEST.read_bytes(), "text/csv")
    ).run()
    result = table(at, "prediction")
    assert {"prediction", "proba_died", "proba_survived"} <= set(result.columns)
    assert "roc_auc" in set(table(at, "metric", "value")["metric"])


def test_batch_page_names_a_missing_column(home):
    at = open_page("batch", model_ref=home["titanic"])
    at.file_uploader(key="batch_upload").set_value(
        ("rows.csv", b"pclass,age\n1st,30\n3rd,4\n", "text/csv")
    ).run()
    assert not at.exception
    assert "422" in texts(at.error) and "'sex' is missing" in texts(at.error)  # as the server says it
    rows = b"pclass,sex,age,sibsp,parch\n1st,male,old,0,0\n"
    at.file_uploader(key="batch_upload").set_value(("rows.csv", rows, "text/csv")).run()
    assert "'age'" in texts(at.error) and "old" in texts(at.error)


def test_batch_page_keeps_every_row_of_the_file_next_to_its_own_prediction(home):
    import pandas as pd

    rows = pd.read_csv(TITANIC_TEST, dtype=str, keep_default_na=False).iloc[:30]
    plain = rows.to_csv(index=False).encode()
    # the same rows with an all-empty row after the 10th, semicolons and Latin-1 (as a spreadsheet may save it)
    empty = pd.DataFrame([[""] * rows.shape[1]], columns=rows.columns)
    odd = pd.concat([rows.iloc[:10], empty, rows.iloc[10:]], ignore_index=True)
    odd["remarque"] = ["Zoë"] * 10 + [""] + ["Gaëlle"] * 20
    odd = odd.to_csv(index=False, sep=";").encode("latin-1")

    at = open_page("batch", model_ref=home["titanic"])
    at.file_uploader(key="batch_upload").set_value(("plain.csv", plain, "text/csv")).run()
    want = table(at, "prediction", "sex").reset_index(drop=True)
    at.file_uploader(key="batch_upload").set_value(("odd.csv", odd, "text/csv")).run()
    assert not at.exception and not at.error
    got = table(at, "prediction", "sex").reset_index(drop=True)
    assert len(got) == 31 and got.loc[10, ["pclass", "sex", "age"]].isna().all()
    rest = got.drop(index=10).reset_index(drop=True)
    assert list(rest["sex"]) == list(want["sex"]) and list(rest["prediction"]) == list(want["prediction"])
    pd.testing.assert_series_equal(rest["proba_survived"], want["proba_survived"], rtol=1e-9)
    assert "roc_auc" in set(table(at, "metric", "value")["metric"])  # scored on the same rows


# ----------------------------------------------------------------------------------- registry
def test_registry_page_promotes_retrains_runs_an_ab_test_and_shows_how_to_serve(titanic_home):
    from store import Store

    store = Store(titanic_home)
    ref = "titanic@1.0.0"
    at = open_page("registry", model_ref=ref)
    assert "titanic" in set(table(at, "model", "latest", "versions")["model"])
    at.button(key="promote").click().run()
    assert "now serves 1.0.0" in texts(at.success)
    assert store.registry.aliases("titanic") == {"production": "1.0.0"}
    assert "automl serve" in texts(at.code) and "/api/v1/predict/titanic@production" in texts(at.code)

    newer = ("titanic.test.csv", TITANIC_TEST.read_bytes(), "text/csv")
    at.file_uploader(key="retrain_upload").set_value(newer).run()
    at.button(key="retrain").click().run()
    assert "becomes a child of titanic@1.0.0" in texts(at.success)
    job_id, deadline = at.session_state["job_id"], time.monotonic() + 180
    while store.jobs.get(job_id).active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.jobs.get(job_id).result["ref"] == "titanic@1.1.0", store.jobs.get(job_id).error
    assert [(e.parent, e.child) for e in store.registry.family_tree("titanic")] == [
        ("titanic@1.0.0", "titanic@1.1.0")
    ]

    time.sleep(2.1)  # the version list is cached for two seconds
    at.run()
    at.selectbox(key="champion").select("titanic@production")
    at.selectbox(key="challenger").select("titanic@1.1.0")
    at.slider(key="challenger_weight").set_value(20)
    at.button(key="deploy").click().run()
    deployment = store.registry.deployment("titanic")
    assert (deployment.champion, deployment.challenger, deployment.mode) == (
        "titanic@production",
        "titanic@1.1.0",
        "ab",
    )
    assert deployment.challenger_weight == pytest.approx(0.2)


def test_registry_page_imports_an_exported_file(titanic_home, tmp_path):
    from store import Store

    ref = "titanic@1.0.0"
    archive = Store(titanic_home).registry.export_version(ref, tmp_path / "titanic.zip")
    at = open_page("registry", model_ref=ref)
    at.file_uploader(key="import_upload").set_value(
        ("titanic.zip", archive.read_bytes(), "application/zip")
    ).run()
    assert "titanic@1.0.0" in texts(at.markdown)  # the card, read without unpickling
    at.button(key="import").click().run()
    assert "Imported as **titanic@1.1.0**" in texts(at.success)


# ----------------------------------------------------------------------------------- monitoring
def test_monitoring_page_shows_traffic_once_predictions_are_logged(titanic_home):
    from store import Store

    ref = "titanic@1.0.0"
    at = open_page("monitoring", model_ref=ref)
    assert "No predictions logged" in texts(at.info)
    store = Store(titanic_home)
    logger = store.monitoring.prediction_logger()
    now = time.time()
    for i in range(30):
        logger.log(
            request_id=f"r{i}",
            model="titanic",
            version="1.0.0",
            variant="champion",
            inputs={"pclass": "3rd", "sex": "male", "age": 20 + i, "sibsp": 0, "parch": 0},
            outputs={"prediction": "died"},
            latency_ms=1.5,
            ts=now - i,
        )
    for i in range(5):  # ten days ago: outside the default window of a week
        logger.log(request_id=f"old{i}", model="titanic", version="1.0.0", variant="champion",
                   inputs={"pclass": "1st", "sex": "female", "age": 40, "sibsp": 0, "parch": 0},
                   outputs={"prediction": "survived"}, latency_ms=2.0, ts=now - 10 * 86400 - i)
    logger.close()
    at.button(key="monitor_refresh").click().run()
    assert not at.exception
    assert "30" in texts(at.metric)
    at.selectbox(key="monitor_window").set_value("all").run()
    assert "35" in texts(at.metric)
    at.selectbox(key="monitor_bucket").set_value("1min").run()
    assert not at.exception and "shown in 1h buckets" in texts(at.caption)


def test_the_app_accepts_a_million_row_csv_upload():
    import tomllib

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] >= 500  # MB: a million rows of 23 columns is about 430 MB


def test_the_data_page_histograms_send_counts_not_values():
    import numpy as np
    import pandas as pd

    from pages import charts

    values = pd.Series(np.random.default_rng(0).normal(size=200_000)).where(lambda s: s.abs() < 3)
    chart = charts.histogram(values, "x")
    assert len(chart.data) == 40 and chart.data["rows"].sum() == values.notna().sum()
    dates = pd.Series(pd.to_datetime(["2020-01-05", "2020-01-20", "2020-03-01", None]))
    monthly = charts.histogram(dates, "when", kind="datetime").data
    assert monthly["rows"].tolist() == [2, 1] and monthly["month"].dt.month.tolist() == [1, 3]
