"""A study directory read into typed runs: the finished ones with their files, and the ones still missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, overload

from cnnkit.errors import DataError, UsageError
from cnnkit.results.files import CONFIG, MANIFEST, RESULT, RunFiles, manifest_path, run_dirs_with_config
from cnnkit.results.reading import (
    ABSENT,
    Degeneracy,
    History,
    Predictions,
    degeneracy,
    epochs_logged,
    load_predictions,
    read_json,
    result_problem,
)
from cnnkit.training.config import DEFAULTS, IDENTITY_KEYS, LEVERS
from cnnkit.training.values import frozen

LEVER_DEFAULTS: dict[str, Any] = {s.name: s.default for s in LEVERS}


@dataclass
class StoredRun:
    """One complete run: its resolved config (config.json, over its study.json entry), its result (result.json)
    and the published figures it reproduces (`reference`)."""

    dir: str
    path: Path
    config: dict[str, Any]
    result: dict[str, Any]
    reference: dict[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        """A setting or result by name (result first); KeyError when the run has neither."""
        for source in (self.result, self.config):
            if key in source:
                return source[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    @cached_property
    def history(self) -> History:
        return History.from_mapping(self.result.get("history") or {})

    @cached_property
    def predictions(self) -> Predictions | None:
        return load_predictions(self.path)

    @cached_property
    def degeneracy(self) -> Degeneracy | None:
        """How close its test predictions come to one class (`.degenerate`: it learned next to nothing); None
        without predictions.npz."""
        predictions = self.predictions
        if predictions is None or predictions.y_true.size == 0:
            return None
        return degeneracy(predictions, self.result.get("test_accuracy"))

    @property
    def degenerate(self) -> bool:
        """Test accuracy within 1 point of the majority class's share, or 99 % of the predictions in one class."""
        return self.degeneracy is not None and self.degeneracy.degenerate

    def setting(self, key: str) -> Any:
        """A run setting, with the default of a setting the run's files predate; lists read as tuples and tables
        (`arch`) as hashable FrozenTables, so that settings group runs into configurations."""
        value = self.get(key, DEFAULTS.get(key))
        if isinstance(value, list):
            return tuple(value)
        if isinstance(value, dict):
            return frozen(value)
        if key in LEVER_DEFAULTS and not value:
            return LEVER_DEFAULTS[key]  # 0, null, [] all mean "off"
        return value

    @property
    def config_key(self) -> tuple[Any, ...]:
        """What makes runs one configuration: every identity setting of the schema (all but the seed)."""
        return tuple(self.setting(k) for k in IDENTITY_KEYS)

    @property
    def stopped_epoch(self) -> int | None:
        """The epoch early stopping ended the run at, when it ended before its planned epochs."""
        stopped = self.result.get("stopped_epoch")
        planned = self.result.get("planned_epochs") or self.get("epochs")
        return int(stopped) if stopped and planned and int(stopped) < int(planned) else None


@dataclass(frozen=True)
class MissingRun:
    """A run listed in study.json (or started on disk) without a sound result.json: not finished, or finished
    with a damaged result.json (`damage` says what is wrong with it, e.g. `not valid JSON (...)`)."""

    dir: str
    spec: dict[str, Any]
    epochs_done: int
    damage: str | None = None

    @property
    def damaged(self) -> bool:
        return self.damage is not None

    @property
    def reason(self) -> str:
        """`damaged: result.json: <what is wrong>` or `not finished`."""
        return f"damaged: {RESULT}: {self.damage}" if self.damage else "not finished"


@dataclass
class StoredStudy:
    name: str
    description: str
    path: Path
    runs: list[Any]
    missing: list[MissingRun] = field(default_factory=list)
    listed: int = 0  # runs named in study.json

    @property
    def damaged(self) -> list[MissingRun]:
        """The missing runs whose result.json is there but damaged."""
        return [run for run in self.missing if run.damaged]


S = TypeVar("S", bound=StoredStudy)


def read_manifest(study_dir: Path) -> dict[str, Any]:
    """study.json as a dict ({} when the study has none); a DataError saying how to rewrite a damaged one."""
    path = manifest_path(study_dir)
    try:
        return read_json(path) if path.is_file() else {}
    except DataError as exc:
        raise DataError(f"{exc}; running the study again (cnnkit run --study ...) rewrites it") from exc


def _runs(study_dir: Path, run_type: type[StoredRun]) -> tuple[dict[str, Any], list[StoredRun], list[MissingRun], int]:
    """(study.json, finished runs, missing runs, runs listed in study.json) of a study directory: the runs its
    study.json lists and the run directories found on disk. A directory that is neither is a UsageError."""
    path = Path(study_dir)
    meta = read_manifest(path)
    found = [run_dir.name for run_dir in run_dirs_with_config(path)]
    if not meta and not found:
        raise UsageError(f"{path} is not a study directory: no {MANIFEST} and no run directories with {CONFIG}")
    entries = [e for e in meta.get("runs", []) if isinstance(e, dict) and e.get("dir")]
    listed = {e["dir"] for e in entries}
    entries += [{"dir": d} for d in found if d not in listed]
    runs: list[StoredRun] = []
    missing: list[MissingRun] = []
    for entry in entries:
        run_dir = path / entry["dir"]
        files = RunFiles(run_dir)
        config = read_json(files.config) if files.config.is_file() else {}
        problem = result_problem(run_dir)
        if problem is not None:  # absent or damaged: unfinished
            damage = None if problem == ABSENT else problem
            missing.append(MissingRun(run_dir.name, {**config, **entry}, epochs_logged(run_dir), damage))
            continue
        reference = entry.get("reference") or None
        run = run_type(run_dir.name, run_dir, {**entry, **config}, read_json(files.result), reference)
        _ = run.history  # validate the curves now, as a DataError
        runs.append(run)
    return meta, runs, missing, len(listed)


@overload
def load_study(study_dir: Path) -> StoredStudy: ...
@overload
def load_study(study_dir: Path, study_type: type[S], run_type: type[StoredRun]) -> S: ...
def load_study(
    study_dir: Path, study_type: type[StoredStudy] = StoredStudy, run_type: type[StoredRun] = StoredRun
) -> StoredStudy:
    """The typed runs of a study directory, as `study_type` holding `run_type`s (the report's own extend them)."""
    meta, runs, missing, listed = _runs(study_dir, run_type)
    return study_type(
        name=str(meta.get("name") or Path(study_dir).name),
        description=str(meta.get("description") or ""),
        path=Path(study_dir),
        runs=runs,
        missing=missing,
        listed=listed,
    )
