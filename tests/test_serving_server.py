"""The real server as a subprocess on a free port: every endpoint and error over HTTP, token auth, alias
hot-switch, A/B split and stickiness, shadow mode, concurrent clients, a 100,000-row CSV, and a flood of
malformed requests after which it still answers correctly."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from automl_core.intake import read_table
from automl_core.serving.core import sticky_share
from tests.conftest import ROOT, dataset_path
from tests.test_serving_support import (
    exploding_pipeline,
    fit_pipeline,
    messy_csv,
    messy_frame,
    raw_rows,
    register,
    titanic_frame,
)

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY_MB = 40


class Client:
    """A keep-alive HTTP client for one server."""

    def __init__(self, port: int, token: str | None = TOKEN):
        self.port = port
        self.token = token
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body=None, headers=None, *, ctype="application/json"):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        sent = {
            "Content-Type": ctype,
            **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            **(headers or {}),
        }
        self.connection.request(method, path, data, sent)
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def json(self, method: str, path: str, body=None, headers=None, **kw):
        status, hdrs, payload = self.request(method, path, body, headers, **kw)
        return status, json.loads(payload) if payload else None

    def close(self):
        self.connection.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from store import Store

    root = tmp_path_factory.mktemp("serving-server")
    store = Store(root / "home")
    frame = messy_frame(300, seed=0)
    reg = frame.drop(columns=["approved", "grade"])
    loans_lgbm = fit_pipeline(reg, "rate", "lightgbm", task="regression")
    register(
        store,
        "loans",
        loans_lgbm,
        "regression",
        data=messy_csv(300, seed=0),
        target="rate",
        aliases=("production",),
    )
    register(store, "loans", fit_pipeline(reg, "rate", "linear", task="regression"), "regression")
    titanic = titanic_frame()
    register(
        store,
        "titanic",
        fit_pipeline(titanic, "survived", "lightgbm", task="binary"),
        "binary",
        data=dataset_path("titanic", "train").read_bytes(),
        target="survived",
    )
    register(store, "broken", exploding_pipeline(loans_lgbm), "regression")
    data_dir = root / "data"
    data_dir.mkdir()
    (data_dir / "titanic.csv").write_bytes(dataset_path("titanic", "train").read_bytes())
    (data_dir / "loans_test.csv").write_bytes(messy_csv(60, seed=9))
    return {"store": store, "root": root, "data_dir": data_dir}


def spawn_server(home, *args: str, stderr) -> subprocess.Popen:
    """`automl serve` on a free port over the module's home, one job worker, no warm-up."""
    env = {
        **os.environ,
        "AUTOML_HOME": str(home["store"].root),
        "AUTOML_JOB_WORKERS": "1",
        "AUTOML_N_JOBS": "1",
    }
    env.pop("AUTOML_API_TOKEN", None)
    command = [sys.executable, "-m", "automl_core.serving.cli", "--port", "0", "--no-warm"]
    command += ["--data-dir", str(home["data_dir"]), *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


@pytest.fixture(scope="module")
def server(home):
    start = time.monotonic()
    process = spawn_server(home, "--token", TOKEN, "--max-body-mb", str(MAX_BODY_MB), stderr=subprocess.PIPE)
    line = process.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", line)
    assert found, (
        f"server did not start: {line!r} {process.stderr.read() if process.poll() is not None else ''}"
    )
    port = int(found.group(1))
    client = Client(port)
    while client.request("GET", "/api/v1/health")[0] != 200:  # pragma: no cover - it answers at once
        time.sleep(0.05)
    started = time.monotonic() - start
    stderr_lines: list[str] = []
    drain = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
    drain.start()
    yield {"port": port, "process": process, "started": started, "stderr": stderr_lines}
    client.close()
    process.terminate()
    assert process.wait(timeout=30) == 0
    drain.join(timeout=5)
    log = "".join(stderr_lines)
    # the one traceback in the log is the exploding model's, logged with its error id
    assert log.count("Traceback") == log.count("RuntimeError: this model always fails"), log[-3000:]


@pytest.fixture(scope="module")
def thread_server(home):
    """The same server in a thread of the test process (what `automl serve` runs, minus the process)."""
    from automl_core.serving.server import make_server, serve

    server = make_server(
        home["store"],
        port=0,
        token=TOKEN,
        data_dirs=[home["data_dir"]],
        max_body_bytes=MAX_BODY_MB * 2**20,
        access_log=True,
    )
    thread = threading.Thread(target=serve, args=(server,), kwargs={"warm": True}, daemon=True)
    thread.start()
    yield {"port": server.server_address[1], "server": server}
    server.shutdown()
    thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.fixture(params=["subprocess", "thread"])
def any_server(request):
    return request.getfixturevalue("server" if request.param == "subprocess" else "thread_server")


@pytest.fixture()
def client(server):
    client = Client(server["port"])
    yield client
    client.close()


def rows(n: int, seed: int = 11) -> list[dict]:
    return raw_rows(messy_csv(n, seed=seed))


def expected(store, ref, n: int, seed: int = 11):
    return store.registry.load(ref).predict(read_table(messy_csv(n, seed=seed)))


# --------------------------------------------------------------------------- start-up
def test_the_server_starts_fast_without_loading_machine_learning_libraries(server):
    assert server["started"] < 15.0, f"first answer after {server['started']:.2f} s"
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, automl_core.serving.server, automl_core.serving.cli, store; "
            "print(sorted(m for m in ('pandas', 'sklearn', 'numpy', 'lightgbm', 'scipy', 'joblib') if m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


# --------------------------------------------------------------------------- every endpoint
def test_predictions_over_http_match_the_pipeline(client, home):
    raw = rows(5)
    status, body = client.json("POST", "/api/v1/predict/loans@production", {"inputs": raw[0]})
    assert status == 200 and body["version"] == "loans@1.0.0" and body["warnings"][-1].endswith("ignored")
    assert body["predictions"][0] == expected(home["store"], "loans@1.0.0", 5)[0]  # exact, through JSON
    status, body = client.json("POST", "/api/v1/predict/loans@production/batch", {"dataframe_records": raw})
    assert status == 200 and body["rows"] == 5
    np.testing.assert_allclose(body["predictions"], expected(home["store"], "loans@1.0.0", 5), rtol=1e-12)


def test_a_100000_row_csv_streams_back_in_bounded_memory(client, server):
    test = pd.read_csv(dataset_path("titanic", "test"), dtype=str, keep_default_na=False)
    big = pd.concat([test] * (100_000 // len(test) + 1), ignore_index=True).iloc[:100_000]
    csv = big.to_csv(index=False).encode()
    before = _memory(server["process"].pid)
    status, headers, payload = client.request("POST", "/api/v1/predict/titanic/batch", csv, ctype="text/csv")
    assert status == 200 and headers["transfer-encoding"] == "chunked" and headers["x-rows"] == "100000"
    out = pd.read_csv(io.BytesIO(payload))
    assert len(out) == 100_000 and list(out.columns) == ["prediction", "proba_died", "proba_survived"]
    first = out.iloc[: len(test)]
    pd.testing.assert_frame_equal(out.iloc[len(test) : 2 * len(test)].reset_index(drop=True), first)
    grown = _memory(server["process"].pid)["VmHWM"] - before["VmRSS"]
    assert grown < 300 * 1024, f"peak memory grew by {grown / 1024:.0f} MB for 100,000 rows"


def _memory(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as handle:
        return {
            k: int(v.split()[0])
            for k, v in (line.split(":", 1) for line in handle)
            if k in ("VmRSS", "VmHWM")
        }


def test_models_metrics_importance_explain_playground_and_feedback(client, home):
    status, listed = client.json("GET", "/api/v1/models")
    assert status == 200 and {m["name"] for m in listed["models"]} >= {"loans", "titanic"}
    status, details = client.json("GET", "/api/v1/models/titanic")
    assert status == 200 and details["serving"]["fast_path"] and details["lineage"]["target"] == "survived"
    assert client.json("GET", "/api/v1/models/titanic/metrics")[0] == 200
    status, importance = client.json("GET", "/api/v1/models/titanic/importance")
    assert status == 200 and importance["importance"][0]["column"] in {"sex", "pclass", "age"}
    status, explained = client.json("POST", "/api/v1/models/titanic/explain", details["example"])
    assert status == 200 and set(explained["explanations"][0]["contributions"]) == {
        "pclass",
        "sex",
        "age",
        "sibsp",
        "parch",
    }
    status, headers, page = client.request(
        "GET", f"/api/v1/models/titanic/playground?token={TOKEN}", headers={"Authorization": ""}
    )
    assert status == 200 and headers["content-type"].startswith("text/html") and b'name="sex"' in page
    status, answer = client.json(
        "POST", "/api/v1/predict/titanic", details["example"], {"X-Request-Id": "srv-fb-1"}
    )
    assert status == 200 and answer["request_id"] == "srv-fb-1"
    assert client.json("POST", "/api/v1/feedback", {"request_id": "srv-fb-1", "actual": "died"}) == (
        202,
        {"accepted": 1},
    )
    status, spec = client.json("GET", "/api/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")


def test_compare_train_jobs_and_delete(client, home):
    status, compared = client.json(
        "POST", "/api/v1/models/compare", {"models": ["loans@1.0.0", "loans@1.1.0"], "data": "loans_test.csv"}
    )
    assert status == 200 and compared["tests"][0]["method"] == "paired_bootstrap"
    assert (
        client.json(
            "POST", "/api/v1/models/compare", {"models": ["loans", "loans@1.0.0"], "data": "/etc/passwd"}
        )[0]
        == 403
    )
    status, started = client.json(
        "POST",
        "/api/v1/models/train",
        {
            "data": "titanic.csv",
            "target": "survived",
            "time_budget": 3,
            "include": ["linear"],
            "cv": 3,
            "name": "titanic-api",
        },
    )
    assert status == 202
    upload = dataset_path("titanic", "train").read_bytes()
    status, headers, _ = client.request(
        "POST",
        "/api/v1/models/train?target=survived&time_budget=3&include=linear&cv=3",
        upload,
        ctype="text/csv",
    )
    assert status == 202 and headers["location"].startswith("/api/v1/models/jobs/")
    deadline = time.monotonic() + 90
    job = {}
    while time.monotonic() < deadline:
        job = client.json("GET", started["status_url"])[1]
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    assert (
        client.json(
            "POST",
            "/api/v1/predict/titanic-api",
            {"inputs": {"pclass": "2nd", "sex": "male", "age": 40, "sibsp": 0, "parch": 0}},
        )[0]
        == 200
    )
    assert client.json("DELETE", "/api/v1/models/titanic-api") == (200, {"deleted": ["titanic-api@1.0.0"]})
    assert client.json("POST", "/api/v1/predict/titanic-api", {"inputs": {}})[0] == 404


# --------------------------------------------------------------------------- every error
def test_every_error_over_http(client, server):
    def error(*args, **kw):
        status, body = client.json(*args, **kw)
        assert set(body["error"]) == {"code", "message", "details"}
        return status, body["error"]

    assert error("POST", "/api/v1/predict/titanic", b"{not json")[0] == 400
    assert error("POST", "/api/v1/predict/nobody", {"inputs": {}})[0] == 404
    assert error("GET", "/api/v1/no/such/route")[0] == 404
    status, headers, _ = client.request("DELETE", "/api/v1/predict/titanic")
    assert status == 405 and headers["allow"] == "OPTIONS, POST"
    assert (
        error("POST", "/api/v1/predict/titanic", b"a=1", ctype="application/x-www-form-urlencoded")[0] == 415
    )
    status, problem = error(
        "POST",
        "/api/v1/predict/titanic",
        {"inputs": {"pclass": "1st", "sex": "f", "age": "old", "sibsp": 0, "parch": 0}},
    )
    assert (
        status == 422 and problem["details"][0]["column"] == "age" and problem["details"][0]["value"] == "old"
    )
    status, problem = error("POST", "/api/v1/predict/titanic", {"inputs": {"pclass": "1st"}})
    assert status == 422 and {d["column"] for d in problem["details"]} == {"sex", "age", "sibsp", "parch"}
    status, problem = error("POST", "/api/v1/predict/broken", {"inputs": rows(1)[0]})
    assert status == 500 and problem["details"]["error_id"] and "always fails" not in json.dumps(problem)
    assert client.json("GET", "/api/v1/health")[0] == 200


def test_a_body_over_the_limit_is_refused_before_it_is_sent(any_server):
    server = any_server
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/predict/titanic/batch HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {MAX_BODY_MB * 2**20 + 1}\r\n\r\n".encode()
        )
        answer = _read_all(sock)
    assert (
        answer.startswith(b"HTTP/1.1 413")
        and b"Connection: close" in answer
        and b"payload_too_large" in answer
    )


def _read_all(sock) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_the_token_is_required_everywhere_but_health(any_server):
    server = any_server
    anonymous = Client(server["port"], token=None)
    wrong = Client(server["port"], token="nope")
    try:
        assert anonymous.request("GET", "/api/v1/health")[0] == 200
        for who in (anonymous, wrong):
            status, headers, body = who.request("POST", "/api/v1/predict/titanic", {"inputs": {}})
            assert status == 401 and "bearer" in headers["www-authenticate"].lower()
            assert json.loads(body)["error"]["code"] == "unauthorized"
            assert who.request("GET", "/api/v1/models")[0] == 401
    finally:
        anonymous.close()
        wrong.close()


def test_web_pages_of_other_sites_cannot_call_the_local_server(any_server):
    port = any_server["port"]
    raw = {"inputs": {"pclass": "3rd", "sex": "male", "age": 22, "sibsp": 1, "parch": 0}}
    client = Client(port)
    try:
        assert client.request("POST", "/api/v1/predict/titanic", raw)[0] == 200  # like curl: no Origin
        assert client.request("POST", "/api/v1/predict/titanic", raw, {"Host": f"localhost:{port}"})[0] == 200
        status, _, body = client.request(
            "POST", "/api/v1/predict/titanic", raw, {"Host": f"rebound.example:{port}"}
        )
        assert status == 403 and json.loads(body)["error"]["code"] == "forbidden_host"
        status, _, body = client.request(
            "POST", "/api/v1/predict/titanic", raw, {"Origin": "http://attacker.example"}
        )
        assert status == 403 and json.loads(body)["error"]["code"] == "forbidden_origin"
        own = {"Origin": f"http://127.0.0.1:{port}"}  # what the playground page's fetch sends
        assert client.request("POST", "/api/v1/predict/titanic", raw, own)[0] == 200
        status, _, body = client.request("POST", "/api/v1/predict/titanic", raw, ctype="text/plain")
        assert status == 415 and json.loads(body)["error"]["code"] == "unsupported_media_type"
    finally:
        client.close()


def test_a_semicolon_latin1_csv_is_predicted_over_http(client, home):
    test = pd.read_csv(dataset_path("titanic", "test"), dtype=str, keep_default_na=False).iloc[:50]
    test.loc[10, :] = ""  # a row with no input values, in the middle, keeps its place
    test["passager"] = "Zoë Müller"
    body = test.to_csv(index=False, sep=";").encode("latin-1")
    status, headers, payload = client.request("POST", "/api/v1/predict/titanic/batch", body, ctype="text/csv")
    assert status == 200 and headers["x-rows"] == "50", payload[:300]
    out = pd.read_csv(io.BytesIO(payload))
    want = (
        home["store"]
        .registry.load("titanic")
        .predict_proba(read_table(body, name="rows.csv", drop_empty_rows=False))
    )
    np.testing.assert_allclose(out["proba_survived"], want[:, 1], rtol=1e-9)


def test_stopping_the_server_cancels_the_training_job_it_runs(home):
    process = spawn_server(home, stderr=subprocess.DEVNULL)
    try:
        port = int(re.search(r":(\d+)/api/v1", process.stdout.readline()).group(1))
        client = Client(port, token=None)
        settings = {"data": "titanic.csv", "target": "survived", "time_budget": 600, "name": "never-finished"}
        status, started = client.json("POST", "/api/v1/models/train", settings)
        assert status == 202
        deadline = time.monotonic() + 60
        while (
            client.json("GET", started["status_url"])[1]["status"] == "queued" and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        client.close()
        stopped = time.monotonic()
        process.terminate()
        assert process.wait(timeout=60) == 0
        assert time.monotonic() - stopped < 30, "the server waited for the training job to use its budget"
    finally:
        if process.poll() is None:
            process.kill()
    job = home["store"].jobs.get(started["job_id"])
    assert job.status == "cancelled", (job.status, job.error)


# --------------------------------------------------------------------------- deployments
def test_promoting_a_version_switches_the_alias_while_the_server_runs(client, home):
    raw = rows(1)[0]
    assert (
        client.json("POST", "/api/v1/predict/loans@production", {"inputs": raw})[1]["version"]
        == "loans@1.0.0"
    )
    home["store"].registry.set_alias("loans@1.1.0", "production")
    try:
        assert (
            client.json("POST", "/api/v1/predict/loans@production", {"inputs": raw})[1]["version"]
            == "loans@1.1.0"
        )
    finally:
        home["store"].registry.set_alias("loans@1.0.0", "production")
    assert (
        client.json("POST", "/api/v1/predict/loans@production", {"inputs": raw})[1]["version"]
        == "loans@1.0.0"
    )


def test_an_ab_test_splits_traffic_by_weight_and_sticks_by_request_key(client, home):
    home["store"].registry.deploy(
        "loans", "loans@production", "loans@1.1.0", mode="ab", challenger_weight=0.25
    )
    try:
        raw = rows(1)[0]
        seen = []
        for _ in range(400):
            body = client.json("POST", "/api/v1/predict/loans", {"inputs": raw})[1]
            assert {body["variant"], body["version"]} in (
                {"champion", "loans@1.0.0"},
                {"challenger", "loans@1.1.0"},
            )
            seen.append(body["variant"])
        share = seen.count("challenger") / 400
        assert 0.17 < share < 0.33, share
        for i in range(12):
            key = f"customer-{i}"
            want = "challenger" if sticky_share("loans", key) < 0.25 else "champion"
            by_header = {
                client.json("POST", "/api/v1/predict/loans", {"inputs": raw}, {"X-Request-Key": key})[1][
                    "variant"
                ]
                for _ in range(4)
            }
            by_body = client.json("POST", "/api/v1/predict/loans", {"inputs": raw, "key": key})[1]["variant"]
            assert by_header == {want} and by_body == want
    finally:
        home["store"].registry.undeploy("loans")


def test_shadow_mode_logs_the_challenger_and_returns_the_champion(client, home):
    home["store"].registry.deploy("loans", "loans@1.0.0", "loans@1.1.0", mode="shadow", challenger_weight=1.0)
    try:
        raw = rows(3, seed=5)
        body = client.json(
            "POST", "/api/v1/predict/loans", {"inputs": raw[0]}, {"X-Request-Id": "srv-shadow-1"}
        )[1]
        assert body["version"] == "loans@1.0.0" and body["variant"] == "champion"
        assert body["predictions"][0] == expected(home["store"], "loans@1.0.0", 3, seed=5)[0]
    finally:
        home["store"].registry.undeploy("loans")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        logs = home["store"].monitoring.predictions("loans")
        mine = logs[logs["request_id"] == "srv-shadow-1"]
        if set(mine["variant"]) == {"champion", "shadow"}:
            break
        time.sleep(0.25)
    shadow = mine[mine["variant"] == "shadow"].iloc[0]
    assert shadow["version"] == "1.1.0"
    assert shadow["outputs"]["prediction"] == expected(home["store"], "loans@1.1.0", 3, seed=5)[0]


# --------------------------------------------------------------------------- load and abuse
def test_concurrent_clients_get_their_own_correct_answers(server, home):
    raw = rows(64, seed=17)
    want = expected(home["store"], "loans@1.0.0", 64, seed=17)

    def work(worker: int) -> list[tuple[int, float]]:
        own = Client(server["port"])
        try:
            out = []
            for j in range(30):
                i = (worker * 7 + j) % 64
                status, body = own.json("POST", "/api/v1/predict/loans@1.0.0", {"inputs": raw[i]})
                assert status == 200
                out.append((i, body["predictions"][0]))
            return out
        finally:
            own.close()

    with ThreadPoolExecutor(8) as pool:
        results = [pair for part in pool.map(work, range(8)) for pair in part]
    assert len(results) == 240 and all(value == want[i] for i, value in results)


def test_keep_alive_responses_do_not_stall_on_nagle(any_server):
    client = Client(any_server["port"])
    example = client.json("GET", "/api/v1/models/titanic")[1]["example"]
    times = []
    for _ in range(60):
        start = time.perf_counter()
        assert client.request("POST", "/api/v1/predict/titanic", example)[0] == 200
        times.append(time.perf_counter() - start)
    client.close()
    # A delayed-ACK stall (~40 ms) hits every request; a busy machine only delays some of them.
    quick = np.percentile(times, 25)
    assert quick < 0.02, f"a quarter of requests took {quick * 1000:.1f} ms or more: delayed-ACK stalls are back"


def test_past_the_connection_limit_a_new_connection_gets_503_at_once(thread_server):
    from automl_core.serving.server import ServingHTTPServer

    small = ServingHTTPServer(("127.0.0.1", 0), thread_server["server"].api, max_connections=1)
    thread = threading.Thread(target=small.serve_forever, daemon=True)
    thread.start()
    try:
        first = Client(small.server_address[1])
        assert first.request("GET", "/api/v1/health")[0] == 200  # holds the only slot (keep-alive)
        with socket.create_connection(small.server_address[:2], timeout=10) as sock:
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After" in answer
        first.close()
    finally:
        small.shutdown()
        small.server_close()


FLOOD = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"\x00\x01\x02\xff" * 64 + b"\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    b"GET /api/v1/health HTTP/1.1\r\n" + b"X-Filler: y\r\n" * 150 + b"\r\n",
    b"GET /api/v1/health HTTP/1.1\r\nX-Big: " + b"z" * 70000 + b"\r\n\r\n",
    b"BREW /api/v1/predict/titanic HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nContent-Length: 100\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b'\r\nContent-Type: application/json\r\n\r\n{"inputs":',
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nContent-Length: 12\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b"\r\nContent-Type: application/json\r\n\r\n[[[[[[[[[[[[",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nContent-Length: 14\r\nAuthorization: Bearer "
    + TOKEN.encode()
    + b'\r\nContent-Type: application/json\r\n\r\n{"inputs": 42}',
    b"GET /../../../etc/passwd HTTP/1.1\r\n\r\n",
    b"GET /api/v1/models/%2e%2e%2f%2e%2e HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n",
    b"POST /api/v1/predict/titanic HTTP/1.1\r\nContent-Length: 10",
    b"",
]


def test_a_flood_of_malformed_requests_leaves_the_server_answering_correctly(any_server, home):
    server = any_server

    def hit(i: int) -> bytes:
        payload = FLOOD[i % len(FLOOD)]
        try:
            with socket.create_connection(("127.0.0.1", server["port"]), timeout=5) as sock:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                return _read_all(sock)
        except OSError:
            return b""

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(hit, range(len(FLOOD) * 12)))
    assert not any(b"Traceback" in a for a in answers)
    statuses = {int(a[9:12]) for a in answers if a.startswith(b"HTTP/1.1 ")}
    assert statuses <= {400, 401, 404, 413, 414, 415, 422, 431, 501, 505}, statuses
    for a in answers:
        if a.startswith(b"HTTP/1.1 4") or a.startswith(b"HTTP/1.1 5"):
            head, rest = a.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            assert json.loads(rest[:length])["error"]["code"]
    fresh = Client(server["port"])
    try:
        raw = rows(3, seed=23)
        status, body = fresh.json("POST", "/api/v1/predict/loans@1.0.0/batch", {"inputs": raw})
        assert (
            status == 200
            and body["predictions"] == expected(home["store"], "loans@1.0.0", 3, seed=23).tolist()
        )
        assert fresh.json("GET", "/api/v1/health")[1]["status"] == "ok"
    finally:
        fresh.close()


def test_a_chunked_request_body_and_head_and_options(any_server):
    server = any_server
    example = {"inputs": {"pclass": "3rd", "sex": "male", "age": 22, "sibsp": 1, "parch": 0}}
    body = json.dumps(example).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/predict/titanic HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\r\n".encode()
            + chunked
        )
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200") and b'"predictions":["died"]' in answer
    client = Client(server["port"])
    try:
        status, headers, payload = client.request("HEAD", "/api/v1/health")
        assert status == 200 and payload == b"" and int(headers["content-length"]) > 0
        status, headers, _ = client.request("OPTIONS", "/api/v1/predict/titanic/batch")
        assert status == 204 and headers["allow"] == "OPTIONS, POST"
    finally:
        client.close()


# --------------------------------------------------------------------------- the command line
def test_automl_serve_registers_its_options(monkeypatch):
    import argparse

    from automl_core.serving.cli import add_parser

    parser = argparse.ArgumentParser(prog="automl")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.token, args.data_dir, args.max_body_mb) == (
        "127.0.0.1",
        8000,
        None,
        None,
        100.0,
    )
    args = parser.parse_args(["serve", "--port", "0", "--token", "x", "--data-dir", "a", "--data-dir", "b"])
    assert args.token == "x" and args.data_dir == ["a", "b"] and args.func.__name__ == "cmd_serve"


