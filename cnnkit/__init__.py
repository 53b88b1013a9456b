"""cnnkit: run a CNN study end to end and write it up.

The public plugin API and the Python API (`run`, `run_study`, `load_study`) live here. Heavy names (anything
that needs torch or lightning) are imported on first access, so that `import cnnkit` and plugin modules stay cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnkit.errors import CnnkitError, DataError, PluginError, RunError, UsageError
from cnnkit.hookspecs import hookimpl
from cnnkit.registry import ReaderInfo, RegisterCallback, StudyNotes

__version__ = "0.1.0"

_LAZY = {
    "InMemoryDataModule": "cnnkit.data.datamodule",
    "normalize_images": "cnnkit.data.datamodule",
    "one_hot": "cnnkit.data.datamodule",
    "ImageClassifier": "cnnkit.nets.model",
    # the convnet family: architectures described by data (presets register `convnet(stages=...)`)
    "convnet": "cnnkit.nets.convnet",
    "ConvNetArchitecture": "cnnkit.nets.convnet",
    "ConvNetSpec": "cnnkit.nets.convnet",
    "OptimizerSpec": "cnnkit.nets.presets",
    "ScheduleSpec": "cnnkit.training.schedules",
    "Study": "cnnkit.studies.study",
    "RunSpec": "cnnkit.studies.study",
    "Search": "cnnkit.studies.search_spec",
    "Range": "cnnkit.studies.search_spec",
    "Choice": "cnnkit.studies.search_spec",
    "Budget": "cnnkit.studies.search_spec",
    "Confirm": "cnnkit.studies.search_spec",
    "ImageSetSpec": "cnnkit.data.formats",
    "ImageArrays": "cnnkit.data.formats",
    "NpzSource": "cnnkit.data.formats",
    "Source": "cnnkit.data.formats",
    "IdxSource": "cnnkit.data.formats",
    "CifarBatchesSource": "cnnkit.data.formats",
    # the Python API (notebooks, scripts)
    "run": "cnnkit.api",
    "run_study": "cnnkit.api",
    "load_study": "cnnkit.api",
    "RunResult": "cnnkit.api",
    "StudyResult": "cnnkit.api",
}

__all__ = [
    "CnnkitError",
    "DataError",
    "PluginError",
    "ReaderInfo",
    "RegisterCallback",
    "RunError",
    "StudyNotes",
    "UsageError",
    "__version__",
    "hookimpl",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
