"""End to end in a real browser: upload, train, wait, compare, predict, register; screenshots for the README.

Starts `streamlit run app.py` on a free port with a temporary AUTOML_HOME and drives Debian's
chromium (never a browser downloaded by Playwright) through one browser session, the way an
analyst clicks. Screenshots of every page go to docs/screenshots/. Without /usr/bin/chromium the
test skips, unless AUTOML_REQUIRE_BROWSER=1 (as in CI), where it fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
TITANIC = ROOT / "tests" / "data" / "titanic.train.csv"
TITANIC_TEST = ROOT / "tests" / "data" / "titanic.test.csv"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRAIN_BUDGET = 6  # seconds

pytestmark = pytest.mark.browser


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("AUTOML_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; AUTOML_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def app_url(tmp_path):
    """The app on a free port with an empty home of its own; stopped by its process group id."""
    port = _free_port()
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "AUTOML_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
            "--server.runOnSave=false",
            "--client.toolbarMode=viewer",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early, see {log.name}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not become healthy in 30 s, see {log.name}")
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture()
def browser_page():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        yield page
        browser.close()


def test_analyst_uploads_trains_compares_and_predicts_in_one_session(request, tmp_path):
    require_chromium()
    from playwright.sync_api import expect

    url = request.getfixturevalue("app_url")
    page = request.getfixturevalue("browser_page")
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = page.get_by_test_id("stApp")

    def settle() -> None:
        expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=60_000)

    def shot(name: str) -> None:
        settle()
        page.wait_for_timeout(700)  # let charts finish drawing
        page.screenshot(path=str(SHOTS / f"{name}.png"))

    def open_page(title: str) -> None:
        page.get_by_test_id("stSidebar").get_by_role("link", name=title, exact=True).click()
        expect(page.get_by_test_id("stHeading").filter(has_text=title).first).to_be_visible()

    def choose(key: str, option: str) -> None:
        page.locator(f".st-key-{key}").get_by_test_id("stSelectbox").click()
        page.get_by_role("option", name=option, exact=True).click()

    # 1. Home: what the tool does, the sample datasets.
    page.goto(url)
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED")
    expect(page.get_by_text("Sample datasets")).to_be_visible()
    shot("home")

    # 2-3. Data: upload a file, read the profile, pick the target, see the detected problem.
    open_page("Data")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(TITANIC))
    expect(page.get_by_text("Loaded 981 rows × 6 columns")).to_be_visible()
    choose("target_pick", "survived")
    expect(page.locator(".st-key-problem")).to_contain_text("binary classification")
    shot("data")

    # 4. Train with a small budget; the job runs in the background with live progress.
    continue_button = page.locator(".st-key-to_train button")
    expect(continue_button).to_be_enabled()
    continue_button.click()
    expect(page.get_by_test_id("stHeading").filter(has_text="Train").first).to_be_visible()
    budget = page.locator(".st-key-budget input")
    budget.fill(str(TRAIN_BUDGET))
    budget.press("Enter")
    expect(budget).to_have_value(str(TRAIN_BUDGET))
    settle()
    page.locator(".st-key-train button").click()
    expect(page.get_by_test_id("stProgress").first).to_be_visible()
    shot("train")

    # The Jobs page follows the job by itself until it is registered.
    open_page("Jobs")
    expect(page.get_by_test_id("stAlertContentSuccess").first).to_contain_text(
        "Registered titanic@1.0.0", timeout=60_000
    )
    shot("jobs")

    # 5. Leaderboard: every model with score, spread, speed and size; a significance test.
    open_page("Leaderboard & compare")
    expect(page.get_by_text(re.compile(r"\d+ models tried for titanic@1\.0\.0"))).to_be_visible()
    expect(page.get_by_text(" vs ").first).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    shot("leaderboard")

    # 6. Model: metrics, charts, caveats, SHAP.
    open_page("Model")
    expect(page.get_by_text("titanic@1.0.0").first).to_be_visible()
    page.get_by_role("tab", name="Importance & SHAP").click()
    expect(page.get_by_text("SHAP summary")).to_be_visible(timeout=60_000)  # model-agnostic SHAP can take a while
    page.get_by_role("tab", name="Charts").click()
    expect(page.get_by_text("Confusion matrix")).to_be_visible()
    shot("model")

    # 7. Playground: the form comes from the schema; changing inputs moves the prediction.
    open_page("Playground")
    prediction = page.locator(".st-key-prediction").get_by_test_id("stMetricValue")
    expect(prediction).to_have_text("died")
    choose("pg_sex", "female")
    expect(page.locator(".st-key-pg_sex").get_by_role("combobox")).to_have_value("female")
    settle()
    choose("pg_pclass", "1st")
    expect(prediction).to_have_text("survived")
    age = page.locator(".st-key-pg_age").get_by_role("slider")
    before = age.get_attribute("aria-valuenow")
    age.focus()
    age.press("ArrowRight")
    expect(age).not_to_have_attribute("aria-valuenow", before)
    expect(page.get_by_text("Starting from the average probability")).to_be_visible()
    shot("playground")

    # Batch predict: a file in, predictions out, scored against its labels.
    open_page("Batch predict")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(TITANIC_TEST))
    expect(page.get_by_text(re.compile(r"Predicted [\d,]+ rows of titanic\.test\.csv"))).to_be_visible()
    shot("batch")

    # 8. Registry: promote the version to production; the page shows how to serve it.
    open_page("Registry & deploy")
    page.locator(".st-key-promote button").click()
    expect(page.get_by_test_id("stAlertContentSuccess").first).to_contain_text("now serves 1.0.0")
    settle()  # a tab clicked while the promotion's rerun is still drawing can snap back to the first tab
    page.get_by_role("tab", name="Serve").click()
    expect(page.get_by_text("Predict one row:")).to_be_visible()
    shot("registry")

    # 11. Monitoring: nothing served yet, and the page says so; then traffic as a server logs it.
    open_page("Monitoring")
    expect(page.get_by_text("No predictions logged for titanic in the last 7 days")).to_be_visible()
    log_traffic(tmp_path / "home", "titanic", TITANIC_TEST)
    page.locator(".st-key-monitor_refresh button").click()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("328")
    expect(page.get_by_text("Accuracy over time")).to_be_visible()
    shot("monitoring")


def log_traffic(home: Path, name: str, data: Path) -> None:
    """Write what a prediction server would log for `data`, one request per row, with the outcomes."""
    import numpy as np

    from automl_core.intake import read_table
    from store import Store

    store = Store(home)
    version = store.registry.get(f"{name}@production")
    frame = read_table(data)
    target = (store.registry.get_document(version.ref, "meta") or {})["target"]
    predictions = store.registry.load(version.ref).predict(frame)
    rng = np.random.default_rng(0)
    start = time.time() - 3 * 3600
    predicted, feedback = store.monitoring.prediction_logger(), store.monitoring.feedback_logger()
    for i, (row, prediction) in enumerate(zip(frame.to_dict(orient="records"), predictions, strict=True)):
        inputs = {
            k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items() if k != target
        }
        ts = start + i * 30
        predicted.log(
            request_id=f"r{i}",
            model=name,
            version=version.version,
            variant="champion",
            inputs=inputs,
            outputs={"prediction": str(prediction)},
            latency_ms=float(rng.gamma(2.0, 1.0)),
            ts=ts,
        )
        feedback.log(request_id=f"r{i}", actual=row[target], ts=ts + 60)
    predicted.close()
    feedback.close()
