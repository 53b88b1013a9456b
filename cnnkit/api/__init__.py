"""The Python API: `run`, `run_study` and `load_study` for notebooks and scripts.

A thin layer beside the CLI: it builds the same RunConfig and TrainerOptions (cnnkit.training.settings), resolves
studies the same way (cnnkit.studies.study.resolve_study) and trains through the same functions (runner.execute,
studies.study.run_study), so finished runs are skipped, unfinished ones resume, locks are honoured and the numbers
are the CLI's. Errors are cnnkit's exceptions with the CLI's messages; nothing here calls sys.exit.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnkit.api.results import RunResult, StudyResult
from cnnkit.errors import UsageError
from cnnkit.failures import as_cnnkit_errors

__all__ = ["RunResult", "StudyResult", "load_study", "run", "run_study"]

PathLike = str | os.PathLike[str]


def run(
    dataset: str,
    architecture: str,
    *,
    out: PathLike = "runs",
    data_dir: PathLike | None = None,
    fresh: bool = False,
    **settings: Any,
) -> RunResult:
    """Train one run, as `cnnkit run DATASET ARCH ...` does, into OUT/single/<run name>/; its figures.

    `settings`: any run setting of the schema (optimizer, epochs, seed, subset, preset, batch_size, val_split, lr,
    the training levers; defaults as on the command line) or trainer option (accelerator, devices, precision,
    quiet, verbose, logger, ...); an unknown name is a UsageError listing them.
    A finished run is read back rather than trained again (unless `fresh`); an unfinished one resumes.
    """
    from cnnkit.console.progress import test_line
    from cnnkit.training.runner import execute
    from cnnkit.training.settings import run_config, split_settings, trainer_options

    with as_cnnkit_errors():
        run_settings, trainer = split_settings(settings)
        config = run_config(dataset, architecture, **run_settings)
        options = trainer_options(data_dir=_text(data_dir), **trainer)
        outcome = execute(config, options, Path(out), fresh=fresh)
        if outcome.result:  # as the command prints it
            print(test_line(outcome.result))
        return RunResult.from_dir(outcome.run_dir, skipped=outcome.skipped)


def run_study(
    study: Any,
    *,
    epochs: int | None = None,
    subset: int | None = None,
    seeds: int | Sequence[int] | None = None,
    jobs: int | str = 1,
    out: PathLike = "runs",
    data_dir: PathLike | None = None,
    fresh: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    storage: str | None = None,
    **options: Any,
) -> StudyResult:
    """Run every run of a study, as `cnnkit run --study` does, into OUT/<study name>/; its results.

    `study`: a registered name, a path to a TOML file, or a `cnnkit.Study`. `epochs`/`subset` override every run's,
    and a budget that differs from the study's own gets a directory of its own (OUT/assignment-epochs1-subset2000/);
    `seeds`: a count N (seeds 0..N-1) or a list of seeds. `jobs`: runs at once (N or 'auto'). `options`: trainer
    options (accelerator, quiet, verbose, logger, ...). No report is written: call `.report()` on the result.
    A search study (`[search]`) searches, then runs its confirmation; `storage` (an RDB URL) keeps its search
    there instead of in the study directory's journal; its trials are `.trials()` of the result.
    """
    from cnnkit.plugins import get_registries
    from cnnkit.studies.resources import check_executor, resolve_jobs
    from cnnkit.studies.study import budget_name, resolve_study
    from cnnkit.studies.study import run_study as train_study
    from cnnkit.training.settings import trainer_options

    for name, value in (("epochs", epochs), ("subset", subset)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise UsageError(f"{name} must be a positive integer or None, got {value!r}")
    with as_cnnkit_errors():
        registries = get_registries()
        resolved = resolve_study(study, registries)
        trainer = trainer_options(data_dir=_text(data_dir), **options)
        check_executor(executor, ray_address)
        train_study(
            resolved,
            trainer,
            Path(out),
            fresh=fresh,
            epochs=epochs,
            subset=subset,
            seeds=_seed_list(seeds),
            registries=registries,
            jobs=resolve_jobs(jobs, executor),
            executor=executor,
            ray_address=ray_address,
            storage=storage,
        )
        return StudyResult.load(Path(out) / budget_name(resolved, epochs, subset))


def load_study(path: PathLike) -> StudyResult:
    """The finished runs of a study directory (e.g. runs/assignment), with `.missing` naming unfinished ones.

    A partial study loads with a warning saying which runs are missing; a directory that is not a study is a
    UsageError.
    """
    with as_cnnkit_errors():
        result = StudyResult.load(Path(path))
    if result.missing:
        warnings.warn(result.missing_note(), stacklevel=2)
    return result


def _seed_list(seeds: int | Sequence[int] | None) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, bool):
        raise UsageError(f"seeds must be a count or a non-empty list of integers >= 0, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise UsageError(f"seeds must be a count of at least 1 or a list of seeds, got {seeds}")
        return list(range(seeds))
    listed = list(seeds)
    if not listed or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in listed):
        raise UsageError(f"seeds must be a count or a non-empty list of integers >= 0, got {seeds!r}")
    return listed


def _text(path: PathLike | None) -> str | None:
    return None if path is None else os.fspath(path)
