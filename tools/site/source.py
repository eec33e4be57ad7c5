"""Where the site's files come from: the last commit of the checkout (HEAD), not the files on disk.

A participant's JupyterLab autosaves their answers and half-run notebooks into the working tree; the site
shows the committed notebooks, figures, README and guide instead, read with `git cat-file` from the
commit HEAD pointed to when the build started. Outside a git checkout (a downloaded archive, git not
installed) the build falls back to the working tree and says so in one line; `--working-tree` asks for it
(to preview a notebook before committing it).
"""
from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path


def git(root: Path, *args: str) -> bytes:
    """The stdout of one git command run in root; CalledProcessError or OSError when it fails."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=True).stdout


class Source:
    """Read-only view of the repository's files (relative POSIX paths): a commit's, or the working tree's."""

    def __init__(self, root: Path, commit: str | None = None):
        self.root, self.commit = Path(root), commit
        self._committed: list[str] = []
        if commit is not None:
            listing = git(self.root, "ls-tree", "-r", "-z", "--name-only", commit).decode()
            self._committed = sorted(name for name in listing.split("\0") if name)
        self._known = set(self._committed)

    @property
    def label(self) -> str:
        """'commit 1a2b3c4 (HEAD)' or 'the working tree'."""
        return f"commit {self.commit[:7]} (HEAD)" if self.commit else "the working tree"

    def files(self, pattern: str) -> list[str]:
        """Paths matching a glob of the form 'folder/name*.ext' (no * across folders), sorted."""
        if self.commit is None:
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file())
        depth = pattern.count("/")
        return [p for p in self._committed if p.count("/") == depth and fnmatch.fnmatchcase(p, pattern)]

    def under(self, folder: str) -> list[str]:
        """Every file below a folder (recursively), sorted."""
        if self.commit is None:
            return sorted(p.relative_to(self.root).as_posix() for p in (self.root / folder).rglob("*") if p.is_file())
        return [p for p in self._committed if p.startswith(folder.rstrip("/") + "/")]

    def exists(self, path: str) -> bool:
        """Whether the file is part of this source."""
        return (self.root / path).is_file() if self.commit is None else path in self._known

    def read_bytes(self, path: str) -> bytes:
        """The bytes of one file as committed (or as on disk for the working tree)."""
        if self.commit is None:
            return (self.root / path).read_bytes()
        return git(self.root, "cat-file", "blob", f"{self.commit}:{path}")

    def read_text(self, path: str) -> str:
        """One file decoded as UTF-8."""
        return self.read_bytes(path).decode("utf-8")

    def differs(self, paths: list[str]) -> list[str]:
        """Those of paths (files or folders) whose working-tree files differ from the commit (git status)."""
        if self.commit is None:
            return []
        status = git(self.root, "status", "--porcelain", "-z", "--untracked-files=all", "--", *paths).decode()
        return sorted({entry[3:] for entry in status.split("\0") if len(entry) > 3 and entry[2] == " "})


def open_source(root: Path, working_tree: bool = False) -> tuple[Source, str]:
    """The source to build from and one line saying which (and why, for the working tree)."""
    if working_tree:
        return Source(root), "site/: built from the working tree (--working-tree): uncommitted edits included"
    try:
        top = Path(git(root, "rev-parse", "--show-toplevel").decode().strip())
        commit = git(root, "rev-parse", "--verify", "HEAD^{commit}").decode().strip()
    except (OSError, subprocess.CalledProcessError):
        top, commit = None, ""
    if top is None or not commit or top.resolve() != Path(root).resolve():
        return Source(root), ("site/: not a git checkout with a commit (or git is missing): "
                              "built from the files on disk, whatever they hold")
    source = Source(root, commit)
    changed = source.differs(["README.md", "notebooks", "figures"])
    note = f"site/: built from {source.label}"
    if changed:
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        note += f"; not shown, as uncommitted: {shown} (commit them, or --working-tree to preview)"
    return source, note
