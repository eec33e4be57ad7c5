"""Shared pieces of the browser tests of the offline site: Debian's Chromium driven by Playwright, site/ built
by tools/site/build.py and served by http.server on 127.0.0.1 (tests/test_site_browser.py, test_slides_browser.py).

Without Chromium a test that needs it is skipped (`sudo apt-get install chromium`); with
SELFEXTEND_REQUIRE_BROWSER=1 (set by .ci/run) a missing browser is a failure instead.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("SELFEXTEND_REQUIRE_BROWSER") == "1"


def missing(reason: str):
    """Skip (or, when the browser test is required, fail) with a message that says what to install."""
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def build_site(*options: str) -> Path:
    """site/, built or brought up to date by tools/site/build.py with options (e.g. --slides); skips without
    Chromium or npm."""
    if not Path(CHROMIUM).exists():
        missing(f"Chromium not found at {CHROMIUM}: install it with `sudo apt-get install chromium` "
                "to run the browser test of the site")
    if shutil.which("npm") is None and not (ROOT / "tools/site/node_modules/.package-lock.json").exists():
        missing("npm is needed once to fetch MathJax and reveal.js for the site: `sudo apt-get install npm`")
    start = time.perf_counter()
    build = subprocess.run([sys.executable, str(ROOT / "tools/site/build.py"), *options], cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    print(f"\nsite built in {time.perf_counter() - start:.1f} s: {build.stdout.strip().splitlines()[-1]}")
    return SITE


@contextmanager
def serve(folder: Path):
    """http.server on a free port of 127.0.0.1, serving folder from a thread; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def chromium():
    """Headless Debian Chromium driven by Playwright (never Playwright's own browser download)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements.txt)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def local_only(context, outside: list[str]) -> None:
    """Abort every request of a browser context that leaves 127.0.0.1, recording its URL in outside."""
    def route(r):
        if urlsplit(r.request.url).hostname != "127.0.0.1":
            outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)


# Module-scoped: one Playwright runs at a time, so each test module that imports these closes its own.
@pytest.fixture(scope="module")
def server(site):
    """site/ served on 127.0.0.1 (the module that uses it defines the `site` fixture); yields the base URL."""
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def browser(site):
    """Headless Debian Chromium, launched once the site is built."""
    with chromium() as launched:
        yield launched
