"""Sweeps (docs/architecture.md §2): a plan built once, a runner without Ray, one Tune adapter (the only module
that imports ray), Optuna studies per method, and the students kept on disk."""
