"""The site's index page: notebooks (page + slides), the gallery, and the solutions.

The gallery has one source, the README's "## Gallery" table: each row is
`| [![alt](figures/NAME.png)](LINK) | caption in Markdown |`.
"""
import html
import re
from pathlib import Path

from nbconvert.filters.markdown import markdown2html_mistune

GALLERY_ROW = re.compile(r"^\|\s*\[!\[(?P<alt>[^\]]*)\]\((?P<image>[^)]+)\)\]\((?P<link>[^)]+)\)\s*\|(?P<caption>.*)\|\s*$")
NOTEBOOK_ROW = re.compile(r"^\|\s*\[[^\]]*\]\(notebooks/(?P<file>[^)]+\.ipynb)\)\s*\|(?P<what>.*)\|\s*$")


def section(markdown: str, heading: str) -> str:
    """The text of one '## heading' section of a Markdown document ('' if absent)."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    return match.group(1) if match else ""


def gallery(readme: str) -> list[dict]:
    """The README gallery's rows: alt text, image path, link and caption (Markdown)."""
    rows = (GALLERY_ROW.match(line.strip()) for line in section(readme, "Gallery").splitlines())
    return [row.groupdict() for row in rows if row]


def notebook_blurbs(readme: str) -> dict[str, str]:
    """README 'Notebooks' table: notebook file name -> what it shows (Markdown)."""
    rows = (NOTEBOOK_ROW.match(line.strip()) for line in section(readme, "Notebooks").splitlines())
    return {row["file"]: row["what"].strip() for row in rows if row}


def site_link(link: str) -> str | None:
    """A README link as a link inside the site: notebooks become pages; other repository files have none."""
    if re.match(r"^[a-z]+://", link):
        return link
    if link.startswith("notebooks/") and link.endswith(".ipynb"):
        return link[: -len(".ipynb")] + ".html"
    return None


def inline_markdown(text: str) -> str:
    """Markdown of one table cell as inline HTML, its repository links rewritten for the site."""
    def relink(match: re.Match) -> str:
        target = site_link(match.group(2))
        return f"[{match.group(1)}]({target})" if target else match.group(1)

    text = re.sub(r"(?<!!)\[([^\]]+)\]\(([^)]+)\)", relink, text)
    rendered = markdown2html_mistune(text).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.S)


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; }
main { max-width: 1100px; margin: 0 auto; padding: 1em 1.5em 3em; line-height: 1.5; }
h1 { margin-bottom: 0.2em; } code { background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }
table.notebooks { border-collapse: collapse; width: 100%; }
table.notebooks td { border-top: 1px solid #ddd; padding: 0.4em 0.6em; vertical-align: top; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1.2em; }
.gallery figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 0.6em; background: #fff; }
.gallery img { width: 100%; height: auto; }
.gallery figcaption { font-size: 0.9em; }
"""


def render(readme: str, notebooks: list[dict], solutions: list[dict], extras: list[dict]) -> str:
    """The index page. notebooks/solutions: dicts with title, file, page, slides; extras: title, page."""
    blurbs = notebook_blurbs(readme)
    rows = "\n".join(
        f'<tr><td><a href="{nb["page"]}">{html.escape(nb["title"])}</a></td>'
        f'<td>{inline_markdown(blurbs.get(nb["file"], ""))}</td>'
        f'<td><a href="{nb["slides"]}">slides</a></td></tr>'
        for nb in notebooks
    )
    figures = "\n".join(
        f'<figure><a href="{site_link(row["link"]) or row["image"]}">'
        f'<img src="{html.escape(row["image"])}" alt="{html.escape(row["alt"])}"></a>'
        f"<figcaption>{inline_markdown(row['caption'].strip())}</figcaption></figure>"
        for row in gallery(readme)
    )
    solved = "\n".join(f'<li><a href="{s["page"]}">{html.escape(s["title"])}</a></li>' for s in solutions)
    more = "".join(f'<li><a href="{e["page"]}">{html.escape(e["title"])}</a></li>' for e in extras)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>selfextend: notebooks, slides and figures</title><style>{STYLE}</style></head>
<body><main>
<h1>selfextend</h1>
<p>Understand, see and reproduce <strong>SelfExtend</strong> (<em>LLM Maybe LongLM: Self-Extend LLM Context
Window Without Tuning</em>, Jin et al., ICML 2024, arXiv:2401.01325). Every page here is a notebook of the
repository rendered with its saved outputs; it works offline. To run the code, clone the repository and
run <code>make lab</code>.</p>
{f"<ul>{more}</ul>" if more else ""}
<h2 id="notebooks">Notebooks</h2>
<table class="notebooks">
{rows}
</table>
<h2 id="gallery">Gallery</h2>
<div class="gallery">
{figures}
</div>
<h2 id="solutions">Solutions</h2>
<p>Worked solutions to each notebook's exercises. Try the exercises first.</p>
<ul>
{solved}
</ul>
</main></body>
</html>
"""


def render_markdown_page(title: str, markdown: str, folder: str, mathjax: str) -> str:
    """A stand-alone page for a Markdown document of notebooks/ (e.g. the instructor's guide).

    folder: the document's folder in the repository ("notebooks"); its links to notebooks become links to
    their pages, links to files the site lacks become plain text; mathjax: the <script> tags for formulas.
    """
    def relink(match: re.Match) -> str:
        target = match.group(2)
        if not re.match(r"^[a-z]+://|^#", target):
            target = site_link(f"{folder}/{target}" if folder else target)
        return f"[{match.group(1)}]({target})" if target else match.group(1)

    body = markdown2html_mistune(re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", relink, markdown))
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)}</title><style>{STYLE} a.anchor-link {{ display: none; }}
table {{ border-collapse: collapse; }} th, td {{ border-top: 1px solid #ddd; padding: 0.3em 0.6em; }}</style>
{mathjax}</head>
<body><main><p><a href="index.html">&larr; all notebooks</a></p>
{body}
</main></body>
</html>
"""


if __name__ == "__main__":  # print the parsed gallery: a quick check of the README table
    for row in gallery((Path(__file__).resolve().parents[2] / "README.md").read_text()):
        print(row["image"], "->", site_link(row["link"]))
