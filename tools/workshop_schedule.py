"""The workshop's timing tables, printed as Markdown from notebooks/workshop_schedule.json.

    python tools/workshop_schedule.py     # paste the output into notebooks/WORKSHOP.md

tests/test_workshop.py checks that WORKSHOP.md contains exactly these tables, so the guide and the
machine-readable schedule cannot drift apart.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = ROOT / "notebooks" / "workshop_schedule.json"


def load(path: Path = SCHEDULE) -> dict:
    """The schedule: {"title", "tracks": [{"id", "title", "minutes", "blocks": [...]}]}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def notebook_title(name: str) -> str:
    """'01 · RoPE and relative positions': the first heading of notebooks/NAME.ipynb."""
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    first = "".join(cells[0]["source"]).splitlines()[0]
    return first.lstrip("# ").strip()


def render_track(track: dict) -> str:
    """One Markdown table: block, minutes, exercises with their minutes."""
    rows = [f"**{track['title']}**", "", "| Block | Minutes | Exercises (minutes each) |", "|---|---:|---|"]
    for block in track["blocks"]:
        if "notebook" in block:
            label = f"{notebook_title(block['notebook'])} (`{block['notebook']}.ipynb`)"
        else:
            label = block["title"]
        exercises = ", ".join(f"{q} ({m})" for q, m in block.get("exercises", {}).items())
        rows.append(f"| {label} | {block['minutes']} | {exercises} |")
    rows.append(f"| **Total** | **{sum(b['minutes'] for b in track['blocks'])}** | |")
    return "\n".join(rows)


def main() -> None:
    print("\n\n".join(render_track(track) for track in load()["tracks"]))


if __name__ == "__main__":
    main()
