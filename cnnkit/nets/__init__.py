"""Networks: the classifier base, the presets of library defaults, exact counts and Keras-style summaries."""
