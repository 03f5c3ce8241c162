"""Evaluation runs: the question files, metrics without an LLM judge, the tutorial baseline and reports."""
