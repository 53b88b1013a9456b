"""What the terminal shows: Lightning kept quiet, Keras-clear epoch lines, ETAs, job output, study headers."""
