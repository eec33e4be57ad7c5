"""Exercises that check themselves, one object per exercise of a notebook.

    from selfextend.exercises import ____, exercises
    q1, q2, q3 = exercises("02", globals())   # the exercises of notebook 02, reading this namespace
    shift = ____                              # the learner replaces ____ with an answer
    q1.check()                                # ✓ correct / ✗ what is wrong / ○ not attempted yet
    q1.hint(); q1.hint(2); q1.solution()

What lives here: ``core`` (the placeholder ``____``, the feedback object, the four kinds of
exercise: a value with a tolerance, a function run on several cases against the package's own
function, a custom predicate over several names, and "explain" with no check), ``solutions``
(a solution is the cell tagged ``solution:qN`` in ``notebooks/solutions/NN_*_solutions.ipynb``,
so each solution has one source, which nbval runs), and one module per notebook (``nb01`` ..),
each listing that notebook's exercises in order with hints and known wrong answers.

What it may import: the mechanism at the top of ``selfextend``, ``selfextend.tiny`` and
``selfextend.viz``, and ``selfextend.hf`` only lazily inside a check (transformers stays
unloaded until an exercise needs it). Nothing in the package imports ``exercises``: it is for
the notebooks and the workshop (``notebooks/WORKSHOP.md``).
"""
from __future__ import annotations

import importlib

from .core import CORRECT, EXPLAIN, INCORRECT, NOT_ATTEMPTED, Exercise, Feedback, Text, ____, show
from .solutions import notebook_path, tag, tagged_cells

# notebook number -> module listing its exercises
MODULES = {
    "01": "nb01", "02": "nb02", "03": "nb03", "04": "nb04", "05": "nb05",
    "06": "nb06", "07": "nb07", "08": "nb08", "09": "nb09", "10": "nb10", "11": "nb11", "12": "nb12",
    "13": "nb13",
}


def _key(notebook) -> str:
    text = str(notebook).strip()
    digits = text.split("_")[0]
    if not digits.isdigit():
        raise ValueError(f"notebook must be a number like '02', got {notebook!r}")
    return f"{int(digits):02d}"


def notebooks() -> list[str]:
    """The notebooks that have exercises ("01", "02", ...)."""
    found = []
    for key, module in MODULES.items():
        try:
            importlib.import_module(f".{module}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{module}":
                raise
            continue
        found.append(key)
    return found


def catalog(notebook) -> list[Exercise]:
    """The exercises of ``notebook`` ("01" .. ), in order (q1 first)."""
    key = _key(notebook)
    if key not in notebooks():
        raise ValueError(f"notebook must be one of {notebooks()}, got {notebook!r}")
    return list(importlib.import_module(f".{MODULES[key]}", __name__).EXERCISES)


class Question:
    """Exercise ``number`` of a notebook, bound to the namespace that holds the learner's answers."""

    def __init__(self, notebook: str, number: int, exercise: Exercise, namespace: dict):
        self.notebook, self.number, self.exercise, self.namespace = notebook, number, exercise, namespace

    def __repr__(self) -> str:
        kind = "checked" if self.exercise.checked else "explain"
        return f"<exercise q{self.number} of notebook {self.notebook} ({kind}): {self.exercise.prompt}>"

    def feedback(self) -> Feedback:
        """The check's outcome as an object (what ``check()`` displays)."""
        return self.exercise.evaluate(self.namespace)

    def check(self) -> None:
        """Display ✓ correct, ✗ what is wrong, or ○ not attempted yet. Never raises."""
        show(self.feedback())

    def hint(self, n: int = 1) -> None:
        """Display hint ``n`` (1, 2, ...)."""
        show(self.hint_text(n))

    def hint_text(self, n: int = 1) -> Text:
        hints = list(self.exercise.hints)
        if not hints:
            return Text("No hint for this exercise.", "No hint for this exercise.")
        if not isinstance(n, int) or not 1 <= n <= len(hints):
            text = f"There are {len(hints)} hints: q{self.number}.hint(1) .. q{self.number}.hint({len(hints)})."
            return Text(text, text)
        head = f"Hint {n} of {len(hints)}"
        return Text(f"**{head}:** {hints[n - 1]}", f"{head}: {hints[n - 1]}")

    def solution(self) -> None:
        """Display the solution: the cell tagged solution:qN in the solutions notebook."""
        show(self.solution_text())

    def solution_text(self) -> Text:
        try:
            path = notebook_path(self.notebook, solutions=True)
            cells = tagged_cells(path)
        except Exception as error:
            text = f"Solution not found ({type(error).__name__}: {error})."
            return Text(text, text)
        if tag(self.number) not in cells:
            text = f"Solution not found: no cell tagged {tag(self.number)} in solutions/{path.name}."
            return Text(text, text)
        explanation, code = cells[tag(self.number)]
        head = f"Solution to q{self.number} (solutions/{path.name})"
        markdown = f"**{head}**\n\n" + (explanation + "\n\n" if explanation else "") + f"```python\n{code}\n```"
        plain = head + "\n\n" + (explanation + "\n\n" if explanation else "") + code
        return Text(markdown, plain)


def exercises(notebook, namespace: dict) -> tuple[Question, ...]:
    """One object per exercise of ``notebook``, reading the learner's answers from ``namespace``."""
    key = _key(notebook)
    if not isinstance(namespace, dict):
        raise ValueError("namespace must be a dict: pass globals()")
    return tuple(Question(key, i, ex, namespace) for i, ex in enumerate(catalog(key), start=1))


__all__ = ["CORRECT", "EXPLAIN", "INCORRECT", "NOT_ATTEMPTED", "Exercise", "Feedback", "Question",
           "____", "catalog", "exercises", "notebooks"]
