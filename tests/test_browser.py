"""A real browser (Debian's chromium, driven by Playwright) against the real app server.

Opens every page (screenshots under results/screenshots/), launches a small run from the UI
and sees it finish, re-runs the significance test, downloads the PDF and reads it back."""
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_evaluate import cli, write_samples

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "results" / "screenshots"
# url path, and how many charts the page shows for this store
PAGES = {"overview": ("", 0), "runs": ("runs", 0), "accuracy": ("accuracy", 1), "significance": ("significance", 0),
         "efficiency": ("efficiency", 1), "training": ("training", 0), "health": ("health", 0),
         "tasks": ("tasks", 0), "report": ("report", 0)}
pytestmark = [pytest.mark.slow,  # make test-fast skips these
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="chromium is installed by `make test` (apt-get, as root)")]


@contextlib.contextmanager
def serve_app(port: int, env: dict, loopback: bool = True):
    """The real app (`streamlit run app.py`) on `port`, bound explicitly to loopback or, hosted, with the
    address unset; yields its URL once its health check answers."""
    address = ["--server.address", "127.0.0.1"] if loopback else []
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", *address, "--server.port", str(port),
                             "--server.headless", "true"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, mbpp_path):
    assert Path(CHROMIUM).exists(), "CI must have chromium: `make test` installs it with apt-get"
    store = tmp_path_factory.mktemp("browser-store")
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "10", "--run-dir", store / "oracle",
        "--no-progress")
    cli("eval", "--samples", write_samples(store.parent / "empty.jsonl", [{"task_id": t, "completion": ""}
                                                                          for t in range(11, 21)]),
        "--data-path", mbpp_path, "--limit", "10", "--run-dir", store / "empty", "--no-progress")
    port = free_port()
    env = {**os.environ, "HRM_GATE_STORE": str(store), "WANDB_MODE": "disabled"}
    with serve_app(port, env, loopback=True) as url:
        yield url, store


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking",
                                                              "--disable-gpu", "--disable-component-update"])
        yield b
        b.close()


def wait_idle(page, charts: int = 0):
    """Until the script run is over, no element is still a loading skeleton and `charts` charts are drawn."""
    page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
    page.wait_for_timeout(300)
    page.wait_for_function("(n) => !document.querySelector('[data-testid=\"stSkeleton\"]') && "
                           "!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]') && "
                           "document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "
                           "[data-testid=\"stVegaLiteChart\"] svg.marks').length >= n", arg=charts, timeout=90_000)
    page.wait_for_timeout(500)


def test_every_page_launch_significance_and_pdf(server, browser, tmp_path, mbpp_path):
    url, store = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    for name, (path, charts) in PAGES.items():
        page.goto(f"{url}/{path}")
        wait_idle(page, charts)
        page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        assert page.locator("[data-testid='stException']").count() == 0, name
        assert page.get_by_role("link", name="Runs").count() >= 1  # st.navigation's menu, not file discovery
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    # launch a small run from the form and see it finish
    page.goto(f"{url}/runs")
    wait_idle(page)
    page.get_by_text("Launch a run").click()
    page.get_by_label("Run name").fill("from-browser")
    page.get_by_label("Model spec (overrides the model above)").fill("oracle")
    page.get_by_role("spinbutton", name="Tasks (eval)").fill("10")  # the same 10 tasks as the stored runs: comparable
    deadline = time.monotonic() + 120
    for _ in range(3):  # on a loaded machine a click can land while the page is still rerunning
        page.get_by_role("button", name="Launch").click()
        clicked = time.monotonic()
        while time.monotonic() - clicked < 30 and not (store / "from-browser" / "job.json").exists():
            time.sleep(0.3)
        if (store / "from-browser" / "job.json").exists():
            break
        errors = page.locator("[data-testid='stAlertContentError']")
        assert errors.count() == 0, errors.first.inner_text()
    page.screenshot(path=str(SHOTS / "runs-launched.png"), full_page=True)
    assert (store / "from-browser" / "job.json").exists(), "the form did not launch the run"
    while time.monotonic() < deadline and not (store / "from-browser" / "run_summary.json").exists():
        time.sleep(0.5)
    page.reload()
    wait_idle(page)
    assert page.get_by_text("from-browser").count() >= 1
    assert (store / "from-browser" / "manifest.json").exists()

    # re-run the significance test
    page.goto(f"{url}/significance")
    wait_idle(page)
    page.get_by_role("button", name="Run the test").click()
    wait_idle(page)
    page.get_by_text("Verdict:").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "significance-rerun.png"), full_page=True)

    # build and download the PDF
    page.goto(f"{url}/report")
    wait_idle(page)
    page.get_by_role("button", name="Build the PDF").click()
    page.get_by_role("button", name="Download summary.pdf").wait_for(timeout=120_000)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download summary.pdf").click()
    pdf = tmp_path / "summary.pdf"
    dl.value.save_as(pdf)
    from pypdf import PdfReader
    text = "\n".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    assert "Verdict:" in text and "Pass@1 (candidate)" in text and "Latency, 512-token prefill" in text
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(SHOTS / "report-page")],
                   check=True)
    assert list(SHOTS.glob("report-page*.png"))


