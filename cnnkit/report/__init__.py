"""The IMRaD report: analysis of the result files, figures, wording per language, HTML and PDF rendering."""
