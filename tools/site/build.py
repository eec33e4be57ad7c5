"""Build the offline site (`make site`) or only the slides (`make slides`) into site/.

    python tools/site/build.py                  # pages, slides, index, figures, static assets
    python tools/site/build.py --slides         # only the slides (and the assets they need)
    python tools/site/build.py --working-tree   # from the files on disk, uncommitted edits included

Notebooks are rendered with their committed outputs (never executed): every notebook, figure, the README
and the guide are read from the commit HEAD points to (source.py), so answers a participant's JupyterLab
autosaved into the working tree never reach the site; outside a git checkout the build uses the files on
disk and says so. An output is rebuilt only when its notebook or these build files changed (hashes in
site/.build-manifest.json). Layout of site/:

    index.html                       notebooks, gallery (from the README) and solutions
    notebooks/NN_name.html           one page per notebook, notebooks/solutions/ for the solutions
    slides/NN_name.slides.html       reveal.js slides of each notebook
    figures/                         the committed figures/ (the gallery's images)
    static/                          MathJax 3, reveal.js and require.js from tools/site/node_modules
    workshop.html                    notebooks/WORKSHOP.md, when it exists
"""
from __future__ import annotations

import argparse
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
from source import Source, open_source  # noqa: E402
from widgets import StaticWidgets  # noqa: E402

ROOT = HERE.parents[1]
SITE = ROOT / "site"
NODE = HERE / "node_modules"
TEMPLATES = HERE / "templates"
MANIFEST = ".build-manifest.json"  # inside site/
LEARNER, SOLUTIONS = "notebooks/[0-9]*.ipynb", "notebooks/solutions/[0-9]*.ipynb"
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


def notebooks(source: Source) -> list[str]:
    """Every notebook the site shows (repository paths), learner notebooks first, then the solutions."""
    return source.files(LEARNER) + source.files(SOLUTIONS)


def is_solution(name: str) -> bool:
    """Whether a repository path is one of notebooks/solutions/."""
    return name.startswith("notebooks/solutions/")


def pair_of(name: str, available: set[str]) -> str | None:
    """A notebook's solutions notebook, or a solutions notebook's learner notebook, when the source has it."""
    stem = Path(name).stem
    pair = (f"notebooks/{stem.removesuffix('_solutions')}.ipynb" if is_solution(name)
            else f"notebooks/solutions/{stem}_solutions.ipynb")
    return pair if pair in available else None


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


def copy_static(site: Path) -> None:
    """site/static/ (from node_modules)."""
    for source, target in ASSETS.items():
        src, dst = NODE / source, site / "static" / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def copy_figures(source: Source, site: Path) -> int:
    """site/figures/ afresh from the source's figures/ (no CSV, no README); returns the number of files."""
    shutil.rmtree(site / "figures", ignore_errors=True)
    names = [p for p in source.under("figures") if not p.endswith(".csv") and Path(p).name != "README.md"]
    for name in names:
        target = site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes(name))
    return len(names)


def page_path(name: str, site: Path) -> Path:
    """site/notebooks/... .html for the repository path notebooks/... .ipynb."""
    return site / Path(name).with_suffix(".html")


def slides_path(name: str, site: Path) -> Path:
    """site/slides/NAME.slides.html (learner notebooks only)."""
    return site / "slides" / (Path(name).stem + ".slides.html")


def up(path: Path, site: Path) -> str:
    """The relative prefix from the folder of a site file back to site/ ('..', '../..')."""
    depth = len(path.relative_to(site).parts) - 1
    return "/".join([".."] * depth) or "."


def rel(target: Path, start: Path, site: Path) -> str:
    """target relative to the folder of start, as a URL."""
    return f"{up(start, site)}/{target.relative_to(site).as_posix()}"


