"""Exercise objects that check themselves: the placeholder, the feedback, four kinds of check.

A learner's answer lives in the notebook's namespace (``globals()``); an exercise reads the names it
needs from there, compares them with the answer key (the package's own functions) and says what is
wrong. ``check()`` never raises: whatever the learner's code does, the outcome is a ``Feedback``
whose text is the same on every run (no addresses, no timings, floats rounded). A wrong answer's text
says what to check (too large or too small, the type or shape expected, which entry of a tensor) but
never the expected value itself.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

CORRECT, INCORRECT, NOT_ATTEMPTED, EXPLAIN = "correct", "incorrect", "not attempted", "explain"


class Placeholder:
    """The blank ``____`` a learner replaces with an answer."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def __bool__(self) -> bool:
        return False


____ = Placeholder()


# ----------------------------------------------------------------------------------------------------------------
# Feedback: one object, Markdown in Jupyter, plain text in a terminal


_SYMBOLS = {CORRECT: "✓", INCORRECT: "✗", NOT_ATTEMPTED: "○", EXPLAIN: "✎"}
_TITLES = {CORRECT: "Correct", INCORRECT: "Incorrect", NOT_ATTEMPTED: "Not attempted yet", EXPLAIN: "No automatic check"}


@dataclass(frozen=True)
class Feedback:
    """The outcome of ``check()``: status is correct, incorrect, not attempted or explain."""

    status: str
    message: str = ""

    @property
    def title(self) -> str:
        return f"{_SYMBOLS[self.status]} {_TITLES[self.status]}"

    def __str__(self) -> str:
        return f"{self.title}: {self.message}" if self.message else f"{self.title}."

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return f"**{self.title}**: {self.message}" if self.message else f"**{self.title}.**"


@dataclass(frozen=True)
class Text:
    """A hint or a solution: Markdown in Jupyter, plain text in a terminal."""

    markdown: str
    plain: str

    def __str__(self) -> str:
        return self.plain

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return self.markdown


def show(obj) -> None:
    """Display in IPython (Markdown and plain text), print elsewhere; never raise."""
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            from IPython.display import display

            display(obj)
            return
    except Exception:  # no IPython, or no display: fall back to print
        pass
    print(str(obj))


# ----------------------------------------------------------------------------------------------------------------
# Describing and comparing values (deterministic text)

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]+")


def clean(text: str, limit: int = 300) -> str:
    """One line, no memory addresses, at most ``limit`` characters."""
    text = _ADDRESS.sub("", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fmt_number(x) -> str:
    """An int as is, a float with 6 significant digits (no float noise in the text)."""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    text = f"{x:.6g}"
    return text if any(c in text for c in ".en") else text + ".0"


def describe(value) -> str:
    """A short, deterministic description of a value for a feedback message."""
    try:
        if value is ____:
            return "____"
        if value is None:
            return "None"
        if isinstance(value, (bool, int, float)):
            return fmt_number(value)
        if isinstance(value, torch.Tensor):
            shape = "[" + ", ".join(str(s) for s in value.shape) + "]"
            if value.numel() <= 12:
                items = value.flatten().tolist()
                shown = ", ".join(fmt_number(v) for v in items)
                return f"tensor of shape {shape} ({str(value.dtype).replace('torch.', '')}): [{shown}]"
            return f"tensor of shape {shape} ({str(value.dtype).replace('torch.', '')})"
        if isinstance(value, (list, tuple)):
            inner = ", ".join(describe(v) for v in value[:12]) + (", ..." if len(value) > 12 else "")
            return f"[{inner}]" if isinstance(value, list) else f"({inner})"
        if isinstance(value, (set, frozenset)):
            return "{" + ", ".join(sorted(describe(v) for v in value)) + "}"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{describe(k)}: {describe(v)}" for k, v in list(value.items())[:12]) + "}"
        if isinstance(value, str):
            return repr(clean(value, 60))
        if callable(value):
            return f"a function ({getattr(value, '__name__', type(value).__name__)})"
        return f"a {type(value).__name__}"
    except Exception:
        return f"a {type(value).__name__}"


