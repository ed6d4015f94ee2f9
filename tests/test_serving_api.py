"""The API and the prediction core in-process (no sockets): routes, errors, auth, deployments, logs, management."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pandas as pd
import pytest

from automl_core.intake import read_table
from automl_core.serving.api import Api, Body, Request, Response
from automl_core.serving.core import PredictionService, sticky_share
from automl_core.serving.openapi import openapi_spec
from tests.conftest import dataset_path
from tests.test_serving_support import fit_pipeline, messy_csv, messy_frame, raw_rows, register

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from store import Store

    root = tmp_path_factory.mktemp("serving-api")
    store = Store(root / "home")
    train_csv = messy_csv(300, seed=0)
    frame = messy_frame(300, seed=0)
    reg = frame.drop(columns=["approved", "grade"])
    binary = frame.drop(columns=["rate", "grade"])
    register(
        store,
        "loans",
        fit_pipeline(reg, "rate", "lightgbm", task="regression"),
        "regression",
        data=train_csv,
        target="rate",
        aliases=("production",),
    )
    register(
        store,
        "loans",
        fit_pipeline(reg, "rate", "linear", task="regression"),
        "regression",
        data=train_csv,
        target="rate",
    )
    register(
        store,
        "approval",
        fit_pipeline(binary, "approved", "lightgbm", task="binary"),
        "binary",
        data=train_csv,
        target="approved",
    )
    data_dir = root / "data"
    data_dir.mkdir()
    (data_dir / "loans_test.csv").write_bytes(messy_csv(80, seed=9))
    (data_dir / "titanic.csv").write_bytes(dataset_path("titanic", "train").read_bytes())
    (root / "outside.csv").write_bytes(b"a,b\n1,2\n")
    return {"store": store, "root": root, "data_dir": data_dir}


@pytest.fixture(scope="module")
def api(home):
    api = Api(home["store"], data_dirs=[home["data_dir"]], service=PredictionService(home["store"], seed=1))
    yield api
    api.close()


def call(
    api: Api, method: str, target: str, body=None, *, ctype: str = "application/json", headers=None
) -> Response:
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    return api.handle(Request(method, target, {"Content-Type": ctype, **(headers or {})}, Body.of(data)))


def rows(n=5, seed=11):
    return raw_rows(messy_csv(n, seed=seed))


def expected(store, ref, n: int, seed: int = 11, proba=False):
    """The pipeline's answers on the file the rows came from (read like `automl predict` reads it)."""
    pipeline = store.registry.load(ref)
    frame = read_table(messy_csv(n, seed=seed))
    return pipeline.predict_proba(frame) if proba else pipeline.predict(frame)


# --------------------------------------------------------------------------- basics
def test_health_openapi_and_the_model_list(api):
    health = call(api, "GET", "/api/v1/health")
    assert health.status == 200 and health.json()["status"] == "ok"
    spec = call(api, "GET", "/api/v1/openapi.json").json()
    assert spec == json.loads(json.dumps(openapi_spec())) and call(api, "GET", "/openapi.json").status == 200
    for path in (
        "/api/v1/predict/{model_id}",
        "/api/v1/predict/{model_id}/batch",
        "/api/v1/models/train",
        "/api/v1/models/jobs/{job_id}",
        "/api/v1/models/compare",
        "/api/v1/feedback",
        "/api/v1/models/{model_id}/playground",
        "/api/v1/models/{model_id}/explain",
    ):
        assert path in spec["paths"]
    listed = call(api, "GET", "/api/v1/models/").json()["models"]
    by_name = {m["name"]: m for m in listed}
    assert by_name["loans"]["latest_version"] == "1.1.0" and by_name["loans"]["aliases"] == {
        "production": "1.0.0"
    }


def test_model_details_carry_lineage_schema_and_a_working_example(api):
    details = call(api, "GET", "/api/v1/models/loans@production").json()
    assert details["ref"] == "loans@1.0.0" and details["asked"] == "loans@production"
    assert details["lineage"]["target"] == "rate" and details["versions"] == ["1.0.0", "1.1.0"]
    assert {c["name"] for c in details["inputs"]} >= {"Annual Income", "state", "issued", "emp_title"}
    assert details["serving"]["fast_path"] is True and details["serving"]["fast_path_reason"] is None
    answer = call(api, "POST", "/api/v1/predict/loans@production", details["example"])
    assert answer.status == 200 and answer.json()["warnings"] == []


# --------------------------------------------------------------------------- predictions
def test_one_row_gets_the_pipelines_prediction_with_version_and_request_id(api, home):
    raw = rows(3)
    answer = call(
        api, "POST", "/api/v1/predict/loans@1.0.0", {"inputs": raw[0]}, headers={"X-Request-Id": "my-id-1"}
    )
    body = answer.json()
    assert answer.status == 200 and body["version"] == "loans@1.0.0" and body["model"] == "loans@1.0.0"
    assert body["request_id"] == "my-id-1" and "variant" not in body and "probabilities" not in body
    assert body["predictions"][0] == pytest.approx(expected(home["store"], "loans@1.0.0", 3)[0], rel=1e-12)
    assert body["ignored_columns"] == ["loan_id", "rate", "approved", "grade"]


