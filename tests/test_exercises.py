"""The exercises check themselves: for every exercise of every notebook,

- the starter code (with ____) gives "not attempted";
- the solution (the cell tagged solution:qN, run after the solutions notebook's set-up cells in a fresh
  namespace, after the earlier checked exercises' solutions) gives "correct";
- each listed wrong answer gives "incorrect" with its own message;
- the learner notebooks show the starter code, never call .solution() uncommented, and have at least
  two checked exercises; check() never raises, and its text is the same on every run.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import matplotlib
import pytest
import torch

from selfextend.exercises import (CORRECT, EXPLAIN, INCORRECT, NOT_ATTEMPTED, ____, catalog, exercises, notebooks)
from selfextend.exercises.core import Feedback, Function, Value, Wrong, describe, difference
from selfextend.exercises.solutions import notebook_path, tag, tagged_cells

# Headless plotting in this process only. (Never set MPLBACKEND in os.environ here: the notebook
# kernels that nbval starts later in the same pytest run inherit it and then draw no inline figures.)
matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ALL = [(nb, number, ex) for nb in notebooks() for number, ex in enumerate(catalog(nb), start=1)]
IDS = [f"{nb}-q{number}" for nb, number, _ in ALL]
CHECKED = [item for item in ALL if item[2].checked]
CHECKED_IDS = [f"{nb}-q{number}" for nb, number, ex in ALL if ex.checked]


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_every_numbered_notebook_has_exercises():
    numbered = sorted(p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    missing = [nb for nb in numbered if nb not in notebooks()]
    assert not missing, f"notebooks without selfextend.exercises module: {missing}"


@pytest.mark.parametrize("nb", notebooks())
def test_at_least_two_checked_exercises(nb):
    assert sum(ex.checked for ex in catalog(nb)) >= 2


@pytest.mark.parametrize("nb, number, exercise", ALL, ids=IDS)
def test_starter_is_not_attempted(nb, number, exercise):
    namespace = {"____": ____}
    exec(exercise.starter, namespace)
    feedback = exercises(nb, namespace)[number - 1].feedback()
    assert feedback.status == (NOT_ATTEMPTED if exercise.checked else EXPLAIN), str(feedback)


@pytest.mark.parametrize("nb, number, exercise", ALL, ids=IDS)
def test_every_wrong_answer_gets_its_message(nb, number, exercise):
    for mistake in exercise.wrong:
        feedback = exercise.evaluate(dict(mistake.example))
        assert (feedback.status, feedback.message) == (INCORRECT, mistake.message)


def solution_namespaces(nb: str):
    """Run the solutions notebook's set-up cells (those before the first tagged cell), then each checked
    exercise's tagged cell: yield (number, namespace) after each. (nbval runs every cell anyway.)"""
    path = notebook_path(nb, solutions=True)
    cells = code_cells(path)
    tags = [next((t for t in c.get("metadata", {}).get("tags", []) if t.startswith("solution:")), None) for c in cells]
    first = next(i for i, t in enumerate(tags) if t)
    namespace: dict = {"__name__": "__main__"}
    cwd = Path.cwd()
    os.chdir(path.parent)  # as the kernel would
    try:
        for cell in cells[:first]:
            exec(compile("".join(cell["source"]), f"{path.name} set-up", "exec"), namespace)
        for cell, name in zip(cells[first:], tags[first:]):
            if name and catalog(nb)[int(name.split(":q")[1]) - 1].checked:
                exec(compile("".join(cell["source"]), f"{path.name} {name}", "exec"), namespace)
                yield int(name.split(":q")[1]), namespace
    finally:
        os.chdir(cwd)
        import matplotlib.pyplot as plt
        plt.close("all")


@pytest.mark.parametrize("nb", notebooks())
def test_tagged_solutions_are_correct(nb):
    found = {}
    for number, namespace in solution_namespaces(nb):
        found[number] = catalog(nb)[number - 1].evaluate(namespace)
    checked = {n for n, ex in enumerate(catalog(nb), start=1) if ex.checked}
    assert set(found) == checked, f"tagged solution cells {sorted(found)}, checked exercises {sorted(checked)}"
    wrong = {n: str(f) for n, f in found.items() if f.status != CORRECT}
    assert not wrong, wrong
    tagged = set(tagged_cells(notebook_path(nb, solutions=True)))
    assert tagged == {tag(n) for n in range(1, len(catalog(nb)) + 1)}, f"one tagged cell per exercise: {sorted(tagged)}"


@pytest.mark.parametrize("nb", notebooks())
def test_solution_shows_the_tagged_cell(nb):
    cells = tagged_cells(notebook_path(nb, solutions=True))
    for question in exercises(nb, {}):
        text = question.solution_text()
        assert tag(question.number) in cells
        assert cells[tag(question.number)][1] in text.plain and "```python" in text._repr_markdown_()


