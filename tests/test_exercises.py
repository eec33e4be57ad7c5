"""The exercises check themselves: for every exercise of every notebook,

- the starter code (with ____) gives "not attempted";
- the solution (the cell tagged solution:qN, run after the solutions notebook's set-up cells in a fresh
  namespace, after the earlier checked exercises' solutions) gives "correct";
- each listed wrong answer gives "incorrect" with its own message;
- the learner notebooks show the starter code, never call .solution() uncommented, and have at least
  two checked exercises; check() never raises, and its text is the same on every run;
- the exercise cells bind no name that the lesson above them binds or reads (re-running a lesson cell
  after the exercises must still work), and neither do the solutions notebook's cells from its first
  solution:qN cell on (a learner pastes what qN.solution() shows into the lesson's notebook);
- a wrong answer's message says what to check (too large, wrong shape, which entry) without the answer.
"""
from __future__ import annotations

import json
import os
import re
import symtable
from pathlib import Path

import matplotlib
import pytest
import torch

from selfextend.exercises import (CORRECT, EXPLAIN, INCORRECT, NOT_ATTEMPTED, ____, catalog, exercises, notebooks)
from selfextend.exercises.core import (Feedback, Function, Value, Wrong, compare_numbers, describe, difference,
                                       fmt_number)
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


def global_names(source: str) -> tuple[set[str], set[str]]:
    """(module-level names the code binds, module-level names it binds or reads), by Python's scope rules.

    The code is parsed by the compiler's own symbol table (built from its ``ast``): a function's parameters
    and locals are its own, but a global it reads (or declares ``global`` and assigns) counts.
    """
    table = symtable.symtable(source, "<cell>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    touched = {s.get_name() for s in table.get_symbols()}
    nested = list(table.get_children())
    while nested:
        scope = nested.pop()
        nested.extend(scope.get_children())
        for symbol in scope.get_symbols():
            if symbol.is_global():
                touched.add(symbol.get_name())
                if symbol.is_assigned():  # `global x` then `x = ...` inside a function
                    bound.add(symbol.get_name())
    return bound, touched


def lesson_and_exercises(path: Path) -> tuple[list[dict], list[dict]]:
    """The code cells before the Markdown cell with the "## Exercises" heading, and those after it."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    heading = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                   and any(line.startswith("## Exercises") for line in "".join(c["source"]).splitlines()))
    code = lambda part: [c for c in part if c["cell_type"] == "code"]
    return code(cells[:heading]), code(cells[heading + 1:])


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


LEARNER = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", LEARNER, ids=[p.name[:2] for p in LEARNER])
def test_exercise_cells_leave_the_lesson_names_alone(path):
    lesson, exercise_cells = lesson_and_exercises(path)
    assert lesson and exercise_cells, f"{path.name}: no '## Exercises' heading between lesson and exercises"
    used = set().union(*(global_names("".join(c["source"]))[1] for c in lesson))
    clashes = {c["id"]: sorted(global_names("".join(c["source"]))[0] & used) for c in exercise_cells}
    clashes = {cell: names for cell, names in clashes.items() if names}
    assert not clashes, f"{path.name}: exercise cells overwrite names the lesson uses: {clashes}"


def solution_part(path: Path) -> tuple[list[dict], list[dict]]:
    """A solutions notebook's code cells: (its set-up, before the first solution:qN cell; that cell and the rest)."""
    cells = code_cells(path)
    tagged = [any(t.startswith("solution:") for t in c["metadata"].get("tags", [])) for c in cells]
    first = tagged.index(True)
    return cells[:first], cells[first:]


@pytest.mark.parametrize("nb", notebooks())
def test_solution_cells_leave_the_lesson_names_alone(nb):
    lesson, _ = lesson_and_exercises(notebook_path(nb))
    setup, solutions = solution_part(notebook_path(nb, solutions=True))
    used = set().union(*(global_names("".join(c["source"]))[1] for c in lesson + setup))
    clashes = {c["id"]: sorted(global_names("".join(c["source"]))[0] & used) for c in solutions}
    clashes = {cell: names for cell, names in clashes.items() if names}
    assert not clashes, f"solutions of {nb}: cells overwrite names the lesson (or the set-up) uses: {clashes}"


def test_global_names_follow_python_scopes():
    lesson = "for n, w in pairs:\n    total = f(n)\ndef f(x):\n    return x * scale\nok = [y for y in range(3)]"
    bound, used = global_names(lesson)
    assert bound == {"n", "w", "total", "f", "ok"}
    assert used == bound | {"pairs", "scale", "range"}  # x and y are local to their scopes
    exercise = "n, w2 = 12, 4\nimport math as m\ndef g(scale):\n    global total\n    total = scale"
    assert global_names(exercise)[0] == {"n", "w2", "m", "g", "total"}
    assert global_names(exercise)[0] & used == {"n", "total"}


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
    assert difference(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0])) == (
        "1 of 2 entries is wrong; the first, at [1], is too large (by 10% to 50%)")
    assert difference(torch.ones(2, 3), torch.ones(3, 2)) == (
        "expected a tensor of shape (3, 2), got (2, 3) (the right number of entries in another arrangement: "
        "transposed or reshaped?)")
    assert difference([True, False], torch.tensor([True, False])) is None
    assert describe(1 / 3) == "0.333333" and describe(2.0) == "2.0"


# ---------------------------------------------------------------------------------------------------------------
# A wrong answer's message says what to check (direction, type, shape, where), never the expected value


def revealed(value, message: str) -> bool:
    """True when ``message`` states ``value`` (a number as a whole token, a tensor as describe() writes it)."""
    if isinstance(value, torch.Tensor):
        return describe(value) in message or (value.numel() == 1 and revealed(value.item(), message))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return re.search(rf"(?<!\d)(?<!\d\.){re.escape(fmt_number(value))}(?!\.?\d)", message) is not None


