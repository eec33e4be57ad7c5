"""The offline site in a real browser: every page of site/ loads in headless Chromium from 127.0.0.1.

The site is built first (tools/site/build.py, from the committed files like `make site`, incremental: it
reuses outputs that are up to date; the pages expected are those of the same commit),
served by http.server on a free port of 127.0.0.1, and each page is opened by Playwright driving
Debian's `chromium` (not Playwright's own browser download; the set-up is shared with the slides test in
tests/browser.py). For every page the test checks:
  - no request left 127.0.0.1 (each such request is recorded and aborted) and no local request failed;
  - no JavaScript error;
  - every <img> loaded (naturalWidth > 0);
  - formulas were typeset by the local MathJax (mjx-container elements, no MathJax error element);
  - slides: reveal.js reached its ready state (Reveal.isReady()) with more than one slide.
A screenshot of each page is saved to results/site-screenshots/ (git-ignored; a CI artifact).

Without Chromium the test is skipped (`sudo apt-get install chromium`); with SELFEXTEND_REQUIRE_BROWSER=1
(set by .ci/run) a missing browser is a failure instead.
"""
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from browser import ROOT, build_site, local_only
from browser import browser, server  # noqa: F401 (pytest fixtures)

sys.path.insert(0, str(ROOT / "tools" / "site"))
from source import open_source  # noqa: E402

SOURCE, _ = open_source(ROOT)  # what tools/site/build.py builds from: the commit HEAD (or the working tree)
SHOTS = ROOT / "results" / "site-screenshots"


def has_math(notebook: str) -> bool:
    """Whether a notebook's Markdown holds a formula ($...$ or $$...$$)."""
    nb = nbformat.reads(SOURCE.read_text(notebook), as_version=4)
    return any(c.cell_type == "markdown" and re.search(r"\$[^$\n]+\$", c.source) for c in nb.cells)


def pages() -> list[tuple[str, str, bool]]:
    """(site path, kind, expects formulas) for every page the build makes."""
    learner = SOURCE.files("notebooks/[0-9]*.ipynb")
    solutions = SOURCE.files("notebooks/solutions/[0-9]*.ipynb")
    found = [("index.html", "index", False)]
    if SOURCE.exists("notebooks/WORKSHOP.md"):
        guide = SOURCE.read_text("notebooks/WORKSHOP.md")
        found.append(("workshop.html", "document", bool(re.search(r"\$[^$\n]+\$", guide))))
    found += [(Path(p).with_suffix(".html").as_posix(), "page", has_math(p)) for p in learner + solutions]
    found += [(f"slides/{Path(p).stem}.slides.html", "slides", has_math(p)) for p in learner]
    return found


PAGES = pages()


@pytest.fixture(scope="session")
def site() -> Path:
    """site/, built (or brought up to date) by tools/site/build.py."""
    return build_site()


@pytest.mark.parametrize("path,kind,math", PAGES, ids=[p for p, _, _ in PAGES])
def test_page_in_browser(path, kind, math, server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    outside, failed, errors = [], [], []
    local_only(context, outside)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"console: {m.text} {m.location.get('url', '')}")
            if m.type == "error" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"{r.failure} {r.url}")
            if urlsplit(r.url).hostname == "127.0.0.1" else None)
    try:
        page.goto(f"{server}/{path}", wait_until="load", timeout=60_000)
        if kind != "index":
            page.wait_for_function("document.body.getAttribute('data-mathjax') === 'done'", timeout=60_000)
        if kind == "slides":
            page.wait_for_function("window.Reveal !== undefined && Reveal.isReady()", timeout=60_000)
        page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=60_000)
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.naturalWidth, i.src.slice(0, 80)])")
        typeset = page.locator("mjx-container").count()
        math_errors = page.locator("mjx-merror, [data-mjx-error]").count()
        slides = page.evaluate("Reveal.getTotalSlides()") if kind == "slides" else None
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / (path.replace("/", "__") + ".png")))
    finally:
        context.close()

    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert not failed, f"local requests failed: {failed}"
    assert not errors, f"JavaScript errors: {errors}"
    assert all(width > 0 for width, _ in images), f"images that did not load: {[s for w, s in images if w == 0]}"
    if kind == "index":
        assert len(images) >= 10, f"the gallery shows {len(images)} images"
    if math:
        assert typeset > 0, "no formula was typeset (no mjx-container)"
    assert math_errors == 0, f"{math_errors} MathJax errors"
    if kind == "slides":
        assert slides > 1, f"only {slides} slide(s)"
