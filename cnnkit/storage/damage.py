"""Damaged run files: what is sound is used, what is not is set aside, each time with one line saying so.

A damaged result.json means the run is unfinished (cnnkit.results.reading.finished_result); a damaged last.ckpt
means resuming from best.ckpt (or starting over); temp files of killed writers are removed. Only the process
holding a run's lock repairs its directory.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from cnnkit.results.files import RunFiles
from cnnkit.storage.atomic import write_atomic
from cnnkit.storage.locks import LOCK_NAME

TEMP_GLOBS = (".*.tmp", ".write-test-*")


def note(message: str) -> None:
    """One line on stderr about a repair."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def sweep_temp_files(run_dir: Path) -> None:
    """Remove temp files that killed processes left in the run directory and its checkpoints/."""
    folders = (run_dir, RunFiles(run_dir).checkpoints)
    left = [p for folder in folders for pattern in TEMP_GLOBS for p in folder.glob(pattern)]
    for path in left:
        path.unlink(missing_ok=True)
    if left:
        note(f"removed {len(left)} temp file(s) a killed process left in {run_dir}")


def checkpoint_problem(path: Path) -> str | None:
    """Why the Lightning checkpoint at `path` cannot be resumed from, or None when it loads."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises RuntimeError, OSError(EINVAL), EOFError, UnpicklingError, ...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
    if not isinstance(checkpoint, dict) or not {"state_dict", "epoch", "loops"} <= checkpoint.keys():
        return "not a Lightning checkpoint"
    return None


def recover_checkpoints(run_dir: Path) -> None:
    """Make checkpoints/ resumable: a damaged last.ckpt is replaced by a sound best.ckpt, else the run starts over.

    best.ckpt holds the best epoch's weights that the result's `best_*` figures need, so without a sound one
    (while last.ckpt exists) the run cannot finish correctly and starts over too.
    """
    files = RunFiles(run_dir)
    last, best = files.last_checkpoint, files.best_checkpoint
    if not last.exists():
        return
    last_problem = checkpoint_problem(last)
    best_problem = checkpoint_problem(best) if best.exists() else None  # none while val_loss never improved
    if last_problem is None and best_problem is None:
        return
    if last_problem is not None and best_problem is None and best.exists():
        with best.open("rb") as source:
            write_atomic(last, lambda handle: shutil.copyfileobj(source, handle))
        note(f"{last} is damaged ({last_problem}); {run_dir.name} resumes from best.ckpt instead")
        return
    damaged = [f"{path.name} ({problem})" for path, problem in ((last, last_problem), (best, best_problem)) if problem]
    for path in (last, best):
        path.unlink(missing_ok=True)
    note(f"checkpoints of {run_dir.name} are unusable: {'; '.join(damaged)}; the run starts over")


def clear_for_fresh_start(run_dir: Path) -> None:
    """Empty the run directory for --fresh, keeping the lock file that the caller holds."""
    for path in run_dir.iterdir():
        if path.name == LOCK_NAME:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def repair(run_dir: Path) -> None:
    """Everything a lock holder tidies before it resumes a run."""
    if run_dir.is_dir():
        sweep_temp_files(run_dir)
        recover_checkpoints(run_dir)
