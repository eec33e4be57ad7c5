"""The room in a real browser: a participant signs in on the hub's page, opens notebook 01 from their own copy,
runs it and sees its figure; another participant's notebook is not reachable from their browser.

A room of alice and bob is started by tools/hub/serve.py (tests/hub_room.py: root, cgroup v1, npm), and
Playwright drives Debian's chromium as in tests/test_site_browser.py. alice signs in through the login form,
JupyterHub starts her server, JupyterLab opens notebooks/01_rope_relative_positions.ipynb from her home; the test
clears every output, runs all cells (Run menu) and waits until a figure (an <img> output) has loaded. bob's
server runs too; from alice's signed-in browser, his notebook page and his contents API answer 403 and show
nothing of his. Screenshots go to results/hub-screenshots/ (git-ignored; a CI artifact). Without Chromium or
root the test is skipped; in CI (SELFEXTEND_REQUIRE_BROWSER=1, root) that is a failure.
"""
from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest

if sys.platform == "win32":  # Unix accounts and permissions: the room server runs on Linux
    pytest.skip("the room server runs on Linux", allow_module_level=True)

from hub_room import ROOT, Hub, check_requirements, missing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "results" / "hub-screenshots"
NOTEBOOK = "notebooks/01_rope_relative_positions.ipynb"


@pytest.fixture(scope="module")
def hub():
    """A room of alice and bob."""
    check_requirements()
    if not Path(CHROMIUM).exists():
        missing(f"Chromium not found at {CHROMIUM}: sudo apt-get install chromium")
    room = Hub(["alice", "bob"], memory_limit="2G")
    try:
        room.open_the_way()
        room.start()
        yield room
    finally:
        room.close()


@pytest.fixture(scope="module")
def browser(hub):
    """Headless Debian Chromium driven by Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements.txt)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def menu(page, top: str, item: str) -> None:
    """Click JupyterLab's menu TOP, then its entry ITEM."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).first.click()


def test_a_participant_runs_notebook_01_in_the_browser_and_cannot_reach_another(hub, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    bob = hub.signed_in("bob")
    bob.start_server()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        start = time.perf_counter()
        page.goto(f"{hub.url}/hub/login", wait_until="load", timeout=60_000)
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", hub.password)
        page.click("#login_submit")
        page.wait_for_url(re.compile(r".*/user/alice/lab.*"), timeout=300_000)  # the hub spawned her server
        print(f"\nalice signed in and her JupyterLab loaded in {time.perf_counter() - start:.1f} s")
        page.goto(f"{hub.url}/user/alice/lab/tree/{NOTEBOOK}", wait_until="load", timeout=120_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea-output img').length > 0", timeout=120_000)
        menu(page, "Edit", "Clear Outputs of All Cells")
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea-output img').length === 0", timeout=60_000)
        start = time.perf_counter()
        menu(page, "Run", "Run All Cells")
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
            ".some(img => img.complete && img.naturalWidth > 0)", timeout=600_000)
        print(f"notebook 01's first figure appeared {time.perf_counter() - start:.1f} s after Run All")
        page.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "alice_notebook_01.png"))
        # the API as JupyterLab calls it: her session cookie and the xsrf token beside it
        fetch = ("path => fetch(path, {headers: {'X-XSRFToken': (document.cookie.match(/_xsrf=([^;]+)/) || [])[1]}})"
                 ".then(async r => [r.status, await r.text()])")
        own = page.evaluate(fetch, "/user/alice/api/contents/notebooks")
        others = page.evaluate(fetch, "/user/bob/api/contents/notebooks")
        answer = page.goto(f"{hub.url}/user/bob/lab/tree/{NOTEBOOK}", wait_until="load", timeout=120_000)
        page.screenshot(path=str(SHOTS / "alice_tries_bobs_notebook.png"))
        bobs_page_status, bobs_page = answer.status, page.content()
    finally:
        context.close()
    assert own[0] == 200 and "01_rope" in own[1], own[0]
    assert others[0] == 403 and '"cells"' not in others[1] and "01_rope" not in others[1], others
    assert bobs_page_status == 403 and "jp-NotebookPanel" not in bobs_page, bobs_page_status
    assert not [e for e in errors if "ResizeObserver" not in e], errors
