"""Experiments: the pipeline that trains and scores a model, and what is built on it (the
benchmark, the leaderboard, the run store notebooks reuse, provenance of stored results, and the
completion comparison that trains a second model)."""
