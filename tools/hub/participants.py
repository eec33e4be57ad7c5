"""Participants' Unix accounts and homes: each gets an unprivileged user and a private copy of the notebooks.

    <state>/homes/NAME/            mode 0700, owned by PREFIX+NAME (nobody else can list or read it)
        notebooks/NN_*.ipynb       the learner notebooks, copied at the first start, never overwritten
        notebooks/solutions/       only once the teacher releases them (admin.py release-solutions)
        figures/                   where save_figure writes (SELFEXTEND_FIGURES)
    /run/selfextend-hub/PREFIX+NAME/   mode 0700: JUPYTER_RUNTIME_DIR (kernel sockets, connection files)

A copy is made only for a file the participant does not have, so a restart of their server or of the hub
keeps every saved change; a participant who wants a fresh copy renames theirs and restarts the server.
Accounts are created with useradd, locked (no password: nobody signs in to the machine with them), and
marked by their comment field: an account of that name which the hub did not create is never used.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from limits import kill_until_gone
from room import Room

COMMENT = "selfextend room participant"  # the GECOS field that marks an account the hub created
RELEASED = "solutions-released"  # marker file in the state folder: copy the solutions into every home
LEARNER = "notebooks/[0-9]*.ipynb"
SOLUTIONS = "notebooks/solutions/[0-9]*.ipynb"


class AccountError(RuntimeError):
    """A participant's account cannot be used (e.g. the name belongs to someone else on this machine)."""


def account(room: Room, name: str) -> pwd.struct_passwd | None:
    """The Unix account of participant NAME if it exists; AccountError if it exists but is not the hub's."""
    try:
        entry = pwd.getpwnam(room.system_user(name))
    except KeyError:
        return None
    if entry.pw_gecos.split(",")[0] != COMMENT or Path(entry.pw_dir) != room.homes() / name:
        raise AccountError(f"the account {entry.pw_name} exists on this machine and was not made for this room "
                           f"(home {entry.pw_dir}); pick another --user-prefix")
    return entry


def ensure_account(room: Room, name: str) -> pwd.struct_passwd:
    """Create participant NAME's locked account and private home if missing; return the account."""
    entry = account(room, name)
    home = room.homes() / name
    if entry is None:
        passage(home.parent)
        subprocess.run(["useradd", "--comment", COMMENT, "--home-dir", str(home), "--no-create-home",
                        "--shell", "/bin/bash", "--user-group", room.system_user(name)],
                       check=True, capture_output=True, text=True)
        entry = pwd.getpwnam(room.system_user(name))
    home.mkdir(mode=0o700, exist_ok=True)
    shutil.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    return entry


def passage(folder: Path) -> None:
    """FOLDER owned by root with mode 0711: everyone may pass through to what they own inside, nobody may list it."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, 0, 0)
    folder.chmod(0o711)  # explicitly: the hub runs with umask 077


def private_folder(path: Path, entry: pwd.struct_passwd) -> None:
    """PATH as a real folder of mode 0700 owned by ENTRY, whatever was there before (made by root, not squatted)."""
    passage(path.parent)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.exists() and path.stat().st_uid != entry.pw_uid:
        shutil.rmtree(path)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)


COPY = """
import shutil, sys
from pathlib import Path
target = Path(sys.argv[1])
target.mkdir(parents=True, exist_ok=True)
for source in map(Path, sys.argv[2:]):
    copy = target / source.name
    if not copy.exists() and not copy.is_symlink():
        shutil.copyfile(source, copy)
"""


def copy_missing(sources: list[Path], target: Path, entry: pwd.struct_passwd) -> None:
    """Copy each source file the participant does not have yet into TARGET, running as the participant.

    Never as root: the home is theirs, and a symbolic link they put there (notebooks -> /etc) must lead only
    where they could write anyway."""
    subprocess.run([sys.executable, "-c", COPY, str(target), *map(str, sources)], user=entry.pw_uid,
                   group=entry.pw_gid, extra_groups=[], umask=0o077, cwd=entry.pw_dir, env={"PATH": "/usr/bin:/bin"},
                   check=True, capture_output=True)


def prepare_home(room: Room, name: str) -> pwd.struct_passwd:
    """The account, the home, the learner notebooks (and the solutions once released): before each start."""
    entry = ensure_account(room, name)
    home, repo = Path(entry.pw_dir), Path(room.repo)
    copy_missing(sorted(repo.glob(LEARNER)), home / "notebooks", entry)
    if (Path(room.state) / RELEASED).exists():
        copy_missing(sorted(repo.glob(SOLUTIONS)), home / "notebooks" / "solutions", entry)
    copy_missing([], home / "figures", entry)  # where save_figure writes (SELFEXTEND_FIGURES)
    private_folder(room.runtime_dir(name), entry)
    return entry


def release_solutions(room: Room) -> tuple[list[str], list[str]]:
    """Mark the solutions released and copy them into every existing home now; (who got them, who could not)."""
    (Path(room.state) / RELEASED).touch()
    given, failed = [], []
    for name in room.users:
        entry = account(room, name)
        if entry is None:
            continue
        try:
            copy_missing(sorted(Path(room.repo).glob(SOLUTIONS)), Path(entry.pw_dir) / "notebooks" / "solutions",
                         entry)
            given.append(name)
        except subprocess.CalledProcessError as error:
            failed.append(f"{name} ({(error.stderr or '').strip().splitlines()[-1:] or error})")
    return given, failed


def processes_of(uid: int) -> list[int]:
    """The ids of the processes running as UID (read from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uids.split()[1]) == uid:
            found.append(int(status.parent.name))
    return found


def kill_processes(uid: int, timeout: float = 10.0) -> None:
    """SIGKILL every process of UID, by process id, and wait until none is left."""
    kill_until_gone(lambda: processes_of(uid), timeout)


def remove_account(room: Room, name: str, keep_home: bool = False) -> bool:
    """Delete participant NAME's account (and home unless KEEP_HOME); False when there was none."""
    entry = account(room, name)
    if entry is None:
        return False
    kill_processes(entry.pw_uid)
    subprocess.run(["userdel", entry.pw_name], check=True, capture_output=True, text=True)
    try:  # useradd --user-group made a group of the same name; userdel removes it, unless shared
        grp.getgrnam(entry.pw_name)
        subprocess.run(["groupdel", entry.pw_name], capture_output=True)
    except KeyError:
        pass
    shutil.rmtree(room.runtime_dir(name), ignore_errors=True)
    if not keep_home:
        shutil.rmtree(room.homes() / name, ignore_errors=True)
    return True
