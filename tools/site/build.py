"""Build the offline site (`make site`) or only the slides (`make slides`) into site/.

    python tools/site/build.py            # pages, slides, index, figures, static assets
    python tools/site/build.py --slides   # only the slides (and the assets they need)

Notebooks are rendered with their committed outputs (never executed). An output is rebuilt only when
its notebook or these build files changed (hashes in site/.build-manifest.json). Layout of site/:

    index.html                       notebooks, gallery (from the README) and solutions
    notebooks/NN_name.html           one page per notebook, notebooks/solutions/ for the solutions
    slides/NN_name.slides.html       reveal.js slides of each notebook
    figures/                         a copy of figures/ (the gallery's images)
    static/                          MathJax 3, reveal.js and require.js from tools/site/node_modules
    workshop.html                    notebooks/WORKSHOP.md, when it exists
"""
import argparse
import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter, SlidesExporter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import index  # noqa: E402
from slides import SlideMetadata  # noqa: E402
from widgets import StaticWidgets  # noqa: E402

ROOT = HERE.parents[1]
SITE = ROOT / "site"
NODE = HERE / "node_modules"
TEMPLATES = HERE / "templates"
MANIFEST = SITE / ".build-manifest.json"
# Files copied from the npm packages into site/static/ (source under node_modules -> target under static/).
ASSETS = {
    "mathjax/es5/tex-chtml-full.js": "mathjax/tex-chtml-full.js",
    "mathjax/es5/output/chtml/fonts/woff-v2": "mathjax/output/chtml/fonts/woff-v2",
    "requirejs/require.js": "require.js",
    "reveal.js/dist/reveal.js": "reveal.js/dist/reveal.js",
    "reveal.js/dist/reveal.css": "reveal.js/dist/reveal.css",
    "reveal.js/dist/theme/white.css": "reveal.js/dist/theme/white.css",
    "reveal.js/dist/theme/fonts/source-sans-pro": "reveal.js/dist/theme/fonts/source-sans-pro",
    "reveal.js/plugin/notes/notes.js": "reveal.js/plugin/notes/notes.js",
}


def notebooks() -> list[Path]:
    """Every notebook the site shows, learner notebooks first, then the solutions."""
    return sorted(ROOT.glob("notebooks/[0-9]*.ipynb")) + sorted(ROOT.glob("notebooks/solutions/[0-9]*.ipynb"))


def title_of(nb) -> str:
    """The text of a notebook's first heading (its title), without Markdown marks."""
    for cell in nb.cells:
        match = re.match(r"^\s*#+\s+(.+)$", cell.source, flags=re.M) if cell.cell_type == "markdown" else None
        if match:
            return re.sub(r"[`*_$]", "", match.group(1)).strip()
    return "notebook"


