"""Imported once by the fork server of job workers (`cnnkit.studies.worker_server`): everything a worker needs
before its first run, so that no worker pays for it. Importing only; nothing here computes or touches a GPU."""

import lightning  # noqa: F401
import torch  # noqa: F401

import cnnkit.training.runner  # noqa: F401
from cnnkit.plugins import get_registries

get_registries()  # the installed plugins, loaded once
