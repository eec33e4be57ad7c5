"""Slides derived at build time: one idea per slide, every slide fits the screen and reads from the back of a room.

The notebooks carry no slide metadata (people edit them in Jupyter and should not have to). Before the reveal.js
export their cells are cut into slides by this rule; the deck is a build output, the notebook files stay as they
are. The slide is 1280 x 720 (16:9: scale 1 on a 1280 x 720 screen, 1.5 on 1920 x 1080) with prose at 26 px and
code at 20 px (the template selfextend_reveal); heights are planned in those pixels (the *_PX constants below).

1. A heading starts a slide: level 1 or 2 ("# ..." / "## ...") a new slide (`slide`, navigated left/right),
   a deeper one a sub-slide (`subslide`, navigated down). A markdown cell is cut before every heading it holds,
   so that Summary and Exercises, say, get a slide each.
2. A figure is the slide: each image output of a code cell goes to a sub-slide of its own, without the code,
   drawn as large as the slide allows (tag `slides-figure`); what follows a figure starts a new sub-slide.
3. Code longer than CODE_LINES lines (once long lines wrap) is left out of the deck: one line in its place says
   so and links to the cell on the notebook page (tag `slides-pointer`); the cell's text output stays. Why not
   fold it or spread it over sub-slides: only about 25 lines of code fit on a slide at a size the room can read,
   so folded code overflows the slide the moment the teacher opens it, and code cut over sub-slides breaks a
   function in the middle. The long cells are set-up, loops over stored results and plotting code, whose point
   the prose says and the figure shows; to walk through one, the teacher follows the link (or switches to
   JupyterLab, where it also runs). A text output longer than OUTPUT_LINES is cut the same way: its first
   lines, then a pointer.
4. Any other cell continues the current (sub-)slide while the slide's planned height stays within HEIGHT_PX;
   otherwise it starts a sub-slide, and takes along a paragraph of at most two lines just before it (an
   exercise's question stays with its code). A markdown cell taller than a slide is cut at paragraph,
   list-item and table-row boundaries (a table's header is repeated); code whose source and output do not
   fit on one slide together is cut between the two.
5. An empty cell is skipped (`skip`).

A cell that already has `slideshow.slide_type` (set by hand in Jupyter) keeps it and is left whole. Each slide
carries its planned height (data-planned-px), which tests/test_slides_browser.py reports next to the measured one.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from traitlets import Unicode

HEIGHT_PX = 670                        # what a slide holds: 720 less the top padding (16), the controls and a margin
BODY_LINE_PX, CODE_LINE_PX = 34, 26    # prose 26 px and code 20 px, at line-height 1.3
BODY_CHARS, CODE_CHARS = 100, 96       # characters on one line of prose and of code (1200 px wide)
HEADING_PX = {1: 53, 2: 46, 3: 39}     # one line of a heading (44, 38, 32 px at line-height 1.2); deeper: 34
GAP_PX = 12                            # below a paragraph, list, heading, table or cell
ITEM_GAP_PX = 4                        # between two list items
CODE_PAD_PX = 8                        # padding of a code or output block
MATH_PX, TALL_MATH_PX = 90, 145        # a displayed formula with its margins: one line, or fractions and sums
TALL_MATH = re.compile(r"\\(frac|tfrac|dfrac|sum|prod|int|begin|max|min)(?![a-zA-Z])")
CODE_LINES = 22                        # longer code is left out of the deck (rule 3)
LEAD_IN_PX = 2 * BODY_LINE_PX + GAP_PX  # a paragraph this short stays with what follows it (rule 4)
OUTPUT_LINES = 20                      # a longer text output is cut to this many lines
HEADING = re.compile(r"^ {0,3}(#{1,6})\s")
LIST_ITEM = re.compile(r"^ ?([*+-]|\d+[.)])\s")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class Piece:
    """A cell of the deck (a notebook cell or a part of one) with what places it: planned height, heading level."""
    cell: NotebookNode
    height: int
    level: int = 0
    figure: bool = False
    own: str | None = None


def heading_level(source: str) -> int:
    """1-6 for markdown whose first line is a heading, else 0."""
    match = HEADING.match(source)
    return len(match.group(1)) if match else 0


def visible_text(text: str) -> str:
    """Markdown roughly as it reads on the slide: no link targets, emphasis marks or TeX commands."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"\\[a-zA-Z]+|[*_`{}|$]", "", text)
    return " ".join(text.split())


def wrapped_lines(text: str, chars: int) -> int:
    """Lines of text once each line wraps every chars characters."""
    return sum(max(1, math.ceil(len(line.rstrip()) / chars)) for line in text.splitlines()) or 1


def prose_height(text: str, line_px: int = BODY_LINE_PX, chars: int = BODY_CHARS) -> int:
    """Height of wrapped prose and its displayed formulas ($$...$$)."""
    parts = text.split("$$")
    formulas = sum(TALL_MATH_PX if TALL_MATH.search(formula) else MATH_PX for formula in parts[1::2])
    prose = " ".join(parts[::2])
    spans = re.findall(r"`[^`]+`|\$[^$]+\$", prose)  # unbreakable: one at a line's end wraps whole, on average
    wasted = sum(len(visible_text(span)) ** 2 for span in spans) / (2 * chars)
    lines = math.ceil((len(visible_text(prose)) + wasted) / chars) if prose.strip() else 0
    return line_px * lines + formulas


def block_height(block: str) -> int:
    """Planned height in px of one markdown block: a heading, paragraph, list item, quote, code block or table rows."""
    level = heading_level(block)
    if level:
        size = HEADING_PX.get(level, 34)
        return prose_height(block, size, BODY_CHARS * 34 // size) + GAP_PX
    if FENCE.match(block):
        return CODE_LINE_PX * (wrapped_lines(block, CODE_CHARS) - 2) + CODE_PAD_PX + GAP_PX
    if block.lstrip().startswith("|"):
        rows = [row for row in block.splitlines() if not re.match(r"^\s*\|[\s|:-]+\|\s*$", row)]
        return sum(prose_height(row) + 6 for row in rows) + GAP_PX
    if LIST_ITEM.match(block):
        return prose_height(LIST_ITEM.sub("", block, count=1), chars=BODY_CHARS - 2) + ITEM_GAP_PX
    if block.lstrip().startswith(">"):
        return prose_height(block, chars=BODY_CHARS - 2) + GAP_PX
    return prose_height(block) + GAP_PX


def is_row(line: str) -> bool:
    """Whether a markdown line is a table row."""
    return line.lstrip().startswith("|")


def starts_unit(line: str, unit: list | None, blank: bool) -> bool:
    """Whether a line (outside code blocks and formulas) starts a new unit after the unit so far."""
    if unit is None or blank or HEADING.match(line) or heading_level(unit[1][0]) or FENCE.match(line):
        return True
    if is_row(line):
        return not is_row(unit[1][0]) or len(unit[1]) >= 3 or bool(unit[2])
    return bool(LIST_ITEM.match(line))


def markdown_units(source: str) -> list[tuple[str, str, str]]:
    """Markdown cut where a slide may end, as (separator before, text, table header a row needs in front of it)."""
    units: list[list] = []
    fenced = in_math = blank = False
    for line in source.splitlines():
        inside = fenced or in_math
        if not inside and not line.strip():
            blank = True
            continue
        if not inside and starts_unit(line, units[-1] if units else None, blank):
            table = is_row(line) and units and is_row(units[-1][1][0])
            header = (units[-1][2] or "\n".join(units[-1][1][:2])) if table else ""
            units.append(["\n\n" if blank else "\n", [line], header])
        else:
            units[-1][1].append(line)
        if FENCE.match(line) and not in_math:
            fenced = not fenced
        elif not fenced and line.count("$$") % 2:
            in_math = not in_math
        blank = False
    return [(separator, "\n".join(lines), header) for separator, lines, header in units]


def markdown_pieces(source: str) -> list[tuple[str, int]]:
    """A markdown cell cut before every heading and wherever the next unit would not fit: (source, height)."""
    pieces: list[list] = []
    for separator, text, header in markdown_units(source):
        height = block_height(text)
        last = pieces[-1] if pieces else None
        lone_heading = last is not None and heading_level(last[0]) and "\n" not in last[0].strip()
        if last and not heading_level(text) and (last[1] + height <= HEIGHT_PX or lone_heading):
            last[0] += separator + text
            last[1] += height
        else:
            pieces.append([f"{header}\n{text}" if header else text, height + (block_height(header) if header else 0)])
    return [(text, height) for text, height in pieces]


def is_image(output: NotebookNode) -> bool:
    """Whether an output shows an image (a figure, or a widget's saved picture)."""
    return any(key.startswith("image/") for key in output.get("data", {}))


def output_text(output: NotebookNode) -> str | None:
    """The text a stream, plain-text result or error shows, or None for a rich output."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    return data["text/plain"] if set(data) == {"text/plain"} else None


def output_height(output: NotebookNode) -> int:
    """Planned height in px of one text output."""
    text = output_text(output)
    if text is not None:
        return CODE_LINE_PX * wrapped_lines(text.rstrip("\n"), CODE_CHARS) + CODE_PAD_PX
    markdown = output.get("data", {}).get("text/markdown")
    if markdown is not None:
        return sum(block_height(unit) for _, unit, _ in markdown_units(markdown))
    return 3 * BODY_LINE_PX


def code_height(source: str) -> int:
    """Planned height in px of a code cell's source."""
    return CODE_LINE_PX * wrapped_lines(source, CODE_CHARS) + CODE_PAD_PX + GAP_PX


def cut_output(output: NotebookNode, lines: int) -> tuple[NotebookNode, int]:
    """A text output cut to its first lines that fill at most lines wrapped lines; and how many lines it lost."""
    text = output_text(output) or ""
    kept, used = [], 0
    for line in text.rstrip("\n").splitlines():
        used += max(1, math.ceil(len(line.rstrip()) / CODE_CHARS))
        if used > lines:
            break
        kept.append(line)
    lost = len(text.rstrip("\n").splitlines()) - len(kept)
    if not lost:
        return output, 0
    short = copy.deepcopy(output)
    if short.get("output_type") == "stream":
        short.text = "\n".join(kept) + "\n"
    elif short.get("output_type") == "error":
        short.traceback = kept
    else:
        short.data["text/plain"] = "\n".join(kept)
    return short, lost


def part(cell: NotebookNode, number: int, outputs: list, show_source: bool = True,
         tag: str | None = None) -> NotebookNode:
    """A copy of a code cell with only some outputs (and maybe without its source); number > 0 gives it its own id."""
    piece = copy.deepcopy(cell)
    piece.outputs = outputs
    if number and piece.get("id"):
        piece.id = f"{cell.id}-{number}"[:64]
    if not show_source:
        piece.metadata["transient"] = {"remove_source": True}
    if tag:
        piece.metadata["tags"] = [*piece.metadata.get("tags", []), tag]
    return piece


def pointer(cell: NotebookNode, what: str, page: str) -> Piece:
    """The one line that stands for something left out of the deck, linking to the cell on the notebook page."""
    prompt = f" (In [{cell.execution_count}])" if cell.get("execution_count") else ""
    where = f"[on the notebook page]({page}#cell-id={cell.id})" if page and cell.get("id") else "on the notebook page"
    note = new_markdown_cell(f"*{what}{prompt} left out of the slides: {where}.*")
    note.metadata["tags"] = ["slides-pointer"]
    if cell.get("id"):
        note.id = f"{cell.id}-left-out"[:64]
    return Piece(note, BODY_LINE_PX + GAP_PX)


def text_outputs(cell: NotebookNode) -> tuple[list, int]:
    """A code cell's outputs other than images, each cut to OUTPUT_LINES; and the number of lines cut."""
    cut = [cut_output(output, OUTPUT_LINES) for output in cell.outputs if not is_image(output)]
    return [output for output, _ in cut], sum(lost for _, lost in cut)


def code_pieces(cell: NotebookNode, page: str) -> list[Piece]:
    """A code cell as the deck shows it (rules 2-4): source or pointer, text outputs, then each figure alone."""
    images = [output for output in cell.outputs if is_image(output)]
    texts, lost = text_outputs(cell)
    lines = wrapped_lines(cell.source, CODE_CHARS)
    shown = lines <= CODE_LINES
    source_px = code_height(cell.source) if shown else 0
    output_px = sum(output_height(output) for output in texts) + (GAP_PX if texts else 0)
    pieces = [] if shown else [pointer(cell, f"{len(cell.source.splitlines())} lines of code", page)]
    if shown and texts and source_px + output_px > HEIGHT_PX:
        pieces += [Piece(part(cell, 0, []), source_px), Piece(part(cell, 1, texts, show_source=False), output_px)]
    elif shown or texts:
        pieces.append(Piece(part(cell, 0, texts, show_source=shown), source_px + output_px))
    if lost:
        pieces.append(pointer(cell, f"{lost} more lines of output", page))
    figures = [part(cell, 2 + k, [image], show_source=False, tag="slides-figure") for k, image in enumerate(images)]
    return pieces + [Piece(figure, HEIGHT_PX, figure=True) for figure in figures]


def whole_height(cell: NotebookNode) -> int:
    """Planned height in px of a cell shown whole (a figure counts as a full slide)."""
    if cell.cell_type != "code":
        return sum(block_height(unit) for _, unit, _ in markdown_units(cell.source))
    outputs = cell.get("outputs", [])
    figure = HEIGHT_PX if any(is_image(output) for output in outputs) else 0
    return code_height(cell.source) + sum(output_height(o) for o in outputs if not is_image(o)) + figure


def cell_pieces(cell: NotebookNode, page: str) -> list[Piece]:
    """The pieces of one notebook cell: the cell whole when its slide_type was set by hand, else cut by the rule."""
    own = cell.metadata.get("slideshow", {}).get("slide_type")
    if not cell.source.strip() and not cell.get("outputs"):
        return [Piece(cell, 0, own=own or "skip")]
    if own or cell.cell_type not in ("markdown", "code"):
        return [Piece(cell, whole_height(cell), heading_level(cell.source) if cell.cell_type == "markdown" else 0,
                      own=own)]
    if cell.cell_type == "code":
        return code_pieces(cell, page)
    pieces = []
    for number, (source, height) in enumerate(markdown_pieces(cell.source)):
        piece = copy.deepcopy(cell)
        piece.source = source
        if number and piece.get("id"):
            piece.id = f"{cell.id}-{number}"[:64]
        pieces.append(Piece(piece, height, heading_level(source)))
    return pieces


def is_lead_in(piece: Piece) -> bool:
    """Whether a piece is a short paragraph that introduces what follows (a question before its code, say)."""
    return piece.cell.cell_type == "markdown" and not (piece.own or piece.level) and piece.height <= LEAD_IN_PX


def kind_of(piece: Piece, used: int, after_figure: bool) -> str:
    """A piece's slide_type by the module's rule, with used px already on the current slide."""
    if piece.own:
        return piece.own
    if piece.level in (1, 2):
        return "slide"
    if piece.level >= 3 or piece.figure or after_figure or used + piece.height > HEIGHT_PX:
        return "subslide"
    return "-"


def takes_lead_in(piece: Piece, before: Piece, kind_before: str) -> bool:
    """Whether a piece that starts a sub-slide for want of room takes the lead-in before it along."""
    return (kind_before == "-" and is_lead_in(before) and not (piece.own or piece.level or piece.figure)
            and before.height + piece.height <= HEIGHT_PX)


def slide_types(pieces: list[Piece]) -> list[str]:
    """The slide_type of each piece by the module's rule; the first piece shown starts a slide."""
    types, used, after_figure, last = [], 0, False, None
    for index, piece in enumerate(pieces):
        kind = kind_of(piece, used, after_figure)
        if kind not in ("skip", "notes"):
            if last is None:
                kind = "slide"
            elif kind == "subslide" and takes_lead_in(piece, pieces[last], types[last]):
                types[last], kind, used = "subslide", "-", pieces[last].height
            used = piece.height if kind in ("slide", "subslide") else used + piece.height
            after_figure, last = piece.figure, index
        types.append(kind)
    return types


class SlideMetadata(Preprocessor):
    """Cut the cells into slides and set cell.metadata.slideshow.slide_type (see the module docstring)."""

    page = Unicode("", help="URL of the notebook page relative to the slides: where left-out code is").tag(config=True)

    def preprocess(self, nb, resources):
        pieces = [piece for cell in nb.cells for piece in cell_pieces(cell, self.page)]
        start = None
        for piece, kind in zip(pieces, slide_types(pieces)):
            slideshow = piece.cell.metadata.setdefault("slideshow", {})
            slideshow["slide_type"] = kind
            if kind in ("slide", "subslide"):
                start = slideshow.setdefault("data", {})
                start["planned_px"] = 0
            if start is not None and kind not in ("skip", "notes"):
                start["planned_px"] += piece.height  # the section's data-planned-px, for whoever tunes the rule
        nb.cells = [piece.cell for piece in pieces]
        return nb, resources