def tools_hash() -> str:
    """Hash of everything that shapes an output: these scripts, the templates and the npm lock file."""
    files = sorted(p for p in HERE.rglob("*") if p.is_file() and "node_modules" not in p.parts
                   and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(HERE).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def ensure_node_modules() -> None:
    """`npm ci` in tools/site when node_modules is missing or older than package-lock.json."""
    lock, installed = HERE / "package-lock.json", NODE / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        sys.exit("build: npm is needed once to fetch MathJax and reveal.js (sudo apt-get install npm)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)


def copy_assets() -> None:
    """site/static/ (from node_modules) and site/figures/ (from figures/)."""
    for source, target in ASSETS.items():
        src, dst = NODE / source, SITE / "static" / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    shutil.copytree(ROOT / "figures", SITE / "figures", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.csv", "README.md"))


def page_path(notebook: Path) -> Path:
    """site/notebooks/... .html for notebooks/... .ipynb."""
    return SITE / notebook.relative_to(ROOT).with_suffix(".html")


def slides_path(notebook: Path) -> Path:
    """site/slides/NAME.slides.html (learner notebooks only)."""
    return SITE / "slides" / (notebook.stem + ".slides.html")


def up(path: Path) -> str:
    """The relative prefix from the folder of a site file back to site/ ('..', '../..')."""
    depth = len(path.relative_to(SITE).parts) - 1
    return "/".join([".."] * depth) or "."


def rel(target: Path, start: Path) -> str:
    """target relative to the folder of start, as a URL."""
    return f"{up(start)}/{target.relative_to(SITE).as_posix()}"


def render(job: tuple[str, str]) -> tuple[str, float]:
    """Render one notebook to a page or to slides; returns (output path, seconds)."""
    kind, name = job
    start = time.perf_counter()
    notebook = ROOT / name
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title_of(nb)
    nb, _ = StaticWidgets().preprocess(nb, {})
    out = page_path(notebook) if kind == "page" else slides_path(notebook)
    root = up(out)
    site = {"home": f"{root}/index.html", "slides": None, "pair": None, "pair_label": ""}
    common = dict(extra_template_basedirs=[str(TEMPLATES)], extra_template_paths=[str(TEMPLATES / "common")],
                  mathjax_url=f"{root}/static/mathjax/tex-chtml-full.js",
                  require_js_url=f"{root}/static/require.js")
    if kind == "page":
        exporter = HTMLExporter(template_name="selfextend_lab", **common)
        solution = ROOT / "notebooks" / "solutions" / f"{notebook.stem}_solutions.ipynb"
        if notebook.parent.name != "solutions":
            site["slides"] = rel(slides_path(notebook), out)
            if solution.exists():
                site.update(pair=rel(page_path(solution), out), pair_label="solutions")
        else:
            learner = ROOT / "notebooks" / f"{notebook.stem.removesuffix('_solutions')}.ipynb"
            if learner.exists():
                site.update(pair=rel(page_path(learner), out), pair_label="the notebook")
    else:
        nb, _ = SlideMetadata().preprocess(nb, {})
        exporter = SlidesExporter(template_name="selfextend_reveal", reveal_url_prefix=f"{root}/static/reveal.js",
                                  reveal_theme="white", reveal_number="c/t", **common)
    body, _ = exporter.from_notebook_node(nb, resources={"site": site, "metadata": {"name": notebook.stem}})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return str(out.relative_to(ROOT)), time.perf_counter() - start


def write_index(sources: list[Path]) -> None:
    """site/index.html (and site/workshop.html when notebooks/WORKSHOP.md exists)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    entries = {"notebooks": [], "solutions": []}
    for notebook in sources:
        nb = nbformat.read(notebook, as_version=4)
        entry = {"title": title_of(nb), "file": notebook.name,
                 "page": page_path(notebook).relative_to(SITE).as_posix(),
                 "slides": slides_path(notebook).relative_to(SITE).as_posix()}
        entries["solutions" if notebook.parent.name == "solutions" else "notebooks"].append(entry)
    extras = []
    guide = ROOT / "notebooks" / "WORKSHOP.md"
    if guide.exists():
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES / "common"))
        mathjax = env.get_template("offline_mathjax.html.j2").module.offline_mathjax("static/mathjax/tex-chtml-full.js")
        page = index.render_markdown_page("Workshop guide", guide.read_text(encoding="utf-8"), "notebooks", mathjax)
        (SITE / "workshop.html").write_text(page, encoding="utf-8")
        extras.append({"title": "Workshop guide for instructors", "page": "workshop.html"})
    html = index.render(readme, entries["notebooks"], entries["solutions"], extras)
    (SITE / "index.html").write_text(html, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Build site/ (or only its slides); print what was rebuilt and how long it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", action="store_true", help="build only the slides (site/slides/)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks rendered in parallel (default 2)")
    parser.add_argument("--force", action="store_true", help="rebuild everything")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ensure_node_modules()
    SITE.mkdir(exist_ok=True)
    copy_assets()
    sources = notebooks()
    learner = [p for p in sources if p.parent.name != "solutions"]
    jobs = [("slides", p) for p in learner] + ([] if args.slides else [("page", p) for p in sources])
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() and not args.force else {}
    tools = tools_hash()
    todo, keys = [], {}
    for kind, path in jobs:
        out = page_path(path) if kind == "page" else slides_path(path)
        key = hashlib.sha256((tools + kind).encode() + path.read_bytes()).hexdigest()
        keys[str(out.relative_to(ROOT))] = key
        if manifest.get(str(out.relative_to(ROOT))) != key or not out.exists():
            todo.append((kind, str(path.relative_to(ROOT))))
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, len(todo)))) as pool:
            for out, seconds in pool.map(render, todo):
                print(f"  {out}  {seconds:.1f} s")
    manifest.update(keys)
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if not args.slides:
        write_index(sources)
    print(f"site/: {len(todo)} of {len(jobs)} outputs rebuilt in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
