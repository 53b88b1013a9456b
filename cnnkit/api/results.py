"""What the Python API hands back: a run's figures (RunResult) and a study's runs as tables and plots (StudyResult).

Both are read from the result files of the results contract, so a study trained from the command line, another
machine or an earlier session loads the same way as one trained a moment ago.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cnnkit.api import tables
from cnnkit.results.stats import mean_sd


@dataclass(frozen=True, eq=False)
class RunResult:
    """One finished run: `config` (config.json), `result` (result.json) and the figures read from them.

    `skipped`: `cnnkit.run` found the run finished already and read it back instead of training it.
    """

    dir: Path
    config: dict[str, Any]
    result: dict[str, Any]
    skipped: bool = False

    @classmethod
    def from_dir(cls, run_dir: Path, skipped: bool = False) -> RunResult:
        from cnnkit.results.files import RunFiles
        from cnnkit.results.reading import read_json

        files = RunFiles(Path(run_dir))
        config = read_json(files.config) if files.config.is_file() else {}
        return cls(Path(run_dir), config, read_json(files.result), skipped)

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def test_accuracy(self) -> float:
        """Test accuracy (a fraction) of the final weights, as Keras' evaluate after fit."""
        return float(self.result["test_accuracy"])

    @property
    def test_loss(self) -> float:
        return float(self.result["test_loss"])

    @property
    def best_epoch(self) -> int:
        """The epoch (1-based) of the lowest validation loss."""
        return int(self.result["best_epoch"])

    @property
    def best_test_accuracy(self) -> float:
        """Test accuracy of the best epoch's weights."""
        return float(self.result["best_test_accuracy"])

    @property
    def best_test_loss(self) -> float:
        return float(self.result["best_test_loss"])

    @cached_property
    def history(self) -> dict[str, list[float]]:
        """Per-epoch lists, as Keras' History.history: train_loss, train_accuracy, val_loss, val_accuracy
        (and the learning rate `lr` when metrics.csv has it; the clean training figures train_eval_loss and
        train_eval_accuracy in runs trained since they were added, NaN for an epoch without them)."""
        from cnnkit.results.reading import epoch_curves

        return epoch_curves(self.dir, self.result.get("history") or {})

    @cached_property
    def settings(self) -> dict[str, Any]:
        """Every run setting (dataset, architecture, optimizer, ..., seed), typed as the settings schema says
        (`augment` a list of names); lr as used."""
        return tables.run_settings(self.config, self.result)

    @property
    def cells(self) -> dict[str, Any]:
        """The settings as table cells (`augment` as 'flip+crop')."""
        return tables.cells(self.settings)

    def row(self) -> dict[str, Any]:
        """This run's line of `StudyResult.to_pandas()`."""
        return {"run": self.name, **self.cells, **tables.run_figures(self.result)}

    def __repr__(self) -> str:
        return (
            f"RunResult({self.name}: test_accuracy={self.test_accuracy:.4f}, test_loss={self.test_loss:.4f}, "
            f"best_epoch={self.best_epoch}, best_test_accuracy={self.best_test_accuracy:.4f})"
        )


