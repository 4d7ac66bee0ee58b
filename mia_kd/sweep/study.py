"""Optuna side of a sweep: one study per method in a journal file, samplers, and reconciliation with the store.

The Parquet store is the source of truth. Before a method's search (re)starts, its study is reconciled
with it: a trial the study still holds as RUNNING (its driver was killed) becomes COMPLETE with the stored
objectives if its rows landed, FAIL otherwise. Completed and failed trials in the store count toward the
method's budget, so a resumed sweep runs only what is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from mia_kd.config import SweepSection
from mia_kd.objectives import DIRECTIONS, PRIVACY, UTILITY
from mia_kd.sweep.plan import MethodPlan

log = logging.getLogger(__name__)


def journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """A journal file every study of the sweep shares (``optuna-dashboard PATH`` opens it)."""
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def study_name(sweep_id: str, method: str) -> str:
    return f"{sweep_id}.{method}"


def make_sampler(name: str, *, seed: int, trials: int, grid: dict[str, list[float]] | None = None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, min(20, trials // 2)))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


@dataclass(frozen=True)
class MethodStudy:
    """A method's study, reconciled with the store: its sampler, trials still to run, and whether to
    evaluate the neutral strength first."""

    sampler: optuna.samplers.BaseSampler
    remaining: int
    neutral_first: bool


def method_study(
    method: MethodPlan, index: int, sweep: SweepSection, sweep_id: str, journal: optuna.storages.BaseStorage,
    stored: list[dict[str, Any]],
) -> MethodStudy:
    """Open (or create) ``method``'s study in ``journal`` and reconcile it with its ``stored`` trial rows."""
    low, high = method.space.low, method.space.high
    grid = {"strength": method.grid()} if low < high else {}
    sampler = make_sampler(sweep.sampler, seed=sweep.sampler_seed + index, trials=method.trials, grid=grid)
    study = optuna.create_study(
        storage=journal, study_name=study_name(sweep_id, method.name), directions=DIRECTIONS, sampler=sampler,
        load_if_exists=True,
    )
    state = reconcile(study, stored, neutral=method.neutral)
    remaining = max(0, method.trials - state.done)
    if remaining:
        log.info("%s: %d of %d trials to run (strength in [%g, %g])", method.name, remaining, method.trials, low, high)
    # The grid sampler's first point is the range's low end: where that is the neutral value, the grid
    # already evaluates it and enqueueing it too would run it twice.
    in_grid = sweep.sampler == "grid" and method.neutral in grid.get("strength", [])
    neutral_first = low < high and low <= method.neutral <= high and not state.neutral_done and not in_grid
    return MethodStudy(sampler, remaining, neutral_first)


@dataclass(frozen=True)
class Reconciled:
    done: int  # distinct Optuna trials with rows in the store (completed or failed)
    completed: int
    neutral_done: bool  # a trial at the neutral strength is in the store or queued
    marked_complete: int
    marked_failed: int


def reconcile(study: optuna.Study, stored: list[dict[str, Any]], *, neutral: float) -> Reconciled:
    """Bring ``study`` in line with the method's stored trial rows (dicts with optuna_trial, status, ...)."""
    by_number: dict[int, list[dict[str, Any]]] = {}
    for row in stored:
        if row.get("optuna_trial") is not None:
            by_number.setdefault(int(row["optuna_trial"]), []).append(row)
    marked_complete = marked_failed = 0
    waiting_neutral = False
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.WAITING:
            waiting_neutral |= trial.params.get("strength", neutral) == neutral
            continue
        if trial.state != TrialState.RUNNING:
            continue
        rows = [r for r in by_number.get(trial.number, []) if r["status"] == "completed"]
        if rows:
            values = [float(np.mean([r[objective.column] for r in rows])) for objective in (PRIVACY, UTILITY)]
            study.tell(trial.number, values)
            marked_complete += 1
        else:
            study.tell(trial.number, state=TrialState.FAIL)
            marked_failed += 1
    if marked_complete or marked_failed:
        log.info(
            "study %s: %d trial(s) left running by an earlier driver marked complete from the store, %d failed",
            study.study_name, marked_complete, marked_failed,
        )
    completed = {n for n, rows in by_number.items() if any(r["status"] == "completed" for r in rows)}
    neutral_stored = any(float(r["strength"]) == neutral for rows in by_number.values() for r in rows)
    return Reconciled(
        done=len(by_number), completed=len(completed), neutral_done=neutral_stored or waiting_neutral,
        marked_complete=marked_complete, marked_failed=marked_failed,
    )
