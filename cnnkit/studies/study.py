"""Studies: named lists of runs, registered by plugins or read from a TOML file, run one after another."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib

from cnnkit.errors import UsageError
from cnnkit.registry import StudyNotes
from cnnkit.training.config import BY_NAME, SETTINGS, settings_record

# A study table's keys: every run setting the schema allows in study files, and the study's own.
STUDY_KEYS: dict[str, type] = {"seeds": list, "reference": dict, "grid": dict}
RUN_KEYS: dict[str, type] = {
    **{s.name: list if s.kind is tuple else s.kind for s in SETTINGS if s.study},
    **STUDY_KEYS,
}
ELEMENT_TYPES = {"seeds": int, **{s.name: str for s in SETTINGS if s.kind is tuple}}  # a list's items
NOT_IN_GRID = {*STUDY_KEYS, *(s.name for s in SETTINGS if s.study and not s.grid)}
# Settings whose value is a table (`arch`): a grid may vary one of their keys, as `"arch.norm" = [...]` or nested.
TABLES = {s.name for s in SETTINGS if s.study and s.grid and s.kind is dict}
TOP_KEYS = {"name", "description", "defaults", "runs", "search"}


class RunSpec:
    """One configuration of a study, run once per seed: any run setting but the seed, by keyword.

    `RunSpec("mnist", "net_2", "adadelta", epochs=10, lr=0.1, seeds=(0, 1), reference={...})`; `reference`: the
    published figures it reproduces. Its settings read as attributes (`spec.lr`); `template` is its RunConfig
    for seed 0.
    """

    def __init__(
        self,
        dataset: str,
        architecture: str,
        optimizer: str | None = None,
        *,
        seeds: Sequence[int] = (0,),
        reference: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        from cnnkit.training.settings import run_config

        if "seed" in settings:
            raise UsageError("a study run takes 'seeds' (a list), not 'seed'")
        self.template = run_config(dataset, architecture, optimizer=optimizer, **settings)
        self.seeds = tuple(seeds)
        self.reference = reference

    def __getattr__(self, name: str) -> Any:
        if name != "template" and name in BY_NAME:
            return getattr(self.template, name)
        raise AttributeError(f"'RunSpec' object has no attribute {name!r}")

    def _identity(self) -> tuple[Any, ...]:
        return (self.template, self.seeds, repr(self.reference))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunSpec) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return f"RunSpec({self.template!r}, seeds={self.seeds!r}, reference={self.reference!r})"


@dataclass(frozen=True)
class Study:
    """A named list of runs, or with `search` (a `cnnkit.studies.search_spec.Search`) a hyperparameter search over
    its base settings, whose runs (the confirmation) are known once its trials are done: then `runs` is empty."""

    name: str
    runs: tuple[RunSpec, ...]
    description: str = ""
    source: str = field(default="", compare=False)
    search: Any = None
    notes: StudyNotes = field(default_factory=StudyNotes, compare=False)  # what the report says of it

    def expand(
        self, epochs: int | None = None, subset: int | None = None, seeds: Sequence[int] | None = None
    ) -> list[tuple[Any, RunSpec]]:
        """(RunConfig, its spec) for every run and seed, with command-line overrides applied."""
        planned = []
        for spec in self.runs:
            for seed in seeds if seeds is not None else spec.seeds:
                config = replace(
                    spec.template,
                    seed=seed,
                    epochs=epochs or spec.epochs,
                    subset=subset if subset is not None else spec.subset,
                )
                planned.append((config, spec))
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
    if "search" in data:
        return _search_study(data, defaults, name, path, text, fail)
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise fail("a study needs at least one [[runs]] table with dataset and architecture")
    _check_table(defaults, "[defaults]", lambda message, key: fail(message, key))
    specs = []
    for index, table in enumerate(runs):
        where = f"run {index + 1}"
        _check_table(table, where, lambda message, key, index=index: fail(message, key, index))
        merged = {**defaults, **table}
        for key in TABLES & set(defaults) & set(table):  # a run's table adds to (and overrides) the defaults' keys
            merged[key] = {**defaults[key], **table[key]}
        for required in ("dataset", "architecture"):
            if required not in merged:
                raise fail(f"{where} has no '{required}'", None, index)
        grid = {**grid_axes(defaults.get("grid", {})), **grid_axes(table.get("grid", {}))}
        merged.pop("grid", None)
        if "seeds" in merged:
            merged["seeds"] = tuple(merged["seeds"])
        for combination in itertools.product(*grid.values()):
            settings = dict(merged)
            for axis, value in zip(grid, combination, strict=True):
                _set_axis(settings, axis, value)
            try:
                specs.append(RunSpec(**settings))
            except UsageError as exc:
                raise fail(str(exc), next((k for k in TABLES if k in table), None), index) from None
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be text", "description")
    return Study(name, tuple(specs), description, source=str(path))


def _search_study(data: dict[str, Any], defaults: dict[str, Any], name: str, path: Path, text: str, fail: Any) -> Study:
    """A study file with a `[search]` table: it tunes its [defaults], so it has no [[runs]]."""
    from cnnkit.studies.search_spec import SearchProblem, parse_search

    if "runs" in data:
        raise fail("a search study has no [[runs]]: its [search] tunes the study's [defaults]", "[runs]")
    _check_table(defaults, "[defaults]", lambda message, key: fail(message, key))
    for key, why in (("seeds", "its seeds are [search] confirm's seeds"), ("grid", "[search.space] says what varies")):
        if key in defaults:
            raise fail(f"'{key}' in [defaults] is not for a search study: {why}", key)
    for required in ("dataset", "architecture"):
        if required not in defaults:
            raise fail(f"a search study needs '{required}' in [defaults]", "defaults")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("'description' must be text", "description")
    try:
        search = parse_search(data["search"], RunSpec(**defaults))
    except SearchProblem as problem:
        line = _line_in_section(text, problem.section, problem.key)
        raise UsageError(f"{path}{f', line {line}' if line else ''}: {problem}") from None
    return Study(name, (), description, source=str(path), search=search)


def _line_in_section(text: str, section: str, key: str | None) -> int | None:
    """1-based line of `key` in the TOML table `[section]` (or of the table's header), for error messages."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[{re.escape(section)}\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    if key is None:
        return start + 1
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].strip().startswith("["):
            break
        if pattern.match(lines[i]):
            return i + 1
    return start + 1


