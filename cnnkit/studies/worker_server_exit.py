"""Imported by the fork server of job workers only (`worker_server.PRELOAD`): once its command has ended, the
server exits at once.

The server ends when the command and its workers are gone. Python's teardown of a process that imported torch and
Lightning then takes 1.5-3 s, and all that time the server would still hold the command's terminal and pipes
(`cnnkit run --study ... | tee log` would wait for it). It has nothing to clean up: its workers, forks of it, have
exited by then. So the first exit handler to run ends the process.
"""

import atexit
import os

atexit.register(os._exit, 0)
