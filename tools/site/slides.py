"""Slide metadata derived at build time: one idea per slide.

The notebooks carry no slide metadata (people edit them in Jupyter and should not have to). Before
the reveal.js export, every cell without a `slideshow.slide_type` gets one by this rule:

1. A markdown cell that starts with a level-1 or level-2 heading ("# ..." / "## ...") starts a new
   slide (`slide`): a numbered section of a notebook is one idea, navigated left/right.
2. A markdown cell that starts with a deeper heading ("### ...") starts a sub-slide (`subslide`,
   navigated down) of the current idea.
3. A code cell whose output is long (a figure, or more than LONG_OUTPUT_LINES lines of text) gets a
   sub-slide of its own: the cell starts a sub-slide and the next cell starts another one.
4. Any other cell continues the current (sub-)slide (`-`), unless the (sub-)slide would then hold
   more than BUDGET_LINES estimated lines; then it starts a sub-slide (`subslide`).
5. An empty cell is skipped (`skip`).

A cell that already has `slideshow.slide_type` (set by hand in Jupyter) keeps it.
"""
import math
import re

from nbconvert.preprocessors import Preprocessor

BUDGET_LINES = 22          # what fits on a 960 x 700 slide at the template's 20 px fonts
LONG_OUTPUT_LINES = 12     # a text output longer than this gets its own sub-slide
FIGURE_LINES = 18          # a figure counts as this many lines
CHARS_PER_LINE = 80        # a markdown line wraps every this many characters
HEADING = re.compile(r"^\s*(#{1,6})\s")


def heading_level(cell) -> int:
    """1-6 for a markdown cell whose first line is a heading, else 0."""
    match = HEADING.match(cell.source) if cell.cell_type == "markdown" else None
    return len(match.group(1)) if match else 0


def output_lines(cell) -> tuple[int, bool]:
    """Estimated lines of a code cell's outputs, and whether they hold a figure."""
    lines, figure = 0, False
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if any(k.startswith("image/") for k in data):
            lines, figure = lines + FIGURE_LINES, True
        elif "text" in output:
            lines += output["text"].count("\n") + 1
        elif "text/markdown" in data or "text/plain" in data:
            lines += str(data.get("text/markdown", data.get("text/plain"))).count("\n") + 1
        elif output.get("output_type") == "error":
            lines += len(output.get("traceback", []))
    return lines, figure


def estimated_lines(cell) -> int:
    """Rough height of a rendered cell, in lines of text."""
    if cell.cell_type == "markdown":
        return sum(max(1, math.ceil(len(line) / CHARS_PER_LINE)) for line in cell.source.splitlines())
    source = len(cell.source.splitlines())
    return source + (output_lines(cell)[0] if cell.cell_type == "code" else 0)


def slide_types(cells) -> list[str]:
    """The slide_type of each cell by the module's rule (cells with their own keep it)."""
    types, used, after_long = [], 0, False
    for cell in cells:
        own = cell.metadata.get("slideshow", {}).get("slide_type")
        height = estimated_lines(cell)
        level = heading_level(cell)
        long_output = cell.cell_type == "code" and (
            output_lines(cell)[1] or output_lines(cell)[0] > LONG_OUTPUT_LINES
        )
        if own:
            kind = own
        elif not cell.source.strip() and not cell.get("outputs"):
            kind = "skip"
        elif level in (1, 2):
            kind = "slide"
        elif level >= 3 or long_output or after_long or used + height > BUDGET_LINES:
            kind = "subslide"
        else:
            kind = "-"
        if kind in ("slide", "subslide"):
            used = 0
        if kind != "skip":
            used += height
            after_long = long_output
        types.append(kind if types or kind in ("skip", "notes") else "slide")
    return types


class SlideMetadata(Preprocessor):
    """Set cell.metadata.slideshow.slide_type on every cell (see the module docstring)."""

    def preprocess(self, nb, resources):
        for cell, kind in zip(nb.cells, slide_types(nb.cells)):
            cell.metadata.setdefault("slideshow", {})["slide_type"] = kind
        return nb, resources
