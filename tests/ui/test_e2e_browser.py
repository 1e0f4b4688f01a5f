"""End to end: `streamlit run app.py` on loopback, driven in headless Chromium from Debian's package.

Asks the sample report a question, opens the citation, checks the highlighted span
and saves a screenshot to test-artifacts/e2e-answer.png. Then uploads a report
carrying <script> and <img onerror> and checks nothing of it runs.

Set DOSSIER_UPDATE_SCREENSHOT=1 to also refresh docs/screenshot.png (the README's).
Playwright never downloads a browser here: it is pointed at /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
QUESTION = "Who co-chaired the meeting in Moscow?"
EVIL = (
    "Injection test report\n\nThe Zorblax Mining audit found <script>alert(1)</script> in its quarterly filing.\n\n"
    'Zorblax Mining reported revenue of 42 million dollars <img src=x onerror="alert(2)"> in 2023.\n'
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium "
        "(apt-get install chromium; CI's .ci/run installs it)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(
        f"streamlit did not become healthy in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}"
    )


@pytest.fixture
def server(tmp_path):
    """The page on a free loopback port with a fresh store.

    It runs in an empty folder holding a copy of the repo's .streamlit/config.toml, with
    the store at the relative path .dossier/store there, as on a user's first start.
    """
    port = _free_port()
    log = tmp_path / "streamlit.log"
    home = tmp_path / "home"
    shutil.copytree(REPO / ".streamlit", home / ".streamlit")
    env = dict(os.environ, RAG_STORE=".dossier/store", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true"]
    cmd += [
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _ask(page, question: str) -> None:
    box = page.get_by_placeholder("Ask a question about your reports")
    box.wait_for(timeout=120_000)
    box.fill(question)
    box.press("Enter")


def _open_citation_quoting(message, text: str):
    """Open the answer's citations one by one until the highlighted span contains ``text``."""
    message.get_by_text("Extractive answer:", exact=False).wait_for(timeout=60_000)  # the last element drawn
    expanders = message.get_by_test_id("stExpander")
    seen = []
    for n in range(expanders.count()):
        citation = expanders.nth(n)
        citation.locator("summary").click()
        mark = citation.locator("mark.dossier-cited").first
        mark.wait_for(state="visible", timeout=30_000)
        seen.append(mark.inner_text())
        if text in seen[-1]:
            return citation, mark
        citation.locator("summary").click()  # close it again and try the next one
    pytest.fail(f"no citation of the answer highlights {text!r}; highlighted: {seen}")


def test_ask_cite_and_highlight_in_a_real_browser(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    url, log = server
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url, wait_until="domcontentloaded")

            # First start indexed data/: the sidebar says so, and the mode is explained.
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text("Extractive mode: no LLM is configured").wait_for(timeout=120_000)
            sidebar.get_by_text("1 report,", exact=False).wait_for(timeout=60_000)

            _ask(page, QUESTION)
            answer = page.get_by_test_id("stChatMessage").nth(1)
            answer.get_by_text("Sanjeev Kumar", exact=False).first.wait_for(timeout=120_000)
            citation, mark = _open_citation_quoting(answer, "Sanjeev Kumar")
            assert "india-russia-working-group-moscow.txt" in citation.inner_text()
            assert "Sanjeev Kumar" in mark.inner_text()
            page.wait_for_timeout(500)  # let the expander finish opening
            page.screenshot(path=str(ARTIFACTS / "e2e-answer.png"), full_page=False)
            if os.environ.get("DOSSIER_UPDATE_SCREENSHOT") == "1":
                mark.scroll_into_view_if_needed()
                page.screenshot(path=str(REPO / "docs" / "screenshot.png"), full_page=False)

            # An uploaded report carrying <script> and <img onerror> is shown as text, never run.
            page.get_by_role("tab", name="Library").click()
            evil = tmp_path / "evil.txt"
            evil.write_text(EVIL, encoding="utf-8")
            page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(evil))
            page.get_by_role("button", name="Add to the library").click()
            page.get_by_test_id("stAlertContentSuccess").filter(has_text="evil.txt").wait_for(timeout=120_000)
            page.get_by_role("tab", name="Ask").click()
            _ask(page, "What revenue did Zorblax Mining report?")
            reply = page.get_by_test_id("stChatMessage").nth(3)
            reply.get_by_text("Zorblax", exact=False).first.wait_for(timeout=120_000)
            for n in range(reply.get_by_test_id("stExpander").count()):
                reply.get_by_test_id("stExpander").nth(n).locator("summary").click()
            reply.locator("mark.dossier-cited").first.wait_for(state="visible", timeout=30_000)
            page.wait_for_timeout(1000)
            shown = reply.inner_text()
            assert "<img src=x onerror=" in shown or "<script>alert(1)</script>" in shown
            assert page.locator('img[src="x"]').count() == 0
            assert page.evaluate("() => [...document.scripts].every(s => !s.text.includes('alert('))")
            assert dialogs == []
        finally:
            browser.close()
    assert "Traceback" not in log.read_text(errors="replace")
