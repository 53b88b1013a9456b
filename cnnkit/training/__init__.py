"""One training run: the Lightning Trainer, its callbacks, resumable checkpoints and the files a run writes."""
