"""The slide plan of tools/site/slides.py on small notebooks made here (no browser; the decks themselves are measured
in Chromium by tests/test_slides_browser.py)."""
from __future__ import annotations

import sys
from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "site"))
import slides  # noqa: E402

PNG = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}


def plan(*cells, page: str = "../notebooks/nb.html"):
    """(slide_type, cell) of every cell of the deck made from cells."""
    nb = new_notebook(cells=list(cells))
    nb, _ = slides.SlideMetadata(page=page).preprocess(nb, {})
    return [(cell.metadata["slideshow"]["slide_type"], cell) for cell in nb.cells]


def stream(lines: int, width: int = 20) -> dict:
    """A printed output of lines lines."""
    return new_output("stream", name="stdout", text="".join("x" * width + "\n" for _ in range(lines)))


def test_headings_start_slides_and_a_cell_is_cut_before_each_heading():
    deck = plan(new_markdown_cell("# Title\n\nIntro."),
                new_markdown_cell("## Summary\n\n* a\n* b\n\n## Exercises\n\nDo."),
                new_markdown_cell("### Deeper\n\nText."))
    assert [(kind, cell.source.splitlines()[0]) for kind, cell in deck] == [
        ("slide", "# Title"), ("slide", "## Summary"), ("slide", "## Exercises"), ("subslide", "### Deeper")]


def test_a_figure_gets_its_own_sub_slide_without_the_code():
    code = new_code_cell("fig = plot()\nprint('done')", outputs=[stream(1), new_output("display_data", data=PNG)])
    deck = plan(new_markdown_cell("## A plot"), code, new_markdown_cell("What it shows."))
    kinds = [kind for kind, _ in deck]
    assert kinds == ["slide", "-", "subslide", "subslide"]
    _, source_part = deck[1]
    _, figure = deck[2]
    assert [o.output_type for o in source_part.outputs] == ["stream"]
    assert figure.metadata["tags"] == ["slides-figure"] and figure.metadata["transient"] == {"remove_source": True}
    assert list(figure.outputs[0].data) == list(PNG)


def test_long_code_is_left_out_with_a_link_to_the_notebook_page():
    code = new_code_cell("\n".join(f"x{i} = {i}" for i in range(slides.CODE_LINES + 8)), outputs=[stream(2)],
                         execution_count=7)
    deck = plan(new_markdown_cell("## Long"), code)
    (_, pointer), (_, rest) = deck[1], deck[2]
    assert pointer.cell_type == "markdown" and pointer.metadata["tags"] == ["slides-pointer"]
    assert f"{slides.CODE_LINES + 8} lines of code (In [7])" in pointer.source
    assert f"(../notebooks/nb.html#cell-id={code.id})" in pointer.source
    assert rest.metadata["transient"] == {"remove_source": True} and len(rest.outputs) == 1


def test_a_long_output_is_cut_and_points_to_the_rest():
    deck = plan(new_code_cell("print(table)", outputs=[stream(slides.OUTPUT_LINES + 5)]))
    (_, code), (_, pointer) = deck
    assert code.outputs[0].text.count("\n") == slides.OUTPUT_LINES
    assert "5 more lines of output" in pointer.source


def test_a_long_markdown_cell_is_cut_at_paragraphs_into_slides_that_fit():
    paragraphs = [f"Paragraph {i}: " + "word " * 60 for i in range(12)]
    deck = plan(new_markdown_cell("## Long\n\n" + "\n\n".join(paragraphs)))
    assert [kind for kind, _ in deck][:2] == ["slide", "subslide"] and len(deck) >= 3
    assert "\n\n".join(cell.source for _, cell in deck) == "## Long\n\n" + "\n\n".join(paragraphs)
    assert all(sum(slides.block_height(u) for _, u, _ in slides.markdown_units(c.source)) <= slides.HEIGHT_PX
               for _, c in deck)
    assert len({cell.id for _, cell in deck}) == len(deck)


def test_a_long_table_repeats_its_header_on_the_next_slide():
    rows = [f"| row {i} | " + "text " * 30 + "|" for i in range(30)]
    deck = plan(new_markdown_cell("\n".join(["| name | what |", "|---|---|", *rows])))
    assert len(deck) > 1
    assert all(cell.source.startswith("| name | what |\n|---|---|\n| row") for _, cell in deck)


def test_a_short_lead_in_moves_with_what_it_introduces():
    filler = new_code_cell("\n".join(f"y{i} = {i}" for i in range(20)))
    question = new_markdown_cell("**q1**: the question.")
    answer = new_code_cell("\n".join(f"z{i} = {i}" for i in range(6)))
    kinds = [kind for kind, _ in plan(new_markdown_cell("## Exercises"), filler, question, answer)]
    assert kinds == ["slide", "-", "subslide", "-"]


def test_a_hand_set_slide_type_wins_and_the_cell_stays_whole():
    long_code = new_code_cell("\n".join(f"x{i} = {i}" for i in range(40)),
                              outputs=[new_output("display_data", data=PNG)])
    long_code.metadata["slideshow"] = {"slide_type": "fragment"}
    empty = new_code_cell("")
    deck = plan(new_markdown_cell("# Title"), long_code, empty)
    assert [kind for kind, _ in deck] == ["slide", "fragment", "skip"]
    assert deck[1][1].source == long_code.source and len(deck[1][1].outputs) == 1