def test_a_spreadsheet_number_in_a_clean_number_column_is_read_not_refused(api):
    row = rows(1)[0]
    answers = []
    for ratio in (1639.3, "1,639.3", "1.639,3"):
        answer = call(api, "POST", "/api/v1/predict/loans@1.0.0", {"inputs": {**row, "ratio": ratio}})
        assert answer.status == 200, answer.json()
        answers.append(answer.json()["predictions"][0])
    assert answers[1] == answers[0] == answers[2]
    refused = call(api, "POST", "/api/v1/predict/loans@1.0.0", {"inputs": {**row, "ratio": "about 1e5"}})
    assert refused.status == 422 and "'about 1e5' is not a number" in refused.json()["error"]["message"]


def test_classifiers_answer_probabilities_keyed_by_class_name(api, home):
    raw = rows(4)
    body = call(api, "POST", "/api/v1/predict/approval", {"dataframe_records": raw[:1]}).json()
    want = expected(home["store"], "approval", 4, proba=True)[0]
    assert body["probabilities"][0] == pytest.approx({"No": want[0], "Yes": want[1]}, rel=1e-12)
    assert body["predictions"] == ["Yes" if want[1] > want[0] else "No"]


@pytest.mark.parametrize("fmt", ["inputs", "dataframe_records", "dataframe_split", "instances"])
def test_json_batches_in_every_format_match_the_pipeline(api, home, fmt):
    raw = rows(40, seed=4)
    if fmt == "dataframe_split":
        payload = {fmt: {"columns": list(raw[0]), "data": [list(r.values()) for r in raw]}}
    else:
        payload = {fmt: raw}
    answer = call(api, "POST", "/api/v1/predict/approval/batch", payload)
    body = answer.json()
    want = expected(home["store"], "approval", 40, seed=4, proba=True)
    assert (
        answer.status == 200 and body["rows"] == 40 and answer.headers["X-Request-Id"] == body["request_id"]
    )
    np.testing.assert_allclose([p["Yes"] for p in body["probabilities"]], want[:, 1], rtol=1e-12)
    assert body["predictions"] == ["Yes" if p > 0.5 else "No" for p in want[:, 1]]


def test_a_csv_batch_is_answered_as_csv_in_the_cli_contract(api, home):
    csv = messy_csv(6_000, seed=12)
    answer = call(api, "POST", "/api/v1/predict/approval/batch", csv, ctype="text/csv")
    assert answer.status == 200 and answer.content_type.startswith("text/csv")
    assert answer.headers["X-Rows"] == "6000" and answer.headers["X-Model-Version"] == "approval@1.0.0"
    out = pd.read_csv(io.BytesIO(answer.data()))
    assert list(out.columns) == ["prediction", "proba_No", "proba_Yes"] and len(out) == 6_000
    want = home["store"].registry.load("approval").predict_proba(read_table(csv))
    np.testing.assert_allclose(out["proba_Yes"], want[:, 1], rtol=1e-9)


def test_a_csv_batch_with_a_bad_cell_is_refused_before_anything_is_sent(api):
    frame = pd.read_csv(io.BytesIO(messy_csv(7000, seed=13)), dtype=str, keep_default_na=False)
    frame.loc[6000, "Annual Income"] = "lots"
    csv = frame.to_csv(index=False).encode()
    answer = call(api, "POST", "/api/v1/predict/approval/batch", csv, ctype="text/csv")
    error = answer.json()["error"]
    assert (
        answer.status == 422 and error["details"][0]["row"] == 6000 and error["details"][0]["value"] == "lots"
    )
    assert call(api, "POST", "/api/v1/predict/approval/batch", b"", ctype="text/csv").status == 422
    header_only = b"loan_id,Annual Income\n"
    assert call(api, "POST", "/api/v1/predict/approval/batch", header_only, ctype="text/csv").status == 422
    garbage = b'a,b\n"unterminated\n'
    assert call(api, "POST", "/api/v1/predict/approval/batch", garbage, ctype="text/csv").status in (400, 422)