def contains_placeholder(value) -> bool:
    """True when ``value`` is ``____`` or holds it (in a list, tuple, set or dict)."""
    if value is ____:
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(contains_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(contains_placeholder(v) for v in value.values())
    return False


def _about(ratio: float) -> str:
    """A ratio > 1 rounded for a message: '2x', '2.5x', '13x'."""
    rounded = round(ratio * 2) / 2 if ratio < 10 else float(f"{ratio:.2g}")
    return f"{rounded:g}x"


def compare_numbers(got: float, expected: float) -> str:
    """How a wrong number compares with the expected one, without giving it: 'too large (about 2x ...)'."""
    got, expected = float(got), float(expected)
    if math.isnan(got):
        return "NaN (not a number): look for 0 / 0 or inf - inf"
    if math.isinf(got):
        return f"{'+' if got > 0 else '-'}inf: look for a division by zero or an overflow"
    side = "too large" if got > expected else "too small"
    if math.isnan(expected) or math.isinf(expected) or got == expected:
        return "not the expected value"
    if got.is_integer() and expected.is_integer() and abs(got - expected) == 1:
        return f"off by one (one {'too many' if got > expected else 'too few'})"
    if expected == 0 or got == 0:
        return side
    ratio = got / expected
    if ratio < 0:
        return f"{side}: it has the wrong sign"
    if ratio >= 1.5:
        return f"{side} (about {_about(ratio)} the expected value)"
    if ratio <= 1 / 1.5:
        return f"{side} (the expected value is about {_about(1 / ratio)} yours)"
    return f"slightly {side} (by less than 10%)" if abs(ratio - 1) < 0.1 else f"{side} (by 10% to 50%)"


def _shape(shape) -> str:
    """A shape as a Python tuple: (8, 8), (8,), ()."""
    return str(tuple(int(s) for s in shape))


def _index(flat: int, shape) -> str:
    """The index [i, j, ...] of entry ``flat`` of a tensor of ``shape`` (row-major)."""
    index = []
    for size in reversed(tuple(shape)):
        flat, rest = divmod(flat, int(size))
        index.append(rest)
    return "[" + ", ".join(str(i) for i in reversed(index)) + "]"


def _runs(indices: list[int], limit: int = 6) -> str:
    """0, 1, 2, 5, 7, 8 as '0-2, 5, 7-8' (at most ``limit`` runs, then '...')."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    return ", ".join(text) + (", ..." if len(runs) > limit else "")


def _where(wrong: torch.Tensor) -> tuple[int, str]:
    """(flat index of the first wrong entry, 'k of n entries are wrong' plus the rows that hold them)."""
    first = int(wrong.flatten().nonzero()[0])
    count = int(wrong.sum())
    text = f"{count} of {wrong.numel()} entries {'is' if count == 1 else 'are'} wrong"
    if wrong.dim() >= 2 and wrong.shape[-2] > 1:
        rows = wrong.reshape(-1, wrong.shape[-2], wrong.shape[-1]).any(dim=0).any(dim=-1)
        if not bool(rows.all()):
            found = rows.nonzero().flatten().tolist()
            text += f" (all in row{'s' if len(found) > 1 else ''} {_runs(found)}"
            text += ")" if wrong.dim() == 2 else " of dimension -2)"
    return first, text


def _tensor_difference(got: torch.Tensor, expected: torch.Tensor, tolerance: float) -> str | None:
    """None when two tensors of the same shape agree, else how many entries differ, where, and which way."""
    if expected.dtype == torch.bool:
        if got.dtype != torch.bool:
            return f"a {str(got.dtype).replace('torch.', '')} tensor, expected a bool tensor (True / False)"
        wrong = got != expected
        if not bool(wrong.any()):
            return None
        if bool(wrong.all()):
            return "every entry is the opposite of the expected one: True and False are swapped"
        first, text = _where(wrong)
        return f"{text}; the first, at {_index(first, got.shape)}, is {bool(got.flatten()[first])} in yours"
    if got.is_floating_point() or expected.is_floating_point():
        got, expected = got.to(torch.float64), expected.to(torch.float64)
    if got.dim() == 0:
        close = abs(float(got) - float(expected)) <= tolerance * max(1.0, abs(float(expected)))
        return None if close else f"{describe(float(got))} is {compare_numbers(float(got), float(expected))}"
    if got.is_floating_point():
        nan = torch.isnan(got) & ~torch.isnan(expected)
        if bool(nan.any()):
            first = int(nan.flatten().nonzero()[0])
            return f"it contains NaN (the first at {_index(first, got.shape)}): look for 0 / 0 or inf - inf"
        infinite = (torch.isinf(got) | torch.isinf(expected)) & (got != expected)
        if bool(infinite.any()):
            first = int(infinite.flatten().nonzero()[0])
            yours, masked = float(got.flatten()[first]), bool(torch.isinf(expected.flatten()[first]))
            state = ("is finite, but that entry is masked (infinite)" if not math.isinf(yours) else
                     "is infinite, but that entry is not masked" if not masked else "is the infinity of the other sign")
            return f"the infinite (masked) entries are not where they should be: at {_index(first, got.shape)} yours {state}"
        finite = torch.isfinite(expected)
        scale = max(1.0, float(expected[finite].abs().max()) if bool(finite.any()) else 1.0)
        wrong = (got - expected).abs().nan_to_num(0.0) > tolerance * scale
    else:
        wrong = got != expected
    if not bool(wrong.any()):
        return None
    if got.is_floating_point():
        factor = _common_factor(got, expected, tolerance * scale)
        if factor is not None and abs(factor + 1) < 1e-3:
            return "every entry has the wrong sign"
        if factor is not None:
            size = (f"about {_about(abs(factor))} the expected one" if abs(factor) >= 1 else
                    f"smaller than the expected one (which is about {_about(1 / abs(factor))} yours)")
            return f"every entry is {size}" + (" with the wrong sign" if factor < 0 else "") + ": a missing or extra factor?"
    first, text = _where(wrong)
    direction = compare_numbers(float(got.flatten()[first]), float(expected.flatten()[first]))
    return f"{text}; the first, at {_index(first, got.shape)}, is {direction}"


def _common_factor(got: torch.Tensor, expected: torch.Tensor, tolerance: float) -> float | None:
    """The factor c when got = c * expected in every entry (c != 1, to 0.1%), else None."""
    nonzero = expected.abs() > tolerance
    if int(nonzero.sum()) < 2 or not bool(torch.isfinite(expected).all()):
        return None
    if bool(((got - expected).abs() > tolerance)[~nonzero].any()):
        return None
    ratios = got[nonzero] / expected[nonzero]
    factor = float(ratios.median())
    if factor == 0 or abs(factor - 1) < 1e-3 or float((ratios - factor).abs().max()) > 1e-3 * abs(factor):
        return None
    return factor


def _shape_hint(got: tuple, expected: tuple) -> str:
    """What a wrong shape usually means: a transpose or reshape, or a size-1 dimension too many or too few."""
    if tuple(s for s in got if s != 1) == tuple(s for s in expected if s != 1):
        return " (a dimension of size 1 too many or too few: [None], .unsqueeze or .squeeze)"
    if math.prod(got) == math.prod(expected):
        return " (the right number of entries in another arrangement: transposed or reshaped?)"
    return ""


def difference(got, expected, tolerance: float = 1e-6) -> str | None:
    """None when ``got`` equals ``expected`` (numbers within ``tolerance``), else what differs and which way.

    The text never states the expected value: it says too large or too small (and by about how much),
    the expected type or shape, and for a tensor how many entries are wrong and where the first one is.
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            try:
                got = torch.as_tensor(got)
            except Exception:
                return f"expected a tensor of shape {_shape(expected.shape)}, got {describe(got)}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"expected a tensor of shape {_shape(expected.shape)}, got {_shape(got.shape)}" + _shape_hint(
                tuple(got.shape), tuple(expected.shape))
        return _tensor_difference(got, expected, tolerance)
    if isinstance(expected, bool):
        if not isinstance(got, bool):
            return f"expected True or False, got {describe(got)}"
        return None if got == expected else f"{describe(got)} is not right"
    if isinstance(expected, int):
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
            got = int(got)
        if isinstance(got, float) or (isinstance(got, torch.Tensor) and got.is_floating_point()):
            return f"{describe(got)} is a float; positions and counts are integers (use //, int(...) or math.ceil)"
        if not isinstance(got, int) or isinstance(got, bool):
            return f"expected an integer, got {describe(got)}"
        return None if got == expected else f"{describe(got)} is {compare_numbers(got, expected)}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = float(got)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"expected a number, got {describe(got)}"
        return None if abs(got - expected) <= tolerance * max(1.0, abs(expected)) else (
            f"{describe(got)} is {compare_numbers(got, expected)}")
    if isinstance(expected, (set, frozenset)):
        if not isinstance(got, (set, frozenset)):
            return f"expected a set, got {describe(got)}"
        extra, missing = set(got) - set(expected), set(expected) - set(got)
        parts = ([f"{describe(extra)} should not be in it"] if extra else []) + (
            [f"{len(missing)} element{'s are' if len(missing) > 1 else ' is'} missing"] if missing else [])
        return "; ".join(parts) or None
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {type(expected).__name__} of {len(expected)} items, got {describe(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for index, (g, e) in enumerate(zip(got, expected)):
            gap = difference(g, e, tolerance)
            if gap is not None:
                return f"item {index}: {gap}"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got {describe(got)}"
        if set(got) != set(expected):
            return f"keys {describe(sorted(got, key=str))}, expected {describe(sorted(expected, key=str))}"
        for key in expected:
            gap = difference(got[key], expected[key], tolerance)
            if gap is not None:
                return f"[{describe(key)}]: {gap}"
        return None
    if type(got) is not type(expected):
        return f"expected a {type(expected).__name__}, got {describe(got)}"
    return None if got == expected else f"{describe(got)} is not the expected {type(expected).__name__}"


def raised(error: BaseException, where: str) -> str:
    """A learner's exception as one readable, deterministic line."""
    return f"{where} raised {type(error).__name__}: {clean(error, 200)}"


# ----------------------------------------------------------------------------------------------------------------
# The four kinds of exercise


@dataclass
class Wrong:
    """A known wrong answer and the message it earns.

    ``example``: what a learner who makes the mistake writes, name -> value (a function for a
    function exercise). ``when``: optional predicate that recognises the mistake (over the learner's
    values for a value exercise, over the list of the function's outputs for a function exercise);
    without it the mistake is recognised by equality with ``example`` (its outputs, for a function).
    """

    message: str
    example: dict
    when: Callable[..., bool] | None = None


@dataclass
class Case:
    """One input of a function exercise: positional arguments and a label for messages."""

    args: tuple
    label: str


@dataclass
class Exercise:
    """Base: a prompt, hints, the names the learner fills in, the starter code with ____."""

    prompt: str
    hints: Sequence[str] = ()
    names: tuple = ()
    starter: str = ""
    wrong: list = field(default_factory=list)
    errors: Sequence[tuple[str, str]] = ()  # (text in a learner's exception, what it usually means)
    kind: str = "explain"

    @property
    def checked(self) -> bool:
        return self.kind != "explain"

    def evaluate(self, namespace: dict) -> Feedback:
        """Feedback for the answer in ``namespace``; never raises."""
        try:
            return self._evaluate(namespace)
        except Exception as error:  # a bug in a learner's object (e.g. a broken __eq__) must not escape
            return Feedback(INCORRECT, raised(error, "checking your answer"))

    def _missing(self, namespace: dict) -> Feedback | None:
        missing = [n for n in self.names if n not in namespace]
        if missing:
            return Feedback(NOT_ATTEMPTED, f"define `{missing[0]}` (run the exercise cell above)")
        blank = [n for n in self.names if contains_placeholder(namespace[n])]
        if blank:
            return Feedback(NOT_ATTEMPTED, f"replace `____` in `{blank[0]}` with your answer")
        return None

    def _evaluate(self, namespace: dict) -> Feedback:
        return Feedback(EXPLAIN, "discuss or write your answer, then compare it with `.solution()`")


@dataclass
class Value(Exercise):
    """Check one or more values against ``answer()`` (name -> expected value), within ``tolerance``."""

    answer: Callable[[], dict] = dict
    tolerance: float = 1e-6
    kind: str = "value"

    def _evaluate(self, namespace: dict) -> Feedback:
        missing = self._missing(namespace)
        if missing:
            return missing
        got = {n: namespace[n] for n in self.names}
        for mistake in self.wrong:
            if _matches_value(mistake, got, self.tolerance):
                return Feedback(INCORRECT, mistake.message)
        expected = self.answer()
        for name in self.names:
            gap = difference(got[name], expected[name], self.tolerance)
            if gap is not None:
                return Feedback(INCORRECT, f"`{name}`: {gap}")
        return Feedback(CORRECT, _well_done(self.names))


def _matches_value(mistake: Wrong, got: dict, tolerance: float) -> bool:
    try:
        if mistake.when is not None:
            return bool(mistake.when(*(got[n] for n in got)))
        return all(name in mistake.example and difference(got[name], mistake.example[name], tolerance) is None
                   and _same_kind(got[name], mistake.example[name]) for name in got)
    except Exception:
        return False


def _same_kind(a, b) -> bool:
    """Floats match floats, ints match ints: 3 is not the mistake 3.0."""
    number = (int, float)
    if isinstance(a, number) and isinstance(b, number):
        return isinstance(a, float) == isinstance(b, float)
    return True


@dataclass
class Function(Exercise):
    """Run the learner's function ``names[0]`` on ``cases()`` and compare with ``answer`` (the key)."""

    answer: Callable = None
    cases: Callable[[], list] = list
    tolerance: float = 1e-6
    kind: str = "function"

    def _evaluate(self, namespace: dict) -> Feedback:
        missing = self._missing(namespace)
        if missing:
            return missing
        name = self.names[0]
        function = namespace[name]
        if not callable(function):
            return Feedback(INCORRECT, f"`{name}` must be a function (def {name}(...): ...), got {describe(function)}")
        cases = self.cases()
        outputs = []
        for case in cases:
            try:
                out = function(*_fresh(case.args))
            except Exception as error:
                message = raised(error, f"your function `{name}`, called for {case.label},")
                return Feedback(INCORRECT, message + _likely_cause(error, self.errors))
            if contains_placeholder(out):
                return Feedback(NOT_ATTEMPTED, f"`{name}` still returns `____`: replace it with your code")
            outputs.append(out)
        for mistake in self.wrong:
            if mistake.when is not None:
                if _safe(mistake.when, outputs):
                    return Feedback(INCORRECT, mistake.message)
            elif self._same_as(mistake.example[name], cases, outputs):
                return Feedback(INCORRECT, mistake.message)
        for case, out in zip(cases, outputs):
            gap = difference(out, self.answer(*_fresh(case.args)), self.tolerance)
            if gap is not None and out is None:
                return Feedback(INCORRECT, f"for {case.label}: `{name}` returned None (a missing `return`?)")
            if gap is not None:
                return Feedback(INCORRECT, f"for {case.label}: {gap}")
        return Feedback(CORRECT, f"`{name}` agrees with the package on {len(cases)} cases.")

    def _same_as(self, wrong_function, cases, outputs) -> bool:
        try:
            return all(difference(out, wrong_function(*_fresh(case.args)), self.tolerance) is None
                       and _same_kind(out, wrong_function(*_fresh(case.args)))
                       for case, out in zip(cases, outputs))
        except Exception:
            return False


def _safe(predicate, *args) -> bool:
    try:
        return bool(predicate(*args))
    except Exception:
        return False


def _likely_cause(error: BaseException, errors) -> str:
    text = str(error)
    for needle, meaning in errors:
        if needle in text:
            return f" ({meaning})"
    return ""


def _fresh(args: tuple) -> tuple:
    """Copies of tensor arguments, so a learner's in-place edit cannot change the answer key's input."""
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


@dataclass
class Predicate(Exercise):
    """A custom check over several names: ``test(**values)`` returns None when right, else a message."""

    test: Callable[..., str | None] = None
    kind: str = "predicate"

    def _evaluate(self, namespace: dict) -> Feedback:
        missing = self._missing(namespace)
        if missing:
            return missing
        values = {n: namespace[n] for n in self.names}
        try:
            message = self.test(**values)
        except Exception as error:
            return Feedback(INCORRECT, raised(error, "your answer") + _likely_cause(error, self.errors))
        return Feedback(CORRECT, _well_done(self.names)) if message is None else Feedback(INCORRECT, clean(message, 400))


@dataclass
class Explain(Exercise):
    """No automatic check: a question to think or talk about; the solution is shown on request."""

    kind: str = "explain"


def _well_done(names) -> str:
    return ", ".join(f"`{n}`" for n in names) + (" is right." if len(names) == 1 else " are right.")