# The README's screenshots (docs/screenshots/, committed) are rewritten only when asked:
# HRM_GATE_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser.py -k first_run
DOC_SHOTS = (REPO / "docs" / "screenshots" if os.environ.get("HRM_GATE_UPDATE_SCREENSHOTS")
             else SHOTS / "first-run")
FIRST_RUN_PAGES = {"overview": "", "runs": "runs", "accuracy": "accuracy", "significance": "significance",
                   "efficiency": "efficiency", "training": "training", "health": "health", "tasks": "tasks",
                   "report": "report"}


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory):
    store = tmp_path_factory.mktemp("browser-empty-store")
    port = free_port()
    env = {**os.environ, "HRM_GATE_STORE": str(store), "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    with serve_app(port, env, loopback=True) as url:
        yield url, store


def test_first_run_from_an_empty_store_to_the_verdict(empty_server, browser):
    """A new user: the Overview of an empty store leads to the Runs screen, one click, the runs appear without a
    reload (the stale Runs page of issue 17), and the Overview shows the real pair's figures as core decides them."""
    from core.decide.gate import run_gate
    from core.decide.stats import show_p
    from core.views.fmt import pct, pp
    from core.views.quickstart import FIRST_PAIR, ORACLE, PUBLISHED
    url, store = empty_server
    overview = browser.new_page(viewport={"width": 1400, "height": 1000})  # a second tab, left open
    overview.goto(url)
    wait_idle(overview)
    overview.get_by_text("Start here: your first comparison").wait_for(timeout=30_000)  # not the committed gate
    assert overview.locator("div[data-testid='verdict']").count() == 0
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)  # the home page leads to the first run
    wait_idle(page)
    page.get_by_role("link", name="Go to the first run (Runs screen)").click()
    page.get_by_role("heading", name="Runs", level=1).wait_for(timeout=30_000)
    wait_idle(page)
    page.get_by_text("The run store is empty").wait_for(timeout=30_000)
    page.get_by_role("button", name="Score the published generations").click()
    started = time.monotonic()
    # no reload: the screen follows the jobs; the default pair's tags appear once they are done
    for name in FIRST_PAIR:
        page.locator("[data-testid='stMultiSelect']").get_by_text(name, exact=True).first.wait_for(timeout=120_000)
    while time.monotonic() - started < 60 and not all((store / n / "run_summary.json").exists()
                                                      for n in [ORACLE, *PUBLISHED]):
        time.sleep(0.5)
    assert all((store / n / "run_summary.json").exists() for n in [ORACLE, *PUBLISHED]), "not done within a minute"
    assert page.get_by_text("The run store is empty").count() == 0

    # the Overview tab, never reloaded, now shows the real pair
    overview.get_by_text("ChatGPT + MapCoder", exact=True).first.wait_for(timeout=60_000)
    overview.close()
    stats = run_gate(str(store / FIRST_PAIR[0]), str(store / FIRST_PAIR[1]), ks=(1, 10), resamples=2000).stats
    p1 = stats["pass_at_1"]
    page.goto(url)  # the Overview is the home page
    wait_idle(page)
    page.locator("[data-testid='stMarkdown'] div[data-testid='verdict']").first.wait_for(timeout=60_000)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert stats["verdict"] in page.locator("div[data-testid='verdict']").first.inner_text()
    for shown in (pct(p1[FIRST_PAIR[0]]), pct(p1[FIRST_PAIR[1]]), pp(p1["delta"]),
                  f"95% CI [{pp(p1['ci95'][0])}, {pp(p1['ci95'][1])}]", f"p = {show_p(p1['p_value_decision'])}",
                  "ChatGPT + MapCoder", "ChatGPT + Analogical", "a significant improvement at alpha 0.05",
                  "Oracle check"):
        assert shown in body, shown
    assert str(store) not in body  # no raw paths
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 2000})  # the app scrolls inside itself: a tall window
    for name, path in FIRST_RUN_PAGES.items():
        page.goto(f"{url}/{path}")
        wait_idle(page, 1 if name == "accuracy" else 0)
        page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        if name == "report":
            page.get_by_role("button", name="Build the PDF").click()
            page.get_by_role("button", name="Download summary.pdf").wait_for(timeout=120_000)
            wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0, name
        page.screenshot(path=str(DOC_SHOTS / f"{name}.png"), full_page=True)


TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def hosted(tmp_path_factory, mbpp_path):
    """The app as hosted: --server.address unset (Streamlit listens on every interface), a shared token,
    throttling after 3 wrong tokens, and a cap of 5 tasks x samples per eval."""
    store = tmp_path_factory.mktemp("hosted-store")
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "5", "--run-dir", store / "oracle",
        "--no-progress")
    cli("eval", "--samples", write_samples(store.parent / "empty-h.jsonl", [{"task_id": t, "completion": ""}
                                                                            for t in range(11, 16)]),
        "--data-path", mbpp_path, "--limit", "5", "--run-dir", store / "empty", "--no-progress")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HRM_GATE_", "STREAMLIT_SERVER_ADDRESS"))}
    env.update(HRM_GATE_STORE=str(store), WANDB_MODE="disabled", HRM_GATE_ACCESS_TOKEN=TOKEN,
               HRM_GATE_LOGIN_ATTEMPTS="3", HRM_GATE_MAX_TASK_SAMPLES="5")
    with serve_app(port, env, loopback=False) as url:
        yield url, store


def sign_in(page, token):
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    wait_idle(page)


def test_hosted_app_anonymous_sign_in_caps_and_throttling(hosted, browser):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    url, store = hosted
    before = sorted((str(p.relative_to(store)), p.stat().st_mtime_ns) for p in store.rglob("*"))

    # anonymous: every page renders, no launch form, no PDF button, a light test only, nothing written
    anon = browser.new_context().new_page()
    for name, (path, _) in PAGES.items():
        anon.goto(f"{url}/{path}")
        wait_idle(anon)
        anon.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        assert anon.locator("[data-testid='stException']").count() == 0, name
        assert anon.get_by_text("Launch a run").count() == 0, name
        assert anon.get_by_role("button", name="Build the PDF").count() == 0, name
        assert anon.get_by_role("button", name="Launch").count() == 0, name
    anon.goto(f"{url}/significance")
    wait_idle(anon)
    assert anon.get_by_role("spinbutton", name="Resamples (sign in for more)").is_disabled()
    anon.goto(f"{url}/runs")
    wait_idle(anon)
    assert anon.get_by_text("Sign in to launch or cancel runs.").count() == 1
    after = sorted((str(p.relative_to(store)), p.stat().st_mtime_ns) for p in store.rglob("*"))
    assert after == before, "an anonymous visitor wrote to the store"

    # signed in: a launch over the cap is refused in one line, and nothing is created
    user = browser.new_context().new_page()
    user.goto(f"{url}/runs")
    wait_idle(user)
    sign_in(user, TOKEN)
    user.get_by_text("Signed in with the access token").wait_for(timeout=30_000)
    user.get_by_text("Launch a run").click()
    user.get_by_label("Run name").fill("too-big")
    user.get_by_label("Model spec (overrides the model above)").fill("oracle")
    user.get_by_role("spinbutton", name="Tasks (eval)").fill("10")
    alert = user.locator("[data-testid='stAlertContentError']")
    for _ in range(3):  # on a loaded machine a click can land while the page is still rerunning
        user.get_by_role("button", name="Launch").click()
        wait_idle(user)
        try:
            alert.first.wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            continue
    alert.first.wait_for(timeout=1_000)
    text = alert.first.inner_text().strip()
    assert "10 tasks x 1 samples = 10 samples, over the cap of 5" in text and "\n" not in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    user.screenshot(path=str(SHOTS / "hosted-over-cap.png"), full_page=True)
    assert not (store / "too-big").exists()

    # guessing the token: after 3 wrong tries the client is locked out, even with the right token
    guesser = browser.new_context().new_page()
    guesser.goto(url)
    wait_idle(guesser)
    for i in range(3):
        sign_in(guesser, f"guess-{i}")
        guesser.get_by_text("Wrong access token.").wait_for(timeout=30_000)
    sign_in(guesser, TOKEN)
    guesser.get_by_text("Too many wrong tokens from this client").wait_for(timeout=30_000)
    assert guesser.get_by_text("Signed in with the access token").count() == 0
    guesser.screenshot(path=str(SHOTS / "hosted-throttled.png"), full_page=True)
