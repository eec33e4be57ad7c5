"""The slides can be projected: every slide of every deck fits the screen, readable from the back of a room.

The slides are built first (tools/site/build.py --slides, incremental) and served from 127.0.0.1 as in
tests/test_site_browser.py (Debian's chromium through Playwright; tests/browser.py). Each deck is opened once
per screen size, 1280x720 and 1920x1080, and walked with the Reveal API: Reveal.slide(h, v) for every
horizontal slide and each of its vertical sub-slides, after the fonts, the images and MathJax are ready. On
each slide one page.evaluate measures:
  - overflow: the slide's content (the union of its elements' boxes) stays inside the configured
    width x height, and the slide box inside the window;
  - scrolling: no element scrolls or clips (scrollWidth > clientWidth, scrollHeight > clientHeight where
    overflow is not visible) and no code or output area overflows sideways;
  - readable text: the smallest font of visible text, computed size times Reveal.getScale(), is at least
    BODY_PX in prose (p, li, td, ...) and CODE_PX in code (pre, code) at 1280x720 (MathJax is left out:
    its indices are small by design);
  - figures: every image lies inside the slide and is drawn as large as the slide allows (at least
    LARGE of its width or of its height).
A failure lists "deck, slide h/v: problem" for every problem. Screenshots of every slide of SHOT_DECKS
at 1280x720 go to results/slides-screenshots/ (git-ignored), with summary.txt: per deck and size the
slides measured, the smallest fonts and the tallest slide.

Without Chromium the test is skipped (`sudo apt-get install chromium`); with SELFEXTEND_REQUIRE_BROWSER=1
(set by .ci/run) a missing browser is a failure instead.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from browser import ROOT, build_site, local_only
from browser import browser, server  # noqa: F401 (pytest fixtures)

sys.path.insert(0, str(ROOT / "tools" / "site"))
from source import open_source  # noqa: E402

SOURCE, _ = open_source(ROOT)
SHOTS = ROOT / "results" / "slides-screenshots"
SIZES = [(1280, 720), (1920, 1080)]
BODY_PX, CODE_PX = 24, 18      # smallest rendered font at 1280x720: prose, code
LARGE = 0.85                   # a figure fills at least this share of the slide's width or height
SHOT_DECKS = ("02", "03", "11")
DECKS = [Path(p).stem for p in SOURCE.files("notebooks/[0-9]*.ipynb")]
MEASURED: dict[tuple[str, str], dict] = {}

# One slide, in the page: show it, then measure in slide units (CSS px of the configured width x height).
MEASURE = """([h, v, large]) => {
  Reveal.slide(h, v);
  const slide = Reveal.getCurrentSlide(), config = Reveal.getConfig(), scale = Reveal.getScale();
  const box = Reveal.getSlidesElement().getBoundingClientRect();
  const unit = box.width / config.width;  // screen px per slide px
  const visible = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const name = el => el.tagName.toLowerCase() + (el.classList[0] ? "." + el.classList[0] : "");
  const elements = Array.from(slide.querySelectorAll("*")).filter(  // MathJax's copy for screen readers is clipped
    el => !el.closest("aside.notes, mjx-assistive-mml") && visible(el));
  let top = 0, bottom = 0, right = 0, left = config.width;
  const problems = [];
  for (const el of elements) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    bottom = Math.max(bottom, (r.bottom - box.top) / unit); top = Math.min(top, (r.top - box.top) / unit);
    right = Math.max(right, (r.right - box.left) / unit); left = Math.min(left, (r.left - box.left) / unit);
    if (el.closest("mjx-container") && !el.matches("mjx-container")) continue;
    const style = getComputedStyle(el);
    const clips = axis => style["overflow" + axis] !== "visible";
    const codeArea = el.matches("pre, code, .jp-OutputArea-output, .jp-InputArea-editor, .highlight");
    if (el.scrollWidth > el.clientWidth + 1 && (clips("X") || codeArea))
      problems.push(`scrolls sideways: ${name(el)} (${el.scrollWidth} > ${el.clientWidth} px)`);
    if (el.scrollHeight > el.clientHeight + 1 && clips("Y"))
      problems.push(`scrolls or clips: ${name(el)} (${el.scrollHeight} > ${el.clientHeight} px)`);
  }
  const fonts = {body: [Infinity, ""], code: [Infinity, ""]};
  const walker = document.createTreeWalker(slide, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim(), el = walker.currentNode.parentElement;
    if (!text || el.closest("mjx-container, aside.notes") || !visible(el)) continue;
    const px = parseFloat(getComputedStyle(el).fontSize) * scale;
    const kind = el.closest("pre, code") ? "code" : "body";
    if (px < fonts[kind][0]) fonts[kind] = [px, `${name(el)} "${text.slice(0, 40)}"`];
  }
  const images = Array.from(slide.querySelectorAll("img")).filter(visible).map(img => {
    const r = img.getBoundingClientRect();
    const fit = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
    const drawn = getComputedStyle(img).objectFit === "contain" ? [img.naturalWidth * fit, img.naturalHeight * fit]
                                                                : [r.width, r.height];
    return {inside: r.left >= box.left - 1 && r.top >= box.top - 1 && r.right <= box.right + 1
                    && r.bottom <= box.bottom + 1,
            share: Math.max(drawn[0] / box.width, drawn[1] / box.height)};
  });
  images.forEach((img, i) => {
    if (!img.inside) problems.push(`image ${i + 1} is not fully inside the slide`);
    if (img.share < large) problems.push(`image ${i + 1} fills only ${(100 * img.share).toFixed(0)}% of the slide`);
  });
  if (box.left < -1 || box.top < -1 || box.right > innerWidth + 1 || box.bottom > innerHeight + 1)
    problems.push("the slide is larger than the window");
  return {height: bottom - top, width: right - left, configured: [config.width, config.height], problems,
          planned: slide.dataset.plannedPx || "?",
          body: fonts.body, code: fonts.code, images: images.length};
}"""


def deck_slides(page) -> list[tuple[int, int]]:
    """(h, v) of every slide of the open deck: each horizontal slide, or each of its vertical sub-slides."""
    counts = page.evaluate("Reveal.getHorizontalSlides().map(s => s.querySelectorAll(':scope > section').length)")
    return [(h, v) for h, count in enumerate(counts) for v in range(max(count, 1))]


def slide_problems(where: str, m: dict, small_screen: bool) -> list[str]:
    """The readable problems of one measured slide."""
    width, height = m["configured"]
    problems = [f"{where}: {p}" for p in dict.fromkeys(m["problems"])]  # each kind of problem once
    if m["height"] > height + 0.5 or m["width"] > width + 0.5:
        problems.append(f"{where}: content {m['width']:.0f} x {m['height']:.0f} px, the slide is {width} x {height} "
                        f"(planned height {m['planned']} px)")
    for kind, least in (("body", BODY_PX), ("code", CODE_PX)):
        px, sample = m[kind]
        if small_screen and px < least:
            problems.append(f"{where}: {kind} text at {px:.1f} px (< {least}): {sample}")
    return problems


@pytest.fixture(scope="session")
def site() -> Path:
    """site/ with its slides built (or brought up to date) by tools/site/build.py --slides."""
    return build_site("--slides")


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Write results/slides-screenshots/summary.txt once every deck was measured."""
    yield
    if not MEASURED:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    row = "{:40s} {:>9s} {:6d} {:7.1f} {:7.1f} {:10.0f}".format
    lines = [f"{'deck':40s} {'size':>9s} {'slides':>6s} {'body px':>7s} {'code px':>7s} {'max height':>10s}"]
    for (deck, size), m in sorted(MEASURED.items()):
        lines.append(row(deck, size, m["slides"], m["body"], m["code"], m["height"]))
    for width, height in SIZES:
        size = f"{width}x{height}"
        at = [m for (_, s), m in MEASURED.items() if s == size]
        lines.append(row(f"all {len(at)} decks", size, sum(m["slides"] for m in at), min(m["body"] for m in at),
                         min(m["code"] for m in at), max(m["height"] for m in at)) if at else f"no deck at {size}")
    (SHOTS / "summary.txt").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("deck", DECKS)