def render(job: tuple[str, str, str, str, str | None]) -> tuple[str, float]:
    """Render one notebook to a page or to slides; job: (kind, repository path, notebook JSON, site folder,
    the paired notebook or None). Returns (output path, seconds)."""
    kind, name, text, site_dir, pair = job
    start = time.perf_counter()
    folder = Path(site_dir)
    nb = nbformat.reads(text, as_version=4)
    nb.metadata["title"] = title_of(nb)
    nb, _ = StaticWidgets().preprocess(nb, {})
    out = page_path(name, folder) if kind == "page" else slides_path(name, folder)
    root = up(out, folder)
    site = {"home": f"{root}/index.html", "slides": None, "pair": None, "pair_label": ""}
    common = dict(extra_template_basedirs=[str(TEMPLATES)], extra_template_paths=[str(TEMPLATES / "common")],
                  mathjax_url=f"{root}/static/mathjax/tex-chtml-full.js",
                  require_js_url=f"{root}/static/require.js")
    if kind == "page":
        exporter = HTMLExporter(template_name="selfextend_lab", **common)
        if not is_solution(name):
            site["slides"] = rel(slides_path(name, folder), out, folder)
        if pair:
            site.update(pair=rel(page_path(pair, folder), out, folder),
                        pair_label="the notebook" if is_solution(name) else "solutions")
    else:
        nb, _ = SlideMetadata(page=rel(page_path(name, folder), out, folder)).preprocess(nb, {})
        exporter = SlidesExporter(template_name="selfextend_reveal", reveal_url_prefix=f"{root}/static/reveal.js",
                                  reveal_theme="white", reveal_number="c/t", **common)
    body, _ = exporter.from_notebook_node(nb, resources={"site": site, "metadata": {"name": Path(name).stem}})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return (folder.name / out.relative_to(folder)).as_posix(), time.perf_counter() - start


def write_index(source: Source, site: Path, sources: list[str]) -> None:
    """site/index.html (and site/workshop.html when notebooks/WORKSHOP.md exists), from the source's files."""
    readme = source.read_text("README.md")
    entries = {"notebooks": [], "solutions": []}
    for name in sources:
        nb = nbformat.reads(source.read_text(name), as_version=4)
        entry = {"title": title_of(nb), "file": Path(name).name,
                 "page": page_path(name, site).relative_to(site).as_posix(),
                 "slides": slides_path(name, site).relative_to(site).as_posix()}
        entries["solutions" if is_solution(name) else "notebooks"].append(entry)
    extras = []
    guide = "notebooks/WORKSHOP.md"
    if source.exists(guide):
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES / "common"))
        mathjax = env.get_template("offline_mathjax.html.j2").module.offline_mathjax("static/mathjax/tex-chtml-full.js")
        page = index.render_markdown_page("Workshop guide", source.read_text(guide), "notebooks", mathjax)
        (site / "workshop.html").write_text(page, encoding="utf-8")
        extras.append({"title": "Workshop guide for instructors", "page": "workshop.html"})
    html = index.render(readme, entries["notebooks"], entries["solutions"], extras)
    (site / "index.html").write_text(html, encoding="utf-8")


def build(source: Source, site: Path, slides_only: bool = False, jobs: int = 2, force: bool = False) -> tuple[int, int]:
    """Render the source's notebooks into site (pages, slides, index, figures; not site/static/), only what
    changed unless force; jobs=1 renders in this process. Returns (outputs rebuilt, outputs in all)."""
    site.mkdir(parents=True, exist_ok=True)
    copy_figures(source, site)
    sources = notebooks(source)
    available = set(sources)
    work = [("slides", name) for name in sources if not is_solution(name)]
    work += [] if slides_only else [("page", name) for name in sources]
    manifest_file = site / MANIFEST
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() and not force else {}
    tools = tools_hash()
    texts = {name: source.read_bytes(name) for name in sources}
    todo, keys = [], {}
    for kind, name in work:
        out = page_path(name, site) if kind == "page" else slides_path(name, site)
        pair = pair_of(name, available) if kind == "page" else None
        key = hashlib.sha256(f"{tools}{kind}{pair}".encode() + texts[name]).hexdigest()
        keys[out.relative_to(site).as_posix()] = key
        if manifest.get(out.relative_to(site).as_posix()) != key or not out.exists():
            todo.append((kind, name, texts[name].decode("utf-8"), str(site), pair))
    if todo and jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
            done = list(pool.map(render, todo))
    else:
        done = [render(job) for job in todo]
    for out, seconds in done:
        print(f"  {out}  {seconds:.1f} s")
    manifest.update(keys)
    manifest_file.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if not slides_only:
        write_index(source, site, sources)
    return len(todo), len(work)


def main(argv: list[str] | None = None) -> int:
    """Build site/ (or only its slides) from the committed files; print what was rebuilt and how long it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", action="store_true", help="build only the slides (site/slides/)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks rendered in parallel (default 2)")
    parser.add_argument("--force", action="store_true", help="rebuild everything")
    parser.add_argument("--working-tree", action="store_true",
                        help="build from the files on disk, uncommitted edits included (default: the commit HEAD)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ensure_node_modules()
    source, note = open_source(ROOT, working_tree=args.working_tree)
    print(note)
    SITE.mkdir(exist_ok=True)
    copy_static(SITE)
    rebuilt, total = build(source, SITE, slides_only=args.slides, jobs=args.jobs, force=args.force)
    print(f"site/: {rebuilt} of {total} outputs rebuilt in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
