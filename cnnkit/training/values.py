"""Kinds of setting values: how a value is recognised, the rule a setting's value obeys, and command-line parsers.

The settings schema (cnnkit.training.config) builds each setting from these; nothing here names a setting.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: `holds(value)`, and `words` for the message `--x must be <words>, got v`."""

    holds: Callable[[Any], bool]
    words: str


def integer_from(minimum: int, words: str | None = None) -> Rule:
    return Rule(lambda v: is_int(v) and v >= minimum, words or f"an integer of at least {minimum}")


def number_in(low: float, high: float, words: str, *, low_open: bool = False) -> Rule:
    """A finite number in [low, high) (or (low, high) with `low_open`)."""
    return Rule(lambda v: is_number(v) and (low < v if low_open else low <= v) and v < high, words)


def positive_number(words: str = "a positive number") -> Rule:
    return Rule(lambda v: is_number(v) and v > 0, words)


def text_matching(pattern: Any, words: str) -> Rule:
    return Rule(lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None, words)


# Command-line parsers (argparse `type=`): a bad text is an ArgumentTypeError naming the flag.


def integer_flag(flag: str, minimum: int) -> Callable[[str], int]:
    """An integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be at least {minimum}, got {text}")
        return value

    return parse


def number_flag(flag: str, above: float | None = None, below: float | None = None) -> Callable[[str], float]:
    """A number, strictly above `above` and strictly below `below` when given (otherwise its range is checked
    with the run's other settings)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got '{text}'") from None
        if above is not None and (value <= above or (below is not None and value >= below)):
            bound = f"between {above} and {below} (exclusive)" if below is not None else f"greater than {above}"
            raise argparse.ArgumentTypeError(f"{flag} must be {bound}, got {text}")
        return value

    return parse


def names_flag(text: str) -> tuple[str, ...]:
    """`flip,crop` -> ('flip', 'crop'); `none` or '' -> ()."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    return () if names == ("none",) else names


def number_text(value: float) -> str:
    """0.1 -> '0.1', 0.0005 -> '0.0005', 1.0 -> '1', 1e-05 -> '1e-05'."""
    return format(value, "g")
