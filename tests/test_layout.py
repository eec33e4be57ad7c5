"""The folders are the architecture: imports point only down (mechanism <- viz <- tiny <- hf).

Read with ``ast``, without importing anything, so a forbidden import fails here even when it sits
inside a function that no test calls.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "selfextend"
SUBFOLDERS = {"hf", "tiny", "viz", "methods", "exercises"}

# folder -> the subfolders it must never import ("" is the mechanism at the top of the package)
FORBIDDEN = {
    "": SUBFOLDERS,
    "viz": SUBFOLDERS - {"viz"},
    "tiny": {"hf", "exercises"},
    "methods": {"hf", "tiny", "viz", "exercises"},
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package_dir: Path = PACKAGE) -> set[str]:
    """Every selfextend module that ``path`` imports, relative imports resolved."""
    name = module_name(path, package_dir)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import corpus`
    return {m for m in found if m == "selfextend" or m.startswith("selfextend.")}


def folder_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else ""


def subfolder_imported(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBFOLDERS else None


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_folder_is_known():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= SUBFOLDERS, folders - SUBFOLDERS


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    forbidden = FORBIDDEN.get(folder_of(path), set())
    bad = sorted(m for m in imported_modules(path) if subfolder_imported(m) in forbidden)
    assert not bad, f"selfextend/{path.relative_to(PACKAGE)} imports {bad}: see the folder's __init__.py"


@pytest.mark.parametrize("folder", sorted(f for f in SUBFOLDERS if (PACKAGE / f / "__init__.py").exists()))
def test_each_folder_says_what_it_may_import(folder):
    init = PACKAGE / folder / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "What lives here" in doc and "may import" in doc, f"selfextend/{folder}/__init__.py docstring"


def test_the_checker_catches_an_upward_import(tmp_path):
    """The rule can fail: a mechanism module importing from hf is reported."""
    fake = tmp_path / "selfextend" / "probe.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from .hf.integration import apply\n    from . import viz\n")
    found = {subfolder_imported(m) for m in imported_modules(fake, fake.parent)}
    assert {"hf", "viz"} <= found


def test_import_selfextend_needs_neither_transformers_nor_matplotlib():
    code = ("import sys, selfextend, selfextend.tiny, selfextend.hf; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'transformers', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # selfextend.tiny and selfextend.hf import neither at import time (transformers is loaded lazily)
    assert out.strip() == "[]", out
