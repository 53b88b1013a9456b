"""A search's trials as a plain table (trials.csv, written by the search from its storage) and brought up to date
from their run directories (`trials/<number>/`), for `cnnkit status`, `StudyResult.trials()` and the report.

The table has one row per trial: `number`, `state` (complete, pruned, running, failed), `value` (its best epoch's
metric), `epochs` (epochs it ran), `pruned_epoch`, then one column per searched setting, each cell the setting's
value as JSON (a list setting's value as a list). Reading it needs neither Optuna nor the search's storage.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnnkit.results.files import trial_dir, trials_table
from cnnkit.results.reading import epochs_logged, finished_trial
from cnnkit.states import TrialState
from cnnkit.storage.atomic import write_text_atomic
from cnnkit.storage.locks import lock_holder

FIXED_COLUMNS = ("number", "state", "value", "epochs", "pruned_epoch")


@dataclass(frozen=True)
class TrialRow:
    """One trial: its number, state, value (None until it has one), the searched settings' values (as the
    settings hold them: lists as tuples), the epochs it ran and, when pruned, the epoch it was pruned at."""

    number: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    epochs: int = 0
    pruned_epoch: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": str(self.state),
            "value": self.value,
            "epochs": self.epochs,
            "pruned_epoch": self.pruned_epoch,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }


def write_trials_table(study_dir: Path, settings: Sequence[str], rows: Sequence[TrialRow]) -> None:
    """Write trials.csv (atomically) with a column per searched setting, in `settings`' order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *settings])
    for row in sorted(rows, key=lambda r: r.number):
        value = "" if row.value is None else repr(float(row.value))
        pruned = "" if row.pruned_epoch is None else row.pruned_epoch
        cells = [json.dumps(_plain(row.params.get(name))) for name in settings]
        writer.writerow([row.number, str(row.state), value, row.epochs, pruned, *cells])
    write_text_atomic(trials_table(study_dir), out.getvalue())


def read_trials_table(study_dir: Path) -> tuple[list[str], list[TrialRow]]:
    """(searched settings, rows) of trials.csv as written; ([], []) when the study has none or it is unreadable."""
    try:
        with trials_table(study_dir).open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except OSError:
        return [], []
    if not lines or tuple(lines[0][: len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        return [], []
    settings = lines[0][len(FIXED_COLUMNS) :]
    rows = []
    for cells in lines[1:]:
        try:
            number, state, value, epochs, pruned = cells[: len(FIXED_COLUMNS)]
            params = {
                name: _held(json.loads(cell)) for name, cell in zip(settings, cells[len(FIXED_COLUMNS) :], strict=True)
            }
            rows.append(
                TrialRow(
                    int(number),
                    TrialState(state),
                    float(value) if value else None,
                    params,
                    int(epochs or 0),
                    int(pruned) if pruned else None,
                )
            )
        except (ValueError, TypeError):
            continue  # a damaged row: the next write of the table restores it
    return settings, rows


def current_trials(study_dir: Path) -> tuple[list[str], list[TrialRow]]:
    """trials.csv's rows with running trials brought up to date from their directories: a trial the table lists
    as running but whose result.json is written is shown finished (its process may not have told the search
    yet); one still running shows the epochs it has logged."""
    settings, rows = read_trials_table(study_dir)
    return settings, [_current(study_dir, row) for row in rows]


def _current(study_dir: Path, row: TrialRow) -> TrialRow:
    if row.state is not TrialState.RUNNING:
        return row
    directory = trial_dir(study_dir, row.number)
    result = finished_trial(directory, quiet=True)
    if result is None:
        return replace(row, epochs=epochs_logged(directory))
    facts = result.get("trial") or {}
    return replace(
        row,
        state=TrialState(facts.get("state", TrialState.COMPLETE)),
        value=facts.get("value"),
        epochs=int(result.get("stopped_epoch") or len(result.get("history", {}).get("val_loss", []))),
        pruned_epoch=facts.get("pruned_epoch"),
    )


def trial_held(study_dir: Path, number: int) -> bool:
    """True while a live process trains the trial (holds its directory's lock)."""
    return lock_holder(trial_dir(study_dir, number)) is not None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _held(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