def test_every_slide_fits(deck, size, server, browser):
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
    outside: list[str] = []
    local_only(context, outside)
    page = context.new_page()
    problems, measured = [], []
    shots = SHOTS / deck / f"{width}x{height}" if deck[:2] in SHOT_DECKS and size == SIZES[0] else None
    if shots:
        shutil.rmtree(shots, ignore_errors=True)
    try:
        page.goto(f"{server}/slides/{deck}.slides.html", wait_until="load", timeout=60_000)
        page.wait_for_function("window.Reveal !== undefined && Reveal.isReady()", timeout=60_000)
        page.wait_for_function("document.body.getAttribute('data-mathjax') === 'done'", timeout=60_000)
        page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=60_000)
        page.evaluate("document.fonts.ready.then(() => Reveal.configure({transition: 'none'}))")
        for h, v in deck_slides(page):
            m = page.evaluate(MEASURE, [h, v, LARGE])
            measured.append(m)
            problems += slide_problems(f"{deck}, slide {h}/{v}", m, size == SIZES[0])
            if shots:
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / f"{h:02d}-{v:02d}.png"))
    finally:
        context.close()
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert measured, f"{deck}: no slide"
    MEASURED[(deck, f"{width}x{height}")] = {
        "slides": len(measured), "height": max(m["height"] for m in measured),
        "body": min(m["body"][0] for m in measured), "code": min(m["code"][0] for m in measured)}
    if problems:
        pytest.fail(f"{len(problems)} problems in {len(measured)} slides at {width}x{height}:\n" + "\n".join(problems),
                    pytrace=False)
