"""What makes a killed run resumable with identical numbers: atomic checkpoints and saved RNG states."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cnnkit.storage.atomic import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temp file, fsynced, then renamed: a SIGKILL never leaves a torn last.ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        write_atomic(path, lambda handle: torch.save(checkpoint, handle))


class RngState(L.Callback):
    """Saves the python, numpy and torch RNG states with each checkpoint and restores them on resume.

    The training shuffle itself is a pure function of (seed, epoch), so it needs no state.
    """

    def state_dict(self) -> dict[str, Any]:
        # Plain types and tensors only, so that checkpoints load with torch.load(weights_only=True).
        state = np.random.get_state(legacy=True)  # legacy=True is the default (the stub's default overload says False)
        if isinstance(state, dict):  # only after np.random.set_bit_generator with another generator than MT19937
            raise ValueError(f"cannot save numpy's global RNG state: it is not MT19937 ({state['bit_generator']})")
        kind, keys, position, has_gauss, gauss = state
        return {
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        kind, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        torch.set_rng_state(state_dict["torch"])
        if state_dict.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
