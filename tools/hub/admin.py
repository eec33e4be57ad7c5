"""The teacher's two chores for a room, while the hub runs or after it stopped (as root).

    sudo .venv/bin/python tools/hub/admin.py release-solutions     # solutions into every home, now and later
    sudo .venv/bin/python tools/hub/admin.py remove                 # after the course: accounts and homes
    sudo .venv/bin/python tools/hub/admin.py remove --keep-homes    # accounts only (homes stay in <state>)

--state names the room's state folder (default: hub-state/, as serve.py). Bad input: one line, exit code 2.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from participants import AccountError, release_solutions, remove_account  # noqa: E402
from room import ROOT, OneLineParser, Room  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run one chore on the room saved in --state."""
    parser = OneLineParser(prog="admin.py", description=__doc__.splitlines()[0])
    parser.add_argument("chore", choices=["release-solutions", "remove"])
    parser.add_argument("--state", type=Path, default=ROOT / "hub-state", help="the room's state folder")
    parser.add_argument("--keep-homes", action="store_true", help="remove: keep the homes (the notebooks)")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not (options.state / "room.json").is_file():
        parser.exit(2, f"admin.py: {options.state} holds no room (no room.json): give the --state serve.py used\n")
    if os.geteuid() != 0:
        parser.exit(2, "admin.py: run me as root (the homes belong to the participants' accounts)\n")
    room = Room.load(options.state)
    try:
        if options.chore == "release-solutions":
            given, failed = release_solutions(room)
            print(f"Solutions released: in notebooks/solutions/ of {len(given)} home(s) now, and of every home "
                  "at its next server start.")
            if failed:
                print(f"Could not copy them into: {', '.join(failed)}", file=sys.stderr)
                return 1
        else:
            removed = [name for name in room.users if remove_account(room, name, keep_home=options.keep_homes)]
            kept = ", homes kept." if options.keep_homes else " and their homes."
            print(f"Removed {len(removed)} account(s){kept}")
    except AccountError as error:
        parser.exit(2, f"admin.py: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