@pytest.mark.parametrize("nb", notebooks())
def test_learner_notebook_has_the_exercise_cells(nb):
    path = notebook_path(nb)
    sources = ["".join(c["source"]) for c in code_cells(path)]
    names = ", ".join(f"q{i}" for i in range(1, len(catalog(nb)) + 1))
    assert any(f'{names} = exercises("{nb}", globals())' in s for s in sources), f"{path.name}: the exercises(...) cell"
    for number, exercise in enumerate(catalog(nb), start=1):
        if exercise.checked:
            assert exercise.starter in sources, f"{path.name}: q{number}'s starter code is not in a cell"
            check = next((c for c in code_cells(path) if "".join(c["source"]).startswith(f"q{number}.check()")), None)
            assert check is not None, f"{path.name}: no q{number}.check() cell"
            shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in check["outputs"])
            assert shown.startswith("○ Not attempted yet"), f"{path.name}: q{number}.check() output: {shown!r}"


@pytest.mark.parametrize("nb", notebooks())
def test_learner_notebook_never_calls_solution(nb):
    for cell in code_cells(notebook_path(nb)):
        for line in "".join(cell["source"]).splitlines():
            assert not re.search(r"\.solution\(", line.split("#", 1)[0]), line


@pytest.mark.parametrize("nb", notebooks())
def test_solutions_notebook_checks_show_correct(nb):
    path = notebook_path(nb, solutions=True)
    for cell in code_cells(path):
        if re.fullmatch(r"q\d+\.check\(\)", "".join(cell["source"]).strip()):
            shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in cell["outputs"])
            assert shown.startswith("✓ Correct"), f"{path.name}: {shown!r}"


# ---------------------------------------------------------------------------------------------------------------
# check() never raises, and says the same thing every time


def test_check_never_raises_when_the_function_raises(capsys):
    def boom(*args):
        raise RuntimeError("learner bug")

    for nb, number, exercise in CHECKED:
        if isinstance(exercise, Function):
            namespace = {exercise.names[0]: boom}
            feedback = exercise.evaluate(namespace)
            assert feedback.status == INCORRECT and "RuntimeError: learner bug" in feedback.message
            exercises(nb, namespace)[number - 1].check()  # displays, does not raise
    assert "✗ Incorrect" in capsys.readouterr().out


def test_check_never_raises_on_strange_values():
    class Hostile:
        def __eq__(self, other):
            raise RuntimeError("no comparing me")

        def __repr__(self):
            raise RuntimeError("no printing me")

    for value in (Hostile(), "text", None, [1, 2], {"a": 1}, torch.zeros(3), float("nan"), object()):
        for nb, number, exercise in CHECKED:
            namespace = {name: value for name in exercise.names}
            feedback = exercise.evaluate(namespace)
            assert feedback.status == INCORRECT, (nb, number, value, str(feedback))


@pytest.mark.parametrize("nb, number, exercise", CHECKED, ids=CHECKED_IDS)
def test_feedback_text_is_deterministic(nb, number, exercise):
    answers = [dict(m.example) for m in exercise.wrong] + [{name: object() for name in exercise.names}]
    for answer in answers:
        first, second = exercise.evaluate(dict(answer)), exercise.evaluate(dict(answer))
        assert str(first) == str(second) and first._repr_markdown_() == second._repr_markdown_()
        assert "0x" not in str(first), str(first)


def test_feedback_renders_as_markdown_and_plain_text():
    feedback = Feedback(INCORRECT, "use `//`")
    assert str(feedback) == repr(feedback) == "✗ Incorrect: use `//`"
    assert feedback._repr_markdown_() == "**✗ Incorrect**: use `//`"
    assert str(Feedback(CORRECT)) == "✓ Correct."


def test_check_prints_plain_text_outside_jupyter(capsys):
    question = exercises("01", {})[2]
    question.check()
    question.hint(1)
    question.hint(9)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "○ Not attempted yet: define `never_full_turn` (run the exercise cell above)"
    assert "Hint 1 of 2" in out and "There are 2 hints" in out


# ---------------------------------------------------------------------------------------------------------------
# The machinery itself, on hand-made exercises (so that it can fail)


def test_value_exercise_int_tolerance_and_known_mistake():
    exercise = Value(prompt="shift", names=("shift",), answer=lambda: {"shift": 3},
                     wrong=[Wrong("fractional", {"shift": 4 - 4 / 3})])
    assert exercise.evaluate({"shift": ____}).status == NOT_ATTEMPTED
    assert exercise.evaluate({}).status == NOT_ATTEMPTED
    assert exercise.evaluate({"shift": 3}).status == CORRECT
    assert exercise.evaluate({"shift": 4 - 4 / 3}).message == "fractional"
    assert "is a float" in exercise.evaluate({"shift": 3.0}).message
    assert exercise.evaluate({"shift": 2}).status == INCORRECT


def test_difference_compares_tensors_within_tolerance():
    assert difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-9])) is None
    assert difference(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0])) == "largest difference 0.5"
    assert difference(torch.ones(2, 3), torch.ones(3, 2)) == "shape [2, 3], expected [3, 2]"
    assert difference([True, False], torch.tensor([True, False])) is None
    assert describe(1 / 3) == "0.333333" and describe(2.0) == "2.0"


def test_unknown_notebook_is_a_value_error():
    with pytest.raises(ValueError, match="notebook must be one of"):
        exercises("99", {})
