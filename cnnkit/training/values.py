"""Kinds of setting values: how a value is recognised, the rule a setting's value obeys, and command-line parsers.

The settings schema (cnnkit.training.config) builds each setting from these; nothing here names a setting.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tomllib


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


# Tables: a setting whose value is a TOML table (given as an inline table on the command line).


def frozen(value: Any) -> Any:
    """`value` made hashable and immutable: tables (dicts) as FrozenTables, lists as tuples, all the way down."""
    if isinstance(value, dict):
        return value if isinstance(value, FrozenTable) else FrozenTable(value)
    if isinstance(value, (list, tuple)):
        return tuple(frozen(item) for item in value)
    return value


class FrozenTable(dict):  # type: ignore[type-arg]
    """A TOML table as an immutable, hashable dict (so that a RunConfig holding one stays hashable and frozen).

    Nested tables are FrozenTables and lists tuples; `str()` is the table as one TOML inline table, the form the
    command line takes. It pickles and serialises to JSON as a plain dict does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in dict.items(self):
            dict.__setitem__(self, key, frozen(value))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a FrozenTable cannot be changed; build a new one")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenTable, (dict(self),))

    def __str__(self) -> str:
        return toml_inline(self)


def toml_inline(value: Any) -> str:
    """A value as TOML writes it inline: `{ stages = [[16], [32, 32]], norm = "batch" }`, `0.25`, `true`."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # 0.25, 0.0, 1e-05: all TOML floats
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def table_flag(flag: str, example: str) -> Callable[[str], dict[str, Any]]:
    """A TOML inline table (`{ key = value, ... }`) read with tomllib; anything else names the flag and an example."""

    def parse(text: str) -> dict[str, Any]:
        try:
            value = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError as exc:
            raise argparse.ArgumentTypeError(
                f"{flag} must be a TOML inline table such as '{example}' ({exc})"
            ) from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{flag} must be a TOML inline table such as '{example}', got '{text}'")
        return value

    return parse