GRID = torch.arange(1.0, 65.0).reshape(8, 8)
ONE_WRONG = GRID.clone()
ONE_WRONG[5, 2] *= 2
MASK = torch.tensor([[True] * 8 + [False] * 4])
WRONG_ANSWERS = [  # (what a learner gives, the expected value, the message)
    (832, 416, "832 is too large (about 2x the expected value)"),
    (104, 416, "104 is too small (the expected value is about 4x yours)"),
    (417, 416, "417 is off by one (one too many)"),
    (430, 416, "430 is slightly too large (by less than 10%)"),
    (-400, 416, "-400 is too small: it has the wrong sign"),
    (2.75, 2.25, "2.75 is too large (by 10% to 50%)"),
    ("many", 416, "expected an integer, got 'many'"),
    (416.0, 416, "416.0 is a float; positions and counts are integers (use //, int(...) or math.ceil)"),
    (None, 2.25, "expected a number, got None"),
    (torch.ones(8), torch.ones(8, 8), "expected a tensor of shape (8, 8), got (8,)"),
    (MASK[0], MASK, "expected a tensor of shape (1, 12), got (12,) (a dimension of size 1 too many or too few: "
                    "[None], .unsqueeze or .squeeze)"),
    (ONE_WRONG, GRID, "1 of 64 entries is wrong (all in row 5); the first, at [5, 2], is too large "
                      "(about 2x the expected value)"),
    (GRID / 8, GRID, "every entry is smaller than the expected one (which is about 8x yours): a missing or extra factor?"),
    (torch.tensor([[True] * 7 + [False] * 5]), MASK, "1 of 12 entries is wrong; the first, at [0, 7], is False in yours"),
    (~MASK, MASK, "every entry is the opposite of the expected one: True and False are swapped"),
    (MASK.long(), MASK, "a int64 tensor, expected a bool tensor (True / False)"),
]


@pytest.mark.parametrize("got, expected, message", WRONG_ANSWERS, ids=[m[:40] for _, _, m in WRONG_ANSWERS])
def test_wrong_answer_says_what_to_check(got, expected, message):
    assert difference(got, expected) == message
    assert not revealed(expected, message), message


def test_compare_numbers_gives_direction_not_value():
    assert compare_numbers(10, 5) == "too large (about 2x the expected value)"
    assert compare_numbers(5, 10) == "too small (the expected value is about 2x yours)"
    assert compare_numbers(0, 5) == "too small" and compare_numbers(5, 0) == "too large"
    assert compare_numbers(float("nan"), 5).startswith("NaN")


def test_revealed_finds_the_number_as_a_token():
    assert revealed(416, "416 is too large") and revealed(2.25, "got 2.25.") and not revealed(416, "4160, 1416, 0.416")
    assert revealed(torch.tensor([[True, False]]), "it is a tensor of shape [1, 2] (bool): [True, False]")


def test_function_exercise_says_which_case_and_where():
    merge = catalog("03")[3]
    fixed_window = lambda n, g, d, w: torch.where(d >= 4, g, n)  # ignores its window argument
    feedback = merge.evaluate({"merge_logits": fixed_window})
    assert feedback.status == INCORRECT
    assert feedback.message.startswith("for 6 x 6 logits, window=2: 7 of 36 entries are wrong (all in rows 2-5); "
                                       "the first, at [2, 0], is "), feedback.message
    no_return = merge.evaluate({"merge_logits": lambda n, g, d, w: None})
    assert no_return.message == "for 10 x 10 logits, window=4: `merge_logits` returned None (a missing `return`?)"


def perturbed(value):
    """Wrong versions of a number: about twice, about half, one more (an integer), a third (a float)."""
    if isinstance(value, int):
        return [2 * value + 1, value // 2 - 1, value + 1]
    return [2 * value + 0.5, value / 3]


NUMERIC = [(nb, number, ex) for nb, number, ex in CHECKED if isinstance(ex, Value)]


@pytest.mark.parametrize("nb, number, exercise", NUMERIC, ids=[f"{nb}-q{n}" for nb, n, _ in NUMERIC])
def test_value_messages_never_state_the_answer(nb, number, exercise):
    expected = exercise.answer()
    for name in exercise.names:
        if isinstance(expected[name], bool) or not isinstance(expected[name], (int, float)):
            continue
        for wrong in perturbed(expected[name]):
            feedback = exercise.evaluate({**expected, name: wrong})
            assert feedback.status == INCORRECT, (name, wrong, str(feedback))
            assert not revealed(expected[name], feedback.message), (name, wrong, feedback.message)


INTEGER_FUNCTIONS = [(nb, number, ex) for nb, number, ex in CHECKED
                     if isinstance(ex, Function) and isinstance(ex.answer(*ex.cases()[0].args), int)]


@pytest.mark.parametrize("nb, number, exercise", INTEGER_FUNCTIONS, ids=[f"{nb}-q{n}" for nb, n, _ in INTEGER_FUNCTIONS])
def test_function_messages_never_state_the_answer(nb, number, exercise):
    for label, shift in (("twice", lambda x: 2 * x + 1), ("one more", lambda x: x + 1)):
        feedback = exercise.evaluate({exercise.names[0]: lambda *args: shift(exercise.answer(*args))})
        case = next(c for c in exercise.cases() if feedback.message.startswith(f"for {c.label}:"))
        assert not revealed(exercise.answer(*case.args), feedback.message.split(":", 1)[1]), (label, feedback.message)


def test_unknown_notebook_is_a_value_error():
    with pytest.raises(ValueError, match="notebook must be one of"):
        exercises("99", {})
