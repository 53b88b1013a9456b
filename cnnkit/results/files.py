"""The names of the files of the results contract (DESIGN.md): nothing else in cnnkit spells them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULT = "result.json"  # written atomically, only once the run is complete
CONFIG = "config.json"  # every resolved setting, written when training starts
METRICS = "metrics.csv"  # one row per epoch
PREDICTIONS = "predictions.npz"  # test labels, predictions, probabilities and a few misclassified images
MANIFEST = "study.json"  # a study's planned runs
PROGRESS = "progress.json"  # where a run stands: its epochs' times, testing, a clean stop (rewritten as it goes)
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
# A search's files in its study directory: its trials (run directories named by number), the plain table of them,
# and Optuna's journal (the search's storage, unless an RDB is given).
TRIALS = "trials"
TRIALS_TABLE = "trials.csv"
JOURNAL = "optuna-journal.log"


@dataclass(frozen=True)
class RunFiles:
    """The paths of one run directory's files."""

    dir: Path

    @property
    def result(self) -> Path:
        return self.dir / RESULT

    @property
    def config(self) -> Path:
        return self.dir / CONFIG

    @property
    def metrics(self) -> Path:
        return self.dir / METRICS

    @property
    def predictions(self) -> Path:
        return self.dir / PREDICTIONS

    @property
    def progress(self) -> Path:
        return self.dir / PROGRESS

    @property
    def checkpoints(self) -> Path:
        return self.dir / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT


def manifest_path(study_dir: Path) -> Path:
    return Path(study_dir) / MANIFEST


def run_dirs_with_config(study_dir: Path) -> list[Path]:
    """The run directories of a study directory that hold a config.json (started runs), sorted by name."""
    study_dir = Path(study_dir)
    return sorted(path.parent for path in study_dir.glob(f"*/{CONFIG}")) if study_dir.is_dir() else []


def trial_dir(study_dir: Path, number: int) -> Path:
    """`<study>/trials/<number>/`: the run directory of a search's trial."""
    return Path(study_dir) / TRIALS / str(number)


def trials_folder(study_dir: Path) -> Path:
    return Path(study_dir) / TRIALS


def trials_table(study_dir: Path) -> Path:
    return Path(study_dir) / TRIALS_TABLE


def journal_path(study_dir: Path) -> Path:
    return Path(study_dir) / JOURNAL


REPORT_DIR = "report"  # a study's report, beside its runs
REPORT_LANGUAGE = "en"  # the language whose files carry no language code


def report_dir(study_dir: Path) -> Path:
    return Path(study_dir) / REPORT_DIR


def report_file(folder: Path, fmt: str, lang: str = REPORT_LANGUAGE) -> Path:
    """`report.html` / `report.pdf` in English; another language adds its code (`report.es.html`, `report.es.pdf`),
    so that the reports of every language live side by side."""
    return Path(folder) / (f"report.{fmt}" if lang == REPORT_LANGUAGE else f"report.{lang}.{fmt}")
