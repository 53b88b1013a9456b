"""Run settings given by name (CLI flags, Python keywords) turned into a RunConfig and TrainerOptions.

Both are built from the settings schema (RunConfig's fields), so a setting added there is accepted here without
edits. `None` keeps a setting's default: the CLI passes an unset flag as None, and so may a Python caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from cnnkit.errors import UsageError
from cnnkit.training.config import BY_NAME, DEFAULTS, SETTINGS, RunConfig
from cnnkit.training.loggers import check_logger
from cnnkit.training.runner import TrainerOptions

NAMED = ("dataset", "architecture")  # given by position, never as a setting


def config_names() -> list[str]:
    """Every run setting, the run's own first (dataset, architecture, ...) and the levers after them."""
    return [s.name for s in SETTINGS]


def run_setting_names() -> list[str]:
    """The RunConfig settings a caller may give by name (all but dataset and architecture)."""
    return [name for name in config_names() if name not in NAMED]


def trainer_setting_names() -> list[str]:
    return [f.name for f in fields(TrainerOptions)]


def unknown_setting(name: str, allowed: Iterable[str]) -> UsageError:
    """`unknown setting 'dropuot'; did you mean 'dropout'? (allowed: ...)`."""
    allowed = list(allowed)
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return UsageError(f"unknown setting '{name}'{hint} (allowed: {', '.join(allowed)})")


def _coerce(name: str, value: Any) -> Any:
    """A list (or 'a,b' text) for a tuple-valued setting, such as augment, as the tuple RunConfig holds."""
    if name in BY_NAME and BY_NAME[name].kind is tuple:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list):
            return tuple(value)
    return value


def _given(settings: Mapping[str, Any], allowed: list[str]) -> dict[str, Any]:
    for name in settings:
        if name not in allowed:
            raise unknown_setting(name, allowed)
    return {name: _coerce(name, value) for name, value in settings.items() if value is not None}


def run_config(dataset: str, architecture: str, **settings: Any) -> RunConfig:
    """The RunConfig of `settings` (None: the default); an unknown name is a UsageError listing the allowed ones."""
    return RunConfig(dataset, architecture, **_given(settings, run_setting_names()))


def trainer_options(**settings: Any) -> TrainerOptions:
    """TrainerOptions of `settings` (None: the default), the logger checked as `--logger` is."""
    given = _given(settings, trainer_setting_names())
    if "logger" in given:
        given["logger"] = check_logger(given["logger"])
    return TrainerOptions(**given)


def split_settings(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword settings split into RunConfig ones and TrainerOptions ones; anything else is a UsageError."""
    run_names, trainer_names = run_setting_names(), trainer_setting_names()
    run: dict[str, Any] = {}
    trainer: dict[str, Any] = {}
    for name, value in settings.items():
        if name in run_names:
            run[name] = value
        elif name in trainer_names:
            trainer[name] = value
        else:
            raise unknown_setting(name, run_names + trainer_names)
    return run, trainer


def default_of(name: str) -> Any:
    """A setting's default (what a result file written before the setting existed means)."""
    return DEFAULTS[name]
