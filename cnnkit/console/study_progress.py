"""What a study shows while it runs: a `[k/N]` header per run, the study's ETA, and a closing summary table.

Before the first run starts every dataset the study still needs is checked (and downloaded where it can be), so a
missing one stops the study at once instead of after hours of training.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from cnnkit.console.eta import Speeds, Work, eta_text, format_duration, parallel_seconds, planned_split, spec_pixels
from cnnkit.console.progress import RunProgress, plural, run_label, test_line
from cnnkit.console.streams import progress_stream
from cnnkit.results.reading import finished_result, read_progress, run_degeneracy
from cnnkit.results.stats import seed_stats
from cnnkit.training.config import SETTINGS
from cnnkit.training.values import toml_inline


class StudyProgress:
    """The study's clock and its per-run console lines; several runs may train at once (`slots`)."""

    def __init__(
        self,
        planned: list[tuple[Any, Any]],
        registries: Any,
        study_dir: Path,
        *,
        fresh: bool = False,
        quiet: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.configs = [config for config, _spec in planned]
        self.stream, self.quiet = stream or progress_stream(), quiet
        self.speeds = Speeds()
        self.slots = 1
        self.order: list[int] = list(range(len(self.configs)))  # in which runs are dealt to the slots
        self.active: dict[int, _Active] = {}  # runs in progress, by index
        self.overheads: dict[tuple[str, str], float] = {}  # per run, beyond its epochs: data, set-up, testing
        self.works: list[Work] = []
        self.val_images: list[int] = []
        self.test_images: list[int] = []
        self.done_before: dict[int, int] = {}  # epochs an unfinished run trained before this session
        for index, config in enumerate(self.configs):
            spec = getattr(registries.datasets.get(config.dataset), "spec", None)
            key, pixels = (config.dataset, config.architecture), spec_pixels(spec)
            train, val = planned_split(spec, config.subset, config.val_split)
            work = Work(key, train, pixels, config.epochs)
            self.val_images.append(val)
            self.test_images.append(getattr(spec, "test_count", 0))
            if not fresh:
                work = self._measured(index, study_dir / config.dir_name, work)
            self.works.append(work)

    def _measured(self, index: int, run_dir: Path, work: Work) -> Work:
        """What the run's files say of the pace (a resumed study's ETA from the first line): a finished run's speed
        and testing time, an unfinished one's trained epochs (progress.json). The work left in the run."""
        progress = read_progress(run_dir)
        result = finished_result(run_dir, quiet=True)
        if progress is not None and progress.epoch_seconds and work.images:
            seconds = progress.epoch_seconds
            self.speeds.add(work.key, work.images * len(seconds), work.pixels, sum(seconds))
        elif result is not None:
            self.speeds.add_result(result, work.pixels)
        self.speeds.add_test(
            work.key, (progress.test_seconds if progress else None) or (result or {}).get("test_seconds")
        )
        if result is not None:
            return replace(work, epochs=0)
        if progress is not None and progress.epoch_seconds:
            self.done_before[index] = len(progress.epoch_seconds)
        return work

    @property
    def pending(self) -> list[Any]:
        """Configs of the runs that still have training to do."""
        return [config for config, work in zip(self.configs, self.works, strict=True) if work.epochs]

    def label(self, index: int) -> str:
        return f"[{index + 1}/{len(self.configs)}] {run_label(self.configs[index])}"

    def run(self, index: int) -> RunProgress:
        """The label and clock of run `index` (0-based), which is about to start; its header is printed now.

        (Now, not once training starts: loading the data and setting up the Trainer can take a while.)
        """
        self.begin(index)
        work = self.works[index]
        if self.quiet:
            print(self.label(index), file=self.stream, flush=True)
        elif work.epochs:
            sizes = f", {work.images:,} train / {self.val_images[index]:,} val" if work.images else ""
            header = f"{self.label(index)} — {plural(work.epochs, 'epoch')}{sizes}; study {self.eta()}"
            print(header, file=self.stream, flush=True)
        return RunProgress(self.label(index), _RunClock(self, index), announced=True)

    def begin(self, index: int) -> None:
        """Run `index` starts now (its time beyond its epochs counts from here)."""
        self.active[index] = _Active(time.monotonic(), self.done_before.get(index, 0))

    def started(self, index: int, train_images: int, epochs_done: int) -> str:
        """Run `index` starts training (`epochs_done` epochs already behind it); the study's ETA."""
        if train_images:
            self.works[index] = replace(self.works[index], images=train_images)
        self.active.setdefault(index, _Active(time.monotonic())).epochs_done = epochs_done
        return self.eta()

    def epoch_done(self, index: int, epochs_done: int, seconds: float) -> str:
        """Run `index` trained an epoch in `seconds`; the study's ETA."""
        work, active = self.works[index], self.active.setdefault(index, _Active(time.monotonic()))
        self.speeds.add(work.key, work.images, work.pixels, seconds)
        active.epochs_done, active.epoch_seconds = epochs_done, active.epoch_seconds + seconds
        return self.eta()

    def settle(self, index: int, trained: bool) -> None:
        """Run `index` has no training left here (trained, complete already, or another process has it)."""
        active = self.active.pop(index, None)
        if trained and active is not None:
            self.overheads[self.works[index].key] = max(time.monotonic() - active.since - active.epoch_seconds, 0.0)
        self.works[index] = replace(self.works[index], epochs=0)

    def finished(self, index: int, outcome: Any) -> None:
        """Say how run `index` ended (skipped, or its test line) and take it off the work left."""
        self.settle(index, trained=not outcome.skipped)
        if outcome.skipped:
            print(
                f"{self.label(index)} — already complete, skipped (use --fresh to run it again)",
                file=self.stream,
                flush=True,
            )
        elif outcome.result and not self.quiet:
            print(f"    {test_line(outcome.result)}", file=self.stream, flush=True)

    def seconds_left(self) -> float | None:
        """Time left in the study: the runs in progress, then the rest in order, dealt to `slots` side by side.

        Training time from the measured speed, plus each run's measured time beyond its epochs (loading data,
        setting up, testing: with a small --subset the test set dominates), by (dataset, architecture).
        """
        order = [*self.active, *(i for i in self.order if i not in self.active)]
        typical = sum(self.overheads.values()) / len(self.overheads) if self.overheads else 0.0
        durations = []
        for index in order:
            done = self.active[index].epochs_done if index in self.active else self.done_before.get(index, 0)
            work = replace(self.works[index], epochs=max(self.works[index].epochs - done, 0))
            if not self.works[index].epochs:
                continue
            training = self.speeds.seconds_left([work] if work.epochs else [])
            if training is None:
                return None
            testing = self.speeds.test_seconds(work.key, self.test_images[index], work.pixels)
            durations.append(training + self.overheads.get(work.key, max(typical, testing)))
        return parallel_seconds(durations, self.slots)

    def eta(self) -> str:
        return eta_text(self.seconds_left())


@dataclass
class _Active:
    since: float
    epochs_done: int = 0
    epoch_seconds: float = 0.0


@dataclass(frozen=True)
class _RunClock:
    """A `progress.Clock` for one run of the study."""

    study: StudyProgress
    index: int

    def run_started(self, train_images: int, epochs_done: int) -> str:
        return self.study.started(self.index, train_images, epochs_done)

    def epoch_done(self, epochs_done: int, seconds: float, epochs: int, metrics: dict[str, float]) -> str | None:
        return self.study.epoch_done(self.index, epochs_done, seconds)


def check_datasets(configs: list[Any], registries: Any, data_dir: str | None) -> None:
    """Make sure every dataset of `configs` is on disk (downloading it where possible) before any run starts.

    Raises the dataset's own error (what is missing, where it looked) for the first one that is not.
    """
    for name in dict.fromkeys(config.dataset for config in configs):
        registries.datasets.get(name)(data_dir=data_dir).prepare_data()


# Settings a configuration may differ in (result.json's top level), with their column headers.
SETTING_COLUMNS = {s.name: s.column for s in SETTINGS if s.column}
SEED_SUFFIX = re.compile(r"-seed\d+$")


def _mean_sd(values: list[float]) -> str:
    """'0.9876' for one seed, '0.9876 ± 0.0012' (sample sd) for several."""
    return seed_stats(values).text()


def _setting(value: Any) -> str:
    if isinstance(value, dict):  # a table (arch), in one line as --arch takes it
        return toml_inline(value)
    if isinstance(value, list):
        return "+".join(map(str, value)) or "-"
    return "-" if value in (None, 0, 0.0, "") else f"{value:g}" if isinstance(value, float) else str(value)


def summary_table(outcomes: list[Any], seconds: float) -> str:
    """The closing table: one row per configuration (the runs that differ only in seed) with the number of
    seeds n, mean ± sd of test accuracy, test loss and best-epoch accuracy, and the training time of its runs;
    its first columns are the settings the configurations differ in (the configuration's name when none do)."""
    configs: dict[str, list[Any]] = {}
    for outcome in outcomes:
        if outcome.result:
            configs.setdefault(SEED_SUFFIX.sub("", outcome.run_dir.name), []).append(outcome)
    firsts = [runs[0].result for runs in configs.values()]
    varying = [k for k in SETTING_COLUMNS if len({repr(r.get(k)) for r in firsts}) > 1]
    header = (*([SETTING_COLUMNS[k] for k in varying] or ["configuration"]), "n", "test acc", "test loss", "best acc",
              "time")  # fmt: skip
    rows = []
    for name, runs in configs.items():
        results = [o.result for o in runs]
        took = format_duration(sum(r.get("train_seconds") or 0 for r in results))
        earlier = all(o.skipped for o in runs)
        rows.append(
            (
                *([_setting(results[0].get(k)) for k in varying] if varying else [name]),
                str(len(runs)),
                _mean_sd([r["test_accuracy"] for r in results]),
                _mean_sd([r["test_loss"] for r in results]),
                _mean_sd([r["best_test_accuracy"] for r in results]),
                f"{took} (earlier)" if earlier else took,
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    first_numeric = len(varying) or 1

    def line(cells: tuple[str, ...]) -> str:
        left = [cell.ljust(width) for cell, width in zip(cells[:first_numeric], widths, strict=False)]
        right = [cell.rjust(width) for cell, width in zip(cells[first_numeric:], widths[first_numeric:], strict=True)]
        return "  ".join(left + right).rstrip()

    runs_done = sum(len(runs) for runs in configs.values())
    title = (
        f"{plural(runs_done, 'run')} in {plural(len(configs), 'configuration')}, {format_duration(seconds)} in this "
        "session (mean ± sd over seeds; time column: training only)"
    )
    return "\n".join([title, line(header), *(line(row) for row in rows), *degenerate_notes(outcomes)])


def degenerate_notes(outcomes: list[Any]) -> list[str]:
    """A line for each run that learned next to nothing (`cnnkit.results.reading.Degeneracy`)."""
    notes = []
    for outcome in outcomes:
        found = run_degeneracy(outcome.run_dir, outcome.result) if outcome.result else None
        if found is not None and found.degenerate:
            notes.append(f"note: {outcome.run_dir.name} is degenerate: {found.why}")
    return notes