ERRORS = [
    ("POST", "/api/v1/predict/nobody", {"inputs": {}}, "application/json", 404, "not_found"),
    ("POST", "/api/v1/predict/loans@9.9.9", {"inputs": {}}, "application/json", 404, "not_found"),
    ("POST", "/api/v1/predict/loans@staging", {"inputs": {}}, "application/json", 404, "not_found"),
    ("POST", "/api/v1/predict/bad%20name", {"inputs": {}}, "application/json", 404, "not_found"),
    ("GET", "/api/v1/nothing/here", None, "application/json", 404, "not_found"),
    ("GET", "/api/v1/predict/loans", None, "application/json", 405, "method_not_allowed"),
    (
        "POST",
        "/api/v1/predict/loans",
        b"a=1",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    ("POST", "/api/v1/predict/loans/batch", b"<x/>", "application/xml", 415, "unsupported_media_type"),
    ("POST", "/api/v1/predict/loans", b'{"inputs": [', "application/json", 400, "bad_request"),
    ("POST", "/api/v1/predict/loans", {"inputs": {"state": "CA"}}, "application/json", 422, "invalid_input"),
    (
        "POST",
        "/api/v1/predict/loans",
        {"inputs": [{"a": 1}, {"a": 2}]},
        "application/json",
        422,
        "invalid_input",
    ),
    ("GET", "/api/v1/models/jobs/nope", None, "application/json", 404, "not_found"),
    ("GET", "/api/v1/models/jobs/" + "0" * 32, None, "application/json", 404, "not_found"),
    ("DELETE", "/api/v1/models/loans@production", None, "application/json", 422, "invalid_input"),
]


@pytest.mark.parametrize(("method", "target", "body", "ctype", "status", "code"), ERRORS)
def test_refusals_share_one_json_shape_and_an_honest_status(api, method, target, body, ctype, status, code):
    answer = call(api, method, target, body, ctype=ctype)
    error = answer.json()["error"]
    assert answer.status == status and error["code"] == code and set(error) == {"code", "message", "details"}
    if status == 405:
        assert answer.headers["Allow"] == "OPTIONS, POST"


def test_a_missing_column_is_named_in_single_rows_and_batches(api):
    raw = rows(3)
    del raw[1]["state"]
    single = call(api, "POST", "/api/v1/predict/approval", {"inputs": raw[1]}).json()["error"]
    assert single["details"][0] == {
        "column": "state",
        "problem": "missing",
        "message": "column 'state' is missing",
    }
    batch = call(api, "POST", "/api/v1/predict/approval/batch", {"inputs": raw}).json()["error"]
    assert batch["details"][0]["column"] == "state" and batch["details"][0]["rows"] == [1]


def test_an_oversized_body_is_413_and_an_unexpected_error_is_500_with_an_id(api, monkeypatch):
    big = Request(
        "POST",
        "/api/v1/predict/loans",
        {"Content-Type": "application/json"},
        Body(io.BytesIO(b"x" * 100), 100, 10),
    )
    answer = api.handle(big)
    assert answer.status == 413 and answer.json()["error"]["details"]["limit_bytes"] == 10

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.service, "predict_row", boom)
    answer = call(api, "POST", "/api/v1/predict/loans", {"inputs": rows(1)[0]})
    error = answer.json()["error"]
    assert (
        answer.status == 500 and error["code"] == "internal_error" and len(error["details"]["error_id"]) == 12
    )
    assert "secret" not in answer.data().decode() and "Traceback" not in answer.data().decode()


def test_head_and_options_answer_without_running_anything(api):
    assert call(api, "OPTIONS", "/api/v1/predict/loans").headers["Allow"] == "OPTIONS, POST"
    assert call(api, "HEAD", "/api/v1/health").status == 200
    allowed = call(api, "PUT", "/api/v1/models/compare").headers["Allow"]
    assert allowed == "DELETE, GET, HEAD, OPTIONS, POST"


