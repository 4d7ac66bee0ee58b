"""Sweeps (docs/architecture.md §2): a plan built once, a runner without Ray, one Tune adapter (with the shadow
tasks and the trackers, the only code that imports ray), Optuna studies per method, and the students kept on disk."""