def test_automl_serve_takes_the_token_from_the_environment_and_refuses_bad_options(monkeypatch, home, capsys):
    from automl_core.serving import cli, server

    started = []
    monkeypatch.setattr(
        server, "serve", lambda srv, warm=True: (started.append((srv, warm)), srv.server_close())
    )
    monkeypatch.setenv("AUTOML_HOME", str(home["store"].root))
    monkeypatch.setenv(cli.TOKEN_ENV_VAR, "from-env")
    assert cli.main(["--port", "0", "--no-warm"]) == 0
    srv, warm = started[0]
    assert srv.api.token == "from-env" and warm is False and srv.server_address[0] == "127.0.0.1"
    assert "token required" in capsys.readouterr().out
    monkeypatch.delenv(cli.TOKEN_ENV_VAR)
    assert cli.main(["--port", "0", "--host", "0.0.0.0"]) == 0
    assert "without a token" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(home["root"] / "missing")]) == 2
    assert cli.main(["--max-body-mb", "0"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert cli.main(["--port", str(taken.getsockname()[1])]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_http10_clients_get_a_plain_stream_and_expect_continue_is_refused_when_too_large(any_server):
    csv = dataset_path("titanic", "test").read_bytes()
    with socket.create_connection(("127.0.0.1", any_server["port"]), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/predict/titanic/batch HTTP/1.0\r\nContent-Type: text/csv\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(csv)}\r\n\r\n".encode()
            + csv
        )
        answer = _read_all(sock)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head and b"Connection: close" in head
    assert len(pd.read_csv(io.BytesIO(body))) == csv.count(b"\n") - 1
    with socket.create_connection(("127.0.0.1", any_server["port"]), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/predict/titanic/batch HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: text/csv\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {MAX_BODY_MB * 2**20 + 5}\r\n\r\n".encode()
        )
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"100 Continue" not in answer
