"""Datasets: on-disk formats and checksummed downloads, and the in-memory datamodule base."""
