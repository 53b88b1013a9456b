"""Studies: many runs, one at a time, side by side in job processes or on Ray, and where a study stands."""