def test_a_token_guards_everything_but_health(home):
    guarded = Api(home["store"], token=TOKEN)
    try:
        assert call(guarded, "GET", "/api/v1/health").status == 200
        missing = call(guarded, "GET", "/api/v1/models")
        assert missing.status == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
        assert call(guarded, "GET", "/api/v1/models", headers={"Authorization": "Bearer wrong"}).status == 401
        assert (
            call(guarded, "GET", "/api/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
        )
        assert call(guarded, "GET", "/api/v1/models", headers={"X-API-Token": TOKEN}).status == 200
        assert (
            call(guarded, "GET", "/api/v1/models?token=" + TOKEN).status == 401
        )  # only the playground takes ?token=
        page = call(guarded, "GET", f"/api/v1/models/loans/playground?token={TOKEN}")
        assert page.status == 200 and TOKEN in page.data().decode()
        assert call(guarded, "GET", "/api/v1/models/loans/playground").status == 401
    finally:
        guarded.close()


def test_the_playground_is_a_form_of_the_input_columns(api):
    page = call(api, "GET", "/api/v1/models/loans@production/playground")
    html = page.data().decode()
    assert page.status == 200 and page.content_type.startswith("text/html")
    for name in ("Annual Income", "state", "issued", "emp_title", "owns_home"):
        assert f'name="{name}"' in html
    assert "/api/v1/predict/loans@production" in html and "<datalist" in html


# --------------------------------------------------------------------------- deployments and logs
def test_routing_splits_traffic_by_weight_and_keeps_a_key_on_one_variant(home):
    store = home["store"]
    store.registry.deploy("loans", "loans@production", "loans@1.1.0", mode="ab", challenger_weight=0.3)
    try:
        service = PredictionService(store, seed=3, log_predictions=False)
        variants = [service.route("loans").variant for _ in range(2000)]
        assert 0.26 < variants.count("challenger") / 2000 < 0.34
        for key in ("alice", "bob", "carol", "dave"):
            chosen = {service.route("loans", key).version.ref for _ in range(20)}
            want = "loans@1.1.0" if sticky_share("loans", key) < 0.3 else "loans@1.0.0"
            assert chosen == {want}
        assert service.route("loans@1.0.0").variant is None  # a pinned version bypasses the deployment
    finally:
        store.registry.undeploy("loans")


def test_shadow_mode_answers_with_the_champion_and_logs_the_challenger(home):
    store = home["store"]
    store.registry.deploy("loans", "loans@1.0.0", "loans@1.1.0", mode="shadow", challenger_weight=1.0)
    service = PredictionService(store, seed=0)
    api = Api(store, service=service)
    try:
        raw = rows(2, seed=21)
        single = call(
            api, "POST", "/api/v1/predict/loans", {"inputs": raw[0]}, headers={"X-Request-Id": "shadow-1"}
        )
        assert single.json()["version"] == "loans@1.0.0" and single.json()["variant"] == "champion"
        batch = call(
            api, "POST", "/api/v1/predict/loans/batch", {"inputs": raw}, headers={"X-Request-Id": "shadow-b"}
        )
        assert batch.json()["version"] == "loans@1.0.0"
        service.flush()
        logs = store.monitoring.predictions("loans")
        mine = logs[logs["request_id"].isin(["shadow-1", "shadow-b-0", "shadow-b-1"])]
        pairs = set(zip(mine["request_id"], mine["variant"], mine["version"], strict=True))
        assert ("shadow-1", "champion", "1.0.0") in pairs and ("shadow-1", "shadow", "1.1.0") in pairs
        assert ("shadow-b-1", "shadow", "1.1.0") in pairs
        shadow = mine[(mine["request_id"] == "shadow-1") & (mine["variant"] == "shadow")].iloc[0]
        want = expected(store, "loans@1.1.0", 2, seed=21)[0]
        assert shadow["outputs"]["prediction"] == pytest.approx(want, rel=1e-12)
        assert shadow["inputs"]["state"] == raw[0]["state"]
    finally:
        store.registry.undeploy("loans")
        api.close()


def test_promoting_a_version_takes_effect_on_the_next_request(api, home):
    store = home["store"]
    raw = rows(1)[0]
    assert (
        call(api, "POST", "/api/v1/predict/loans@production", {"inputs": raw}).json()["version"]
        == "loans@1.0.0"
    )
    store.registry.set_alias("loans@1.1.0", "production")
    try:
        assert (
            call(api, "POST", "/api/v1/predict/loans@production", {"inputs": raw}).json()["version"]
            == "loans@1.1.0"
        )
    finally:
        store.registry.set_alias("loans@1.0.0", "production")


def test_predictions_and_feedback_are_logged_for_monitoring(api, home):
    store = home["store"]
    raw = rows(2, seed=30)
    call(api, "POST", "/api/v1/predict/approval", {"inputs": raw[0]}, headers={"X-Request-Id": "fb-1"})
    fed = call(api, "POST", "/api/v1/feedback", [{"request_id": "fb-1", "actual": "Yes"}])
    assert fed.status == 202 and fed.json() == {"accepted": 1}
    assert (
        call(api, "POST", "/api/v1/feedback", {"feedback": [{"request_id": "x", "actual": 1}]}).status == 202
    )
    for bad in (
        {"actual": 1},
        [],
        {"request_id": "x", "actual": [1]},
        {"request_id": "x" * 200, "actual": 1},
    ):
        assert call(api, "POST", "/api/v1/feedback", bad).status in (400, 422)
    api.service.flush()
    record = store.monitoring.predictions("approval").set_index("request_id").loc["fb-1"]
    assert record["variant"] == "champion" and record["version"] == "1.0.0" and record["latency_ms"] > 0
    assert set(record["outputs"]["probabilities"]) == {"No", "Yes"}
    labelled = store.monitoring.labelled("approval")
    assert labelled.set_index("request_id").loc["fb-1", "actual"] == "Yes"
    assert api.service.health()["predictions"] >= 1


# --------------------------------------------------------------------------- management
def test_metrics_importance_and_explanations(api):
    metrics = call(api, "GET", "/api/v1/models/approval/metrics").json()
    assert metrics["ref"] == "approval@1.0.0" and metrics["task"] == "binary"
    first = call(api, "GET", "/api/v1/models/approval/importance").json()
    again = call(api, "GET", "/api/v1/models/approval/importance").json()
    assert first["cached"] is False and again["cached"] is True and again["importance"] == first["importance"]
    assert {r["column"] for r in first["importance"]} >= {"state", "term"}
    raw = rows(2, seed=40)
    explained = call(api, "POST", "/api/v1/models/approval/explain", {"inputs": raw}).json()
    assert explained["method"] == "tree" and len(explained["explanations"]) == 2
    one = explained["explanations"][0]
    assert one["base_value"] + sum(one["contributions"].values()) == pytest.approx(one["output"], abs=1e-6)
    too_many = call(api, "POST", "/api/v1/models/approval/explain", {"inputs": rows(101)})
    assert too_many.status == 422


def test_compare_versions_on_a_labelled_file_inside_the_data_folder(api, home):
    compared = call(
        api,
        "POST",
        "/api/v1/models/compare",
        {"models": ["loans@1.0.0", "loans@1.1.0"], "data": "loans_test.csv"},
    )
    body = compared.json()
    assert (
        compared.status == 200
        and body["tests"][0]["method"] == "paired_bootstrap"
        and body["data_rows"] == 80
    )
    folds = call(api, "POST", "/api/v1/models/compare", {"models": ["loans@1.0.0", "loans@1.1.0"]}).json()
    assert folds["tests"][0]["method"] is None  # no shared folds recorded: says to compare on a file
    outside = call(
        api,
        "POST",
        "/api/v1/models/compare",
        {"models": ["loans", "loans@1.0.0"], "data": str(home["root"] / "outside.csv")},
    )
    assert outside.status == 403 and outside.json()["error"]["code"] == "forbidden_path"
    escape = call(
        api, "POST", "/api/v1/models/compare", {"models": ["loans", "loans@1.0.0"], "data": "../outside.csv"}
    )
    assert escape.status == 403
    assert call(api, "POST", "/api/v1/models/compare", {"models": ["loans"]}).status == 422
    assert (
        call(api, "POST", "/api/v1/models/compare", {"models": ["loans", "x"], "data": "nope.csv"}).status
        == 422
    )


def test_training_from_an_allowed_path_or_an_upload_runs_as_a_job(api, home):
    outside = call(
        api, "POST", "/api/v1/models/train", {"data": str(home["root"] / "outside.csv"), "target": "b"}
    )
    assert outside.status == 403
    for bad in (
        {"data": "titanic.csv"},
        {"data": "titanic.csv", "target": "survived", "task": "magic"},
        {"data": "titanic.csv", "target": "survived", "time_budget": -1},
        {"data": "titanic.csv", "target": "survived", "name": "no spaces please"},
        {"data": "titanic.csv", "target": "survived", "include": ["nonsense"]},
        {"data": "titanic.csv", "target": "survived", "colour": "blue"},
    ):
        assert call(api, "POST", "/api/v1/models/train", bad).status == 422, bad
    started = call(
        api,
        "POST",
        "/api/v1/models/train",
        {
            "data": "titanic.csv",
            "target": "survived",
            "time_budget": 3,
            "name": "titanic",
            "include": ["linear"],
            "cv": 3,
        },
    )
    assert started.status == 202 and started.headers["Location"] == started.json()["status_url"]
    upload = call(
        api,
        "POST",
        "/api/v1/models/train?target=survived&time_budget=3&name=titanic-upload&include=linear",
        dataset_path("titanic", "train").read_bytes(),
        ctype="text/csv",
    )
    assert upload.status == 202
    for job_id in (started.json()["job_id"], upload.json()["job_id"]):
        deadline = time.monotonic() + 180
        while True:
            job = call(api, "GET", f"/api/v1/models/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert job["status"] == "succeeded", job["error"]
    assert job["result"]["ref"] == "titanic-upload@1.0.0" and job["progress"] is not None
    answer = call(
        api,
        "POST",
        "/api/v1/predict/titanic",
        {"inputs": {"pclass": "1st", "sex": "female", "age": 30, "sibsp": 0, "parch": 0}},
    )
    assert answer.status == 200 and set(answer.json()["probabilities"][0]) == {"died", "survived"}
    assert call(api, "POST", "/api/v1/models/train", b"<xml/>", ctype="application/xml").status == 415


def test_deleting_versions_and_models(api, home):
    store = home["store"]
    register(store, "scratch", store.registry.load("loans@1.0.0"), "regression")
    register(store, "scratch", store.registry.load("loans@1.1.0"), "regression")
    store.registry.deploy("scratch", "scratch@1.0.0")
    refused = call(api, "DELETE", "/api/v1/models/scratch@1.0.0")
    assert refused.status == 409 and "deploy" in refused.json()["error"]["message"]
    assert call(api, "DELETE", "/api/v1/models/scratch@1.1.0").json() == {"deleted": ["scratch@1.1.0"]}
    store.registry.undeploy("scratch")
    assert call(api, "DELETE", "/api/v1/models/scratch").json() == {"deleted": ["scratch@1.0.0"]}
    assert call(api, "POST", "/api/v1/predict/scratch", {"inputs": {}}).status == 404


def test_batch_answers_are_strict_json_whatever_the_numbers_and_class_names():
    from types import SimpleNamespace

    from automl_core.serving.api import _encode_rows
    from automl_core.serving.core import Route, RowsResult

    route = Route("m", "m", SimpleNamespace(ref="m@1.0.0"))
    values = RowsResult(route, "r", np.array([1.5, np.nan]), None, None)
    assert json.loads(b"".join(_encode_rows("m", values)))["predictions"] == [1.5, None]
    names = ["a", 'b%s"\\']
    odd = RowsResult(
        route, "r", np.array(["a", "b"], dtype=object), np.array([[0.25, 0.75], [np.nan, 1.0]]), names
    )
    body = json.loads(b"".join(_encode_rows("m", odd)))
    assert body["probabilities"] == [{"a": 0.25, names[1]: 0.75}, {"a": None, names[1]: 1.0}]
    fine = RowsResult(route, "r", np.array(["a"], dtype=object), np.array([[0.25, 0.75]]), names)
    assert json.loads(b"".join(_encode_rows("m", fine)))["probabilities"] == [{"a": 0.25, names[1]: 0.75}]


# --------------------------------------------------------------------------- CSV bodies read like the app reads files
def _with_empty_row(csv: bytes, at: int) -> bytes:
    """The CSV with an all-empty row (`,,,`) before data row `at`, and a blank line after it."""
    lines = csv.decode().splitlines()
    empty = "," * (len(pd.read_csv(io.BytesIO(csv), nrows=0).columns) - 1)
    return ("\n".join([*lines[: at + 1], empty, "", *lines[at + 1 :]]) + "\n").encode()


def test_a_csv_with_an_empty_row_in_the_middle_gets_one_aligned_answer_per_row(api, home):
    csv = _with_empty_row(messy_csv(30, seed=50), at=12)
    answer = call(api, "POST", "/api/v1/predict/approval/batch", csv, ctype="text/csv")
    out = pd.read_csv(io.BytesIO(answer.data()))
    frame = read_table(
        csv, drop_empty_rows=False
    )  # what the app reads: the empty row kept, the blank line not
    assert answer.status == 200 and answer.headers["X-Rows"] == "31" and len(out) == len(frame) == 31
    assert frame.iloc[12].isna().all()
    want = home["store"].registry.load("approval").predict_proba(frame)
    np.testing.assert_allclose(
        out["proba_Yes"], want[:, 1], rtol=1e-9
    )  # row i answers row i, after the gap too
    plain = pd.read_csv(
        io.BytesIO(
            call(
                api, "POST", "/api/v1/predict/approval/batch", messy_csv(30, seed=50), ctype="text/csv"
            ).data()
        )
    )
    np.testing.assert_allclose(out.drop(index=12)["proba_Yes"], plain["proba_Yes"], rtol=1e-12)


@pytest.mark.parametrize(
    ("delimiter", "encoding"), [(";", "latin-1"), ("\t", "utf-16"), ("|", "utf-8-sig"), (",", "latin-1")]
)
def test_a_csv_in_another_dialect_or_encoding_is_accepted_like_the_app_accepts_it(api, delimiter, encoding):
    frame = pd.read_csv(io.BytesIO(messy_csv(25, seed=51)), dtype=str, keep_default_na=False)
    frame["remarque"] = [f"José à Genève; prêt n°{i}" for i in range(len(frame))]  # an ignored column
    body = frame.to_csv(index=False, sep=delimiter).encode(encoding)
    read_table(body, name="rows.csv")  # the app accepts this file
    answer = call(api, "POST", "/api/v1/predict/approval/batch", body, ctype="text/csv")
    assert answer.status == 200, answer.data()[:300]
    assert "remarque" in answer.headers["X-Warnings"]  # the header line was split where the app splits it
    out = pd.read_csv(io.BytesIO(answer.data()))
    plain = call(
        api, "POST", "/api/v1/predict/approval/batch", frame.to_csv(index=False).encode(), ctype="text/csv"
    )
    pd.testing.assert_frame_equal(out, pd.read_csv(io.BytesIO(plain.data())))


def test_the_dialect_is_found_without_the_sniffer_only_when_the_header_settles_it():
    from automl_core.serving.csvbody import detect_dialect

    columns = ["age", "city"]
    assert detect_dialect(io.BytesIO(b"age,city,x\n3,Lyon,1\n"), columns).sniffed_by == "header"
    semicolon = detect_dialect(io.BytesIO("age;city\n3;Zürich\n4;Genève\n".encode("latin-1")), columns)
    assert (semicolon.delimiter, semicolon.encoding, semicolon.sniffed_by) == (";", "latin-1", "duckdb")
    escaped = detect_dialect(io.BytesIO(b'age,city\n3,"a \\" b"\n4,"c"\n'), columns)
    assert escaped.sniffed_by == "duckdb" and escaped.escapechar == "\\"


def test_a_csv_body_that_is_not_text_is_a_400_naming_why(api):
    answer = call(api, "POST", "/api/v1/predict/approval/batch", b"a,b\n\x00\x01\x02,3\n", ctype="text/csv")
    assert answer.status == 400 and "not a text file" in answer.json()["error"]["message"]


# --------------------------------------------------------------------------- deployments for the documented call
def test_the_deployment_applies_to_its_champion_reference_and_a_version_number_pins(home):
    store = home["store"]
    store.registry.deploy("loans", "loans@production", "loans@1.1.0", mode="ab", challenger_weight=1.0)
    api = Api(store, service=PredictionService(store, seed=0, log_predictions=False))
    try:
        for ref in ("loans", "loans@production"):  # the dashboard and the README call NAME@production
            body = call(api, "POST", f"/api/v1/predict/{ref}", {"inputs": rows(1)[0]}).json()
            assert (body["version"], body["variant"]) == ("loans@1.1.0", "challenger"), ref
        pinned = call(api, "POST", "/api/v1/predict/loans@1.0.0", {"inputs": rows(1)[0]}).json()
        assert pinned["version"] == "loans@1.0.0" and "variant" not in pinned
        store.registry.deploy("loans", "loans@1.0.0", "loans@1.1.0", mode="ab", challenger_weight=1.0)
        other = api.service.route("loans@production")  # an alias that is not the champion's reference pins
        assert other.version.ref == "loans@1.0.0" and other.variant is None
        assert api.service.route("loans").variant == "challenger"
    finally:
        store.registry.undeploy("loans")
        api.close()


def test_shadow_mode_sends_every_request_to_the_challenger_whatever_its_weight(home):
    store = home["store"]
    store.registry.deploy("loans", "loans@production", "loans@1.1.0", mode="shadow", challenger_weight=0.0)
    service = PredictionService(store, seed=0)
    api = Api(store, service=service)
    try:
        raw = rows(3, seed=52)
        champion = expected(store, "loans@1.0.0", 3, seed=52)
        for i in range(3):
            body = call(
                api,
                "POST",
                "/api/v1/predict/loans@production",
                {"inputs": raw[i]},
                headers={"X-Request-Id": f"every-{i}"},
            ).json()
            assert body["version"] == "loans@1.0.0" and body["variant"] == "champion"
            assert body["predictions"][0] == pytest.approx(champion[i], rel=1e-12)
        csv = pd.DataFrame(raw).to_csv(index=False).encode()
        answer = call(
            api,
            "POST",
            "/api/v1/predict/loans/batch",
            csv,
            ctype="text/csv",
            headers={"X-Request-Id": "every-csv"},
        )
        np.testing.assert_allclose(pd.read_csv(io.BytesIO(answer.data()))["prediction"], champion, rtol=1e-12)
        service.flush()
        logs = store.monitoring.predictions("loans")
        shadowed = set(logs.loc[logs["variant"] == "shadow", "request_id"])
        assert {"every-0", "every-1", "every-2", "every-csv-0", "every-csv-2"} <= shadowed
    finally:
        store.registry.undeploy("loans")
        api.close()


# --------------------------------------------------------------------------- the browser guard
def test_a_body_must_declare_its_type(api):
    payload = json.dumps({"inputs": rows(1)[0]}).encode()
    for target in (
        "/api/v1/predict/loans",
        "/api/v1/predict/loans/batch",
        "/api/v1/feedback",
        "/api/v1/models/compare",
        "/api/v1/models/train",
        "/api/v1/models/loans/explain",
    ):
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded"):
            headers = {} if ctype is None else {"Content-Type": ctype}
            answer = api.handle(Request("POST", target, headers, Body.of(payload)))
            assert answer.status == 415 and answer.json()["error"]["code"] == "unsupported_media_type", (
                target,
                ctype,
            )
    missing = api.handle(Request("POST", "/api/v1/predict/loans", {}, Body.of(payload)))
    assert "no Content-Type" in missing.json()["error"]["message"]


def test_a_loopback_server_refuses_other_origins_and_rebound_host_names(home):
    guarded = Api(
        home["store"], loopback_only=True, service=PredictionService(home["store"], log_predictions=False)
    )
    payload = json.dumps({"inputs": rows(1)[0]}).encode()

    def post(**headers):
        sent = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
        return guarded.handle(Request("POST", "/api/v1/predict/loans", sent, Body.of(payload)))

    try:
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.2", "app.localhost:80"):
            assert post(Host=host).status == 200, host  # curl sends Host and no Origin
        assert post().status == 200  # no Host at all (HTTP/1.0): not a browser
        rebound = post(Host="evil.example:8000", Origin="http://evil.example:8000")
        assert rebound.status == 403 and rebound.json()["error"]["code"] == "forbidden_host"
        assert "evil.example" in rebound.json()["error"]["message"]
        for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000"):
            refused = post(Host="127.0.0.1:8000", Origin=origin)
            assert refused.status == 403 and refused.json()["error"]["code"] == "forbidden_origin", origin
        assert (
            post(Host="127.0.0.1:8000", Origin="http://127.0.0.1:8000").status == 200
        )  # the playground page
        options = guarded.handle(
            Request(
                "OPTIONS",
                "/api/v1/predict/loans",
                {"Host": "127.0.0.1:8000", "Origin": "http://evil.example"},
            )
        )
        assert options.status == 403  # a CORS preflight from another site is refused too
        open_api = Api(home["store"], service=guarded.service)  # bound to all addresses: no Host rule
        assert (
            open_api.handle(Request("GET", "/api/v1/health", {"Host": "models.internal:8000"})).status == 200
        )
        assert (
            open_api.handle(
                Request(
                    "GET", "/api/v1/health", {"Host": "models.internal:8000", "Origin": "http://evil.example"}
                )
            ).status
            == 403
        )
    finally:
        guarded.close()


# --------------------------------------------------------------------------- management
def test_importance_is_the_workbench_s_one_definition(home, monkeypatch):
    import automl_core.report

    store = home["store"]
    reg = messy_frame(300, seed=0).drop(columns=["approved", "grade"])
    register(
        store,
        "importance-probe",
        fit_pipeline(reg.iloc[:250], "rate", "linear", task="regression"),
        "regression",
        data=messy_csv(300, seed=0),
        target="rate",
    )
    calls = []
    real = automl_core.report.ensure_importance

    def spy(store_, ref, **kwargs):
        calls.append(ref)
        return real(store_, ref, **kwargs)

    monkeypatch.setattr(automl_core.report, "ensure_importance", spy)
    api = Api(store, service=PredictionService(store, log_predictions=False))
    try:
        first = call(api, "GET", "/api/v1/models/importance-probe/importance").json()
        assert calls == ["importance-probe@1.0.0"] and first["cached"] is False
        assert store.registry.get_document("importance-probe@1.0.0", "importance") == first["importance"]
        assert call(api, "GET", "/api/v1/models/importance-probe/importance").json()["cached"] is True
    finally:
        api.close()
        store.registry.delete_model("importance-probe")


def test_explainers_are_kept_for_the_last_few_models_only(home, monkeypatch):
    from automl_core.serving import management

    monkeypatch.setattr(management, "MAX_EXPLAINERS", 1)
    api = Api(home["store"], service=PredictionService(home["store"], log_predictions=False))
    try:
        for ref in ("approval", "loans@1.0.0", "approval"):
            assert call(api, "POST", f"/api/v1/models/{ref}/explain", {"inputs": rows(1)}).status == 200
            assert len(api.management._explainers) == 1
    finally:
        api.close()


def test_a_damaged_model_file_is_a_500_whose_body_names_no_path(home, caplog):
    store = home["store"]
    reg = messy_frame(300, seed=0).drop(columns=["approved", "grade"])
    version = register(
        store, "fragile", fit_pipeline(reg.iloc[:200], "rate", "lightgbm", task="regression"), "regression"
    )
    path = store.artifacts.path_of(version.artifact.file)
    intact = path.read_bytes()
    api = Api(store, service=PredictionService(store, log_predictions=False))
    try:
        path.write_bytes(intact[:-10] + b"x" * 10)
        with caplog.at_level("ERROR", logger="automl_core.serving.core"):
            answer = call(api, "POST", "/api/v1/predict/fragile", {"inputs": rows(1)[0]})
        error = answer.json()["error"]
        assert answer.status == 500 and error["code"] == "artifact_integrity"
        assert str(store.root) not in answer.data().decode() and str(path.name) not in answer.data().decode()
        assert error["details"]["error_id"] in caplog.text and str(path.parent) in caplog.text
    finally:
        path.write_bytes(intact)
        api.close()
        store.registry.delete_model("fragile")


def test_a_busy_store_is_a_503_whose_body_names_no_path():
    from automl_core.serving.management import store_errors
    from store import StoreBusy

    error = store_errors(StoreBusy("database /home/someone/.automl/automl.duckdb stayed locked"))
    assert error.status == 503 and "/home/someone" not in error.message and error.details["error_id"]


def test_closing_the_api_stops_the_training_jobs_it_started(home):
    api = Api(home["store"], data_dirs=[home["data_dir"]], job_workers=1)
    started = call(
        api,
        "POST",
        "/api/v1/models/train",
        {"data": "titanic.csv", "target": "survived", "time_budget": 600, "name": "long-run"},
    )
    job_id = started.json()["job_id"]
    deadline = time.monotonic() + 60
    while home["store"].jobs.get(job_id).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
    begun = time.monotonic()
    api.close()
    while home["store"].jobs.get(job_id).status in ("queued", "running") and time.monotonic() < deadline + 60:
        time.sleep(0.2)
    job = home["store"].jobs.get(job_id)
    assert job.status == "cancelled" and time.monotonic() - begun < 60, (job.status, job.error)
