"""The results contract: the files of a run directory and a study directory, named, written and read here only.

`files` names them, `records` writes a run's, `reading` reads them back soundly, `runs` loads a study into typed
runs, and `stats` holds the few statistics every reader shares (the best epoch, mean ± sd, seed intervals).
"""
