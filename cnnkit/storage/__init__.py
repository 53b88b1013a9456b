"""The run directory on disk: atomic writes, run locks and claims, damaged files, a full disk."""
