"""The process that `--jobs N` workers are forked from: it imports torch, Lightning and the plugins once.

A worker spawned afresh pays about 5 s of imports (7 s on a slow machine) before its first batch, and the command has
paid the same already: with two cores, three processes importing at once cost more than running the study one run
at a time. Instead, a fork server (`multiprocessing`'s "forkserver" start method) is started as early as the command
knows it will run jobs side by side. It imports while the command does, on the core the command leaves idle, and
each worker is then a fork of it, ready in a fraction of a second. The server never trains and never touches a GPU,
so a fork inherits no thread pool, lock or CUDA context. It exits with the command.

This module imports nothing heavy itself, so the command can start the server before its own imports.
"""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing.context import ForkServerContext, SpawnContext

# What the server imports before forking anyone: what workers need, and its own quick exit.
PRELOAD = ["cnnkit.studies.worker_preload", "cnnkit.studies.worker_server_exit"]


def worker_context() -> SpawnContext | ForkServerContext:
    """The start method of job workers: forks of the preloaded server where the platform has one, else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_worker_server() -> None:
    """Start the fork server now, without waiting for its imports (a worker started later waits for them).

    It starts with SIGINT ignored: Ctrl-C reaches the terminal's whole process group, and a server interrupted in
    its imports would print their traceback after the command had ended. (Python keeps an inherited SIG_IGN, and
    the server ignores SIGINT itself once its imports are done; each worker takes Ctrl-C back, `workers._worker_main`.)
    """
    context = worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        # Ignored, so that the server inherits SIG_IGN across its exec and Ctrl-C never interrupts its imports;
        # and blocked meanwhile, so that a Ctrl-C in this window stays pending here (Linux keeps a blocked signal
        # even when ignored) and reaches the command once its handler is back, instead of being lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