def resolve_study(study: str | Path | Study, registries: Any) -> Study:
    """A Study object as it is; a name ending in .toml or holding a path separator read as a study file; any other
    name looked up among the registered studies (an unknown one is a UsageError listing them)."""
    if isinstance(study, Study):
        return study
    name = os.fspath(study)
    if name.endswith(".toml") or os.path.sep in name:
        return load_study_file(name)
    return registries.studies.get(name)


def grid_axes(grid: Mapping[str, Any]) -> dict[str, Any]:
    """A grid's axes by key; a table setting's nested keys as dotted ones: `{ arch = { norm = [...] } }` is
    `{ "arch.norm" = [...] }` (a list for the table itself varies it whole)."""
    axes: dict[str, Any] = {}
    for key, values in grid.items():
        if key.split(".")[0] in TABLES and isinstance(values, dict):
            axes.update(grid_axes({f"{key}.{inner}": v for inner, v in values.items()}))
        else:
            axes[key] = values
    return axes


def _set_axis(settings: dict[str, Any], axis: str, value: Any) -> None:
    """Put one grid value into a run's settings: `arch.norm` sets the key `norm` of the run's `arch` table."""
    key, *path = axis.split(".")
    if not path:
        settings[key] = value
        return
    table = dict(settings.get(key) or {})
    settings[key] = table
    for inner in path[:-1]:
        table[inner] = dict(table.get(inner) or {})
        table = table[inner]
    table[path[-1]] = value


def _check_table(table: dict[str, Any], where: str, fail: Any) -> None:
    """Refuse an unknown key or a value of the wrong type in one table (`[defaults]` or `run k`), grid included."""
    for key, value in table.items():
        if key not in RUN_KEYS:
            raise fail(f"unknown key '{key}' in {where} (allowed: {', '.join(RUN_KEYS)})", key)
        _check_value(key, value, f"'{key}' in {where}", fail)
    for key, values in grid_axes(table.get("grid", {})).items():
        if "." in key and key.split(".")[0] in TABLES:
            if not isinstance(values, list) or not values:
                raise fail(f"grid '{key}' in {where} must be a non-empty list of values, got {values!r}", "grid")
            continue  # the table's own keys and values are checked with the run's table
        if key not in RUN_KEYS or key in NOT_IN_GRID:
            allowed = ", ".join(k for k in RUN_KEYS if k not in NOT_IN_GRID)
            raise fail(f"unknown grid key '{key}' in {where} (a grid varies one of: {allowed})", "grid")
        if not isinstance(values, list) or not values:
            raise fail(f"grid '{key}' in {where} must be a non-empty list of values, got {values!r}", "grid")
        for value in values:
            _check_value(key, value, f"a value of grid '{key}' in {where}", fail, line_key="grid")


def _check_value(key: str, value: Any, what: str, fail: Any, line_key: str | None = None) -> None:
    expected = RUN_KEYS[key]
    item = ELEMENT_TYPES.get(key)
    if not _type_ok(value, expected) or (item and not all(_type_ok(v, item) for v in value)):
        kind = f"a list of {item.__name__}" if item else expected.__name__
        raise fail(f"{what} must be {kind}, got {type(value).__name__} {value!r}", line_key or key)
    if key == "seeds" and (not value or any(v < 0 for v in value)):
        raise fail(f"{what} must be a non-empty list of integers >= 0", line_key or key)


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


def checked_plan(
    study: Study,
    registries: Any,
    epochs: int | None = None,
    subset: int | None = None,
    seeds: Sequence[int] | None = None,
) -> list[tuple[Any, RunSpec]]:
    """(config, spec) of every planned run, each config checked against the registries, and no two runs sharing a
    directory: every mistake of a study file is a UsageError before anything is loaded or trained."""
    planned = [(config.checked(registries), spec) for config, spec in study.expand(epochs, subset, seeds)]
    refuse_shared_directories(study, planned)
    return planned


