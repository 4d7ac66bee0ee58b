"""Sweeps: Ray Tune schedules trials, Optuna searches each method's strength (imports ray lazily)."""