@dataclass(eq=False)
class StudyResult:
    """A study directory's finished runs (`runs`) and the ones it lacks (`missing`: run directory names)."""

    name: str
    path: Path
    runs: list[RunResult]
    missing: list[str] = field(default_factory=list)
    description: str = ""
    searched: list[str] = field(default_factory=list)  # a search study's searched settings, in its space's order
    trial_rows: list[Any] = field(default_factory=list)  # its trials (cnnkit.results.trials.TrialRow)

    @classmethod
    def load(cls, path: Path) -> StudyResult:
        """Read a study directory (a UsageError when it is not one)."""
        from cnnkit.results.runs import load_study
        from cnnkit.results.trials import current_trials

        study = load_study(Path(path))
        runs = [RunResult(run.path, run.config, run.result) for run in study.runs]
        searched, trials = current_trials(Path(path))
        missing = [run.dir for run in study.missing]
        return cls(study.name, study.path, runs, missing, study.description, searched, trials)

    def missing_note(self) -> str:
        total = len(self.runs) + len(self.missing)
        return (
            f"{self.name}: {len(self.missing)} of {total} runs are not finished ({', '.join(self.missing)}); "
            f"the tables show the {len(self.runs)} finished ones"
        )

    def to_pandas(self) -> Any:
        """One row per run: `run` (its directory), every setting, then its figures (test_accuracy, test_loss,
        best_epoch, best_test_accuracy, best_test_loss, stopped_epoch, params, train_seconds, images_per_second)."""
        import pandas as pd

        return pd.DataFrame([run.row() for run in self.runs], columns=self._columns(tables.FIGURES))

    def history(self) -> Any:
        """Per-epoch metrics in long format: one row per run, epoch and metric (`metric`, `value`), with the
        run's settings alongside for grouping and plotting."""
        import pandas as pd

        rows = [
            {"run": run.name, **run.cells, "epoch": epoch, "metric": metric, "value": value}
            for run in self.runs
            for metric, values in run.history.items()
            for epoch, value in enumerate(values, start=1)
        ]
        return pd.DataFrame(rows, columns=self._columns(("epoch", "metric", "value")))

    def summary(self) -> Any:
        """One row per configuration (every setting but the seed): n, the seeds, and mean and sd over the seeds
        of test accuracy and loss, final and best-epoch weights (`test_accuracy_mean`, `test_accuracy_sd`, ...)."""
        import pandas as pd

        return pd.DataFrame(self._summary_rows())

    def per_class(self, by: str = "run") -> Any:
        """Precision, recall, F1 and support of each class, from the runs' test predictions (runs without them are
        left out). `by="run"`: one row per run and class, with the run's settings (`seed` among them), `class`,
        `precision`, `recall`, `f1`, `support`. `by="configuration"`: one row per configuration (every setting but
        the seed) and class, with the means over its seeds, and `precision_low`, `precision_high`, `recall_low`, ...
        `f1_high` (the 95 % t interval of the mean; NaN for one seed) when some configuration has several seeds."""
        import pandas as pd

        from cnnkit.api import error_tables

        rows, intervals = error_tables.per_class_rows(self._predictions(), by)
        settings = self._settings(seed=by == "run")
        extra = error_tables.INTERVALS if intervals else ()
        return pd.DataFrame(rows, columns=[*settings, *error_tables.PER_CLASS, *extra])

    def calibration(self) -> Any:
        """One row per run that kept its test-set probabilities (runs trained before cnnkit kept them are left out):
        its settings (`seed` among them), `ece` and `mce` (expected and maximum calibration error over `n_bins`
        equal-width confidence bins, as torchmetrics' MulticlassCalibrationError computes them) and `n_bins`."""
        import pandas as pd

        from cnnkit.api import error_tables

        rows = error_tables.calibration_rows(self._predictions())
        return pd.DataFrame(rows, columns=[*self._settings(seed=True), *error_tables.CALIBRATION])

    def confused_pairs(self, k: int = 5) -> Any:
        """The `k` most-confused pairs of each configuration: one row per configuration (every setting but the seed)
        and pair, with `true` and `predicted` (class names) and `count` (test images, summed over its seeds), in
        descending count."""
        import pandas as pd

        from cnnkit.api import error_tables

        rows = error_tables.confused_pair_rows(self._predictions(), k)
        return pd.DataFrame(rows, columns=[*self._settings(seed=False), *error_tables.PAIRS])

    def _predictions(self) -> list[tuple[dict[str, Any], Any]]:
        """(settings, predictions) of every run that kept its test predictions."""
        from cnnkit.results.reading import load_predictions

        found = [(run.settings, load_predictions(run.dir)) for run in self.runs]
        return [(settings, predictions) for settings, predictions in found if predictions is not None]

    def _settings(self, seed: bool) -> list[str]:
        from cnnkit.training.settings import config_names

        return [name for name in config_names() if seed or name != "seed"]

    def trials(self) -> Any:
        """A search study's trials, one row each: `number`, `state` (complete, pruned, running or failed), `value`
        (the trial's best epoch's validation metric, the search's `metric`; None until it has one), one column per
        searched setting (its value as the setting holds it: a list setting's as a tuple, e.g. ('flip', 'crop')),
        and `epochs` (the epochs it ran: a pruned trial's stop there). Empty for a study without a search."""
        import pandas as pd

        rows = [
            {"number": t.number, "state": str(t.state), "value": t.value, **t.params, "epochs": t.epochs}
            for t in self.trial_rows
        ]
        return pd.DataFrame(rows, columns=["number", "state", "value", *self.searched, "epochs"])

    def plot_curves(self) -> Any:
        """A matplotlib Figure of every configuration's loss and accuracy per epoch (a row per dataset)."""
        from cnnkit.api.curves import plot_curves
        from cnnkit.errors import UsageError

        if not self.runs:
            raise UsageError(f"{self.path} has no finished run to plot")
        return plot_curves([(run.cells, run.history) for run in self.runs], title=self.name)

    def report(
        self, lang: str = "en", formats: tuple[str, ...] | list[str] = ("html",), out: str | Path | None = None
    ) -> list[Path]:
        """Write the study's IMRaD report (`cnnkit report`) into <study>/report/ (or the folder `out`): report.html
        in English, report.es.html in Spanish (and .pdf with formats=("html", "pdf")); the paths written."""
        from cnnkit.failures import as_cnnkit_errors
        from cnnkit.report.render import render_report

        with as_cnnkit_errors():
            return render_report(self.path, formats=list(formats), lang=lang, out=None if out is None else Path(out))

    def _columns(self, after: tuple[str, ...]) -> list[str]:
        from cnnkit.training.settings import config_names

        return ["run", *config_names(), *after]

    def _summary_rows(self) -> list[dict[str, Any]]:
        return tables.summary_rows((run.cells, tables.run_figures(run.result)) for run in self.runs)

    def _repr_html_(self) -> str:
        """The summary table as Jupyter shows it: the settings that tell configurations apart, n, mean ± sd."""
        import pandas as pd

        from cnnkit.training.settings import config_names

        rows = self._summary_rows()
        settings = [name for name in config_names() if name != "seed"]
        shown = tables.varying(rows, settings) or ["dataset", "architecture", "optimizer"]
        table = pd.DataFrame(
            [
                {
                    **{name: row[name] for name in shown},
                    "n": row["n"],
                    **{
                        metric.replace("_", " "): mean_sd(row[f"{metric}_mean"], row[f"{metric}_sd"])
                        for metric in tables.SUMMARY_METRICS
                    },
                }
                for row in rows
            ],
            columns=[*shown, "n", *(metric.replace("_", " ") for metric in tables.SUMMARY_METRICS)],
        )
        heading = f"<p><b>{html.escape(self.name)}</b>: {len(self.runs)} finished runs"
        if self.missing:
            heading += f"; not finished: {html.escape(', '.join(self.missing))}"
        return f"{heading} (mean ± sd over seeds)</p>\n{table.to_html(index=False, escape=True)}"

    def __repr__(self) -> str:
        missing = f", {len(self.missing)} missing" if self.missing else ""
        trials = f", {len(self.trial_rows)} trials" if self.trial_rows else ""
        return f"StudyResult({self.name}: {len(self.runs)} runs{missing}{trials}, {self.path})"
