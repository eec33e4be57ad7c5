"""Parameter checks shared by the methods: each raises ValueError naming the parameter and the range."""
from __future__ import annotations

import numbers

from .._checks import check_non_negative_int, check_positive_int

__all__ = ["check_non_negative_int", "check_positive_int", "check_number_above", "check_below_length"]


def check_number_above(name: str, value, low: float) -> float:
    """Return ``value`` as a float, or raise unless it is a real number > low."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > low:
        raise ValueError(f"{name} must be a number > {low:g}, got {value!r}")
    return float(value)


def check_below_length(name: str, value: int, pretrained_length: int | None, what: str = "") -> None:
    """Raise unless value < pretrained_length (when the length is given): a window inside the trained range."""
    if pretrained_length is None:
        return
    pretrained_length = check_positive_int("pretrained_length", pretrained_length)
    if value >= pretrained_length:
        raise ValueError(
            f"{name} must be in [1, pretrained_length - 1] = [1, {pretrained_length - 1}]{what}, got {value}"
        )
