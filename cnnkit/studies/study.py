"""Studies: named lists of runs, registered by plugins or read from a TOML file, run one after another."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from cnnkit.errors import UsageError

RUN_KEYS = {
    "dataset": str,
    "architecture": str,
    "optimizer": str,
    "epochs": int,
    "batch_size": int,
    "val_split": float,
    "seeds": list,
    "preset": str,
    "lr": float,
    "reference": dict,
}
TOP_KEYS = {"name", "description", "defaults", "runs"}


@dataclass(frozen=True)
class RunSpec:
    """One configuration of a study, run once per seed. `reference`: published figures it reproduces."""

    dataset: str
    architecture: str
    optimizer: str = "adam"
    epochs: int = 10
    batch_size: int = 128
    val_split: float = 0.2
    seeds: tuple[int, ...] = (0,)
    preset: str = "keras"
    lr: float | None = None
    reference: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Study:
    name: str
    runs: tuple[RunSpec, ...]
    description: str = ""
    source: str = field(default="", compare=False)

    def expand(
        self, epochs: int | None = None, subset: int | None = None, seeds: Sequence[int] | None = None
    ) -> list[tuple[Any, RunSpec]]:
        """(RunConfig, its spec) for every run and seed, with command-line overrides applied."""
        from cnnkit.training.runner import RunConfig

        planned = []
        for spec in self.runs:
            for seed in seeds if seeds is not None else spec.seeds:
                planned.append(
                    (
                        RunConfig(
                            dataset=spec.dataset,
                            architecture=spec.architecture,
                            optimizer=spec.optimizer,
                            preset=spec.preset,
                            seed=seed,
                            epochs=epochs or spec.epochs,
                            batch_size=spec.batch_size,
                            val_split=spec.val_split,
                            subset=subset,
                            lr=spec.lr,
                        ),
                        spec,
                    )
                )
        return planned


def load_study_file(path: str | Path) -> Study:
    """Read and validate a study TOML file; every mistake is a UsageError naming the file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read study file {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: TOML syntax error: {exc}") from exc

    def fail(message: str, key: str | None = None, run: int | None = None) -> UsageError:
        line = _line_of(text, key, run)
        return UsageError(f"{path}{f', line {line}' if line else ''}: {message}")

    for key in data:
        if key not in TOP_KEYS:
            raise fail(f"unknown key '{key}' (allowed: {', '.join(sorted(TOP_KEYS))})", key)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise fail("'name' must be text of letters, digits, '_', '-' or '.'", "name")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise fail("'defaults' must be a table ([defaults])", "defaults")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise fail("a study needs at least one [[runs]] table with dataset and architecture")
    specs = []
    for index, table in enumerate(runs):
        merged = {**defaults, **table}
        for key, value in merged.items():
            where = index if key in table else None
            if key not in RUN_KEYS:
                raise fail(f"unknown key '{key}' in run {index + 1} (allowed: {', '.join(RUN_KEYS)})", key, where)
            if not _type_ok(value, RUN_KEYS[key]):
                raise fail(
                    f"'{key}' in run {index + 1} must be {RUN_KEYS[key].__name__}, "
                    f"got {type(value).__name__} {value!r}",
                    key,
                    where,
                )
        for required in ("dataset", "architecture"):
            if required not in merged:
                raise fail(f"run {index + 1} has no '{required}'", None, index)
        if "seeds" in merged:
            if not merged["seeds"] or not all(_type_ok(s, int) and s >= 0 for s in merged["seeds"]):
                raise fail(f"'seeds' in run {index + 1} must be a non-empty list of integers >= 0", "seeds", index)
            merged["seeds"] = tuple(merged["seeds"])
        specs.append(RunSpec(**merged))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be text", "description")
    return Study(name, tuple(specs), description, source=str(path))


def resolve_study(study: str | Path | Study, registries: Any) -> Study:
    """A Study object as it is; a name ending in .toml or holding a path separator read as a study file; any other
    name looked up among the registered studies (an unknown one is a UsageError listing them)."""
    if isinstance(study, Study):
        return study
    name = os.fspath(study)
    if name.endswith(".toml") or os.path.sep in name:
        return load_study_file(name)
    return registries.studies.get(name)


def _type_ok(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _line_of(text: str, key: str | None, run: int | None) -> int | None:
    """1-based line of `key` (inside the `run`-th [[runs]] table when given), for error messages."""
    lines = text.splitlines()
    start = 0
    if run is not None:
        headers = [i for i, line in enumerate(lines) if line.strip().startswith("[[runs]]")]
        if run < len(headers):
            start = headers[run]
            if key is None:
                return start + 1
    if key is None:
        return None
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=|^\s*\[{re.escape(key)}\]")
    for i in range(start, len(lines)):
        if pattern.match(lines[i]):
            return i + 1
    return None


def manifest(study: Study, planned: list[tuple[Any, RunSpec]]) -> dict[str, Any]:
    """study.json: what the study is made of, so a report knows which runs are missing."""
    return {
        "name": study.name,
        "description": study.description,
        "runs": [
            {
                "dir": config.dir_name,
                **{f.name: getattr(config, f.name) for f in fields(config)},
                "reference": dict(spec.reference) if spec.reference else None,
            }
            for config, spec in planned
        ],
    }


def launch_record(command: str | None) -> dict[str, str]:
    """study.json's `command` and `cwd`: how this study was started, so `cnnkit status` can say how to resume it."""
    return {"command": command, "cwd": os.getcwd()} if command else {}


def run_study(
    study: Study,
    options: Any,
    out: Path,
    *,
    fresh: bool = False,
    epochs: int | None = None,
    subset: int | None = None,
    seeds: Sequence[int] | None = None,
    registries: Any = None,
    command: str | None = None,
    jobs: int | None = 1,
    executor: str = "local",
    ray_address: str | None = None,
) -> list[Any]:
    """Run every run of the study (`jobs` at once, None: auto; see cnnkit.studies.executors); finished runs are skipped,
    runs that other processes hold are skipped and waited for.

    Every dataset the study still needs is checked first, so a missing one stops it before any training.
    `command` (the command line that started the study) goes into study.json, for `cnnkit status` to say how to resume.
    """
    from cnnkit.console.study_progress import StudyProgress, check_datasets
    from cnnkit.plugins import get_registries
    from cnnkit.studies.executors import execute_planned

    registries = registries or get_registries()
    planned = [(config.checked(registries), spec) for config, spec in study.expand(epochs, subset, seeds)]
    progress = StudyProgress(planned, registries, Path(out) / study.name, fresh=fresh, quiet=options.quiet)
    check_datasets(progress.pending, registries, options.data_dir)
    return execute_planned(
        [config for config, _ in planned],
        options,
        Path(out),
        study.name,
        {**manifest(study, planned), **launch_record(command)},
        fresh=fresh,
        jobs=jobs,
        executor=executor,
        ray_address=ray_address,
        progress=progress,
    )