def refuse_shared_directories(study: Study, planned: list[tuple[Any, RunSpec]]) -> None:
    """Two runs of one study may not share a directory (aliases included); say which two, before anything trains."""
    first: dict[str, tuple[int, RunSpec, Any]] = {}
    for number, (config, spec) in enumerate(planned, 1):
        if config.dir_name in first:
            other_number, other_spec, other = first[config.dir_name]
            raise UsageError(
                f"runs {other_number} ({_as_written(other_spec, other)}) and {number} ({_as_written(spec, config)}) "
                f"of study '{study.name}' would share the directory {config.dir_name}; "
                "change a setting of one of them or give it a 'label'"
            )
        first[config.dir_name] = (number, spec, config)


def _as_written(spec: RunSpec, config: Any) -> str:
    """A run as its study wrote it (aliases kept), with its seed and the settings that differ from the defaults."""
    from cnnkit.training.config import describe_settings

    parts = [spec.dataset, spec.architecture, spec.optimizer, describe_settings(config), f"seed {config.seed}"]
    if spec.label:
        parts.insert(0, f"label {spec.label}")
    return " · ".join(part for part in parts if part)


def manifest(study: Study, planned: list[tuple[Any, RunSpec]]) -> dict[str, Any]:
    """study.json: what the study is made of, so a report knows which runs are missing."""
    return {
        "name": study.name,
        "description": study.description,
        "runs": [
            {
                "dir": config.dir_name,
                **settings_record(config),
                "reference": dict(spec.reference) if spec.reference else None,
            }
            for config, spec in planned
        ],
    }


def launch_record(command: str | None) -> dict[str, str]:
    """study.json's `command` and `cwd`: how this study was started, so `cnnkit status` can say how to resume it."""
    return {"command": command, "cwd": os.getcwd()} if command else {}


def budget_name(study: Study, epochs: int | None = None, subset: int | None = None) -> str:
    """The directory of a study run with `epochs` and `subset`: its name, or, where they differ from its plan, its
    name and that budget (`assignment-epochs1-subset2000`), so a quick look never touches the full study's runs."""
    tags = [f"epochs{epochs}"] if epochs is not None and any(spec.epochs != epochs for spec in study.runs) else []
    if subset is not None and any(spec.subset != subset for spec in study.runs):
        tags.append(f"subset{subset}")
    return "-".join([study.name, *tags])


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
    storage: str | None = None,
) -> list[Any]:
    """Run every run of the study (`jobs` at once, None: auto; see cnnkit.studies.executors); finished runs are skipped,
    runs that other processes hold are skipped and waited for. A search study searches first, then runs its
    confirmation (`cnnkit.studies.search`); `storage`, an RDB URL, keeps its search there instead of in the study
    directory.

    Every dataset the study still needs is checked first, so a missing one stops it before any training.
    `command` (the command line that started the study) goes into study.json, for `cnnkit status` to say how to resume.
    The runs go to OUT/<budget_name(study, epochs, subset)>/.
    """
    from cnnkit.plugins import get_registries

    registries = registries or get_registries()
    if study.search is not None:
        from cnnkit.studies.search import run_search

        return run_search(
            study,
            options,
            Path(out),
            fresh=fresh,
            epochs=epochs,
            subset=subset,
            seeds=seeds,
            registries=registries,
            command=command,
            jobs=jobs,
            executor=executor,
            ray_address=ray_address,
            storage=storage,
        )
    if storage is not None:
        raise UsageError("--storage is for a search study (a study file with a [search] table)")
    planned = checked_plan(study, registries, epochs, subset, seeds)
    record = {**manifest(study, planned), **launch_record(command)}
    return train_planned(
        study, planned, record, options, out, fresh=fresh, jobs=jobs, executor=executor,
        ray_address=ray_address, registries=registries, directory=budget_name(study, epochs, subset),
    )  # fmt: skip


def train_planned(
    study: Study,
    planned: list[tuple[Any, RunSpec]],
    record: dict[str, Any],
    options: Any,
    out: Path,
    *,
    fresh: bool,
    jobs: int | None,
    executor: str,
    ray_address: str | None,
    registries: Any,
    directory: str | None = None,
) -> list[Any]:
    """Train the planned (config, spec) pairs of `study` with its console, `record` as its study.json, in
    OUT/`directory` (the study's name unless told)."""
    from cnnkit.console.study_progress import StudyProgress, check_datasets
    from cnnkit.studies.executors import execute_planned

    directory = directory or study.name
    progress = StudyProgress(planned, registries, Path(out) / directory, fresh=fresh, quiet=options.quiet)
    return execute_planned(
        [config for config, _ in planned],
        options,
        Path(out),
        directory,
        record,
        fresh=fresh,
        jobs=jobs,
        executor=executor,
        ray_address=ray_address,
        progress=progress,
        before_training=lambda: check_datasets(progress.pending, registries, options.data_dir),
        registries=registries,
    )
