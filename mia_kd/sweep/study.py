"""Optuna side of a sweep: one study per method in a journal file, samplers, and reconciliation with the store.

The Parquet store is the source of truth. Before a method's search (re)starts, its study is reconciled
with it: a trial the study still holds as RUNNING (its driver was killed) becomes COMPLETE with the stored
objectives if its rows landed, FAIL otherwise. Completed and failed trials in the store count toward the
method's budget, so a resumed sweep runs only what is missing.

The baseline (the neutral strength: plain distillation, the same student for every method) is trained once,
as the plan's baseline method; every other method whose space holds its neutral strength is given it as a
completed trial with the stored objectives (user attr ``trial_id``) instead of training it again, and it
counts as one of that method's trials. It is added once: a study that holds a trial with that ``trial_id``
is left as it is.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from mia_kd.config import SweepSection
from mia_kd.objectives import DIRECTIONS, NAMES, PRIVACY, UTILITY
from mia_kd.store import SweepStorage, read_table
from mia_kd.sweep.plan import MethodPlan, SweepPlan
from mia_kd.sweep.samplers import make_sampler

log = logging.getLogger(__name__)


def journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """A journal file every study of the sweep shares (``optuna-dashboard PATH`` opens it)."""
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def study_name(sweep_id: str, method: str) -> str:
    return f"{sweep_id}.{method}"


def mean_objectives(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(privacy, utility) of one search point: its stored rows' selection objectives, averaged over repeats."""
    return tuple(float(np.mean([r[objective.column] for r in rows])) for objective in (PRIVACY, UTILITY))


@dataclass(frozen=True)
class Baseline:
    """The sweep's baseline search point as stored: trained once as ``method``, given to the other studies."""

    method: str
    trial_id: str  # the search point's id (its Tune trial id; its students' rows share it as tune_trial_id)
    values: tuple[float, float]  # (privacy, utility): the stored objectives, averaged over repeats
    shared: dict[str, float]  # the shared knobs (distill.*) it was trained with, if the sweep searches any


def stored_baseline(
    plan: SweepPlan, journal: optuna.storages.BaseStorage, stored: list[dict[str, Any]]
) -> Baseline | None:
    """The baseline's completed point in the store (``stored``: the sweep's trial rows), else ``None``."""
    name = plan.baseline
    rows = [r for r in plan.baseline_rows(stored) if r["status"] == "completed"]
    if not rows:
        return None
    point = rows[0].get("tune_trial_id") or rows[0]["trial_id"]
    rows = [r for r in rows if (r.get("tune_trial_id") or r["trial_id"]) == point]  # its repeats
    values = mean_objectives(rows)
    shared: dict[str, float] = {}
    if plan.config.sweep.shared:  # the knobs it ran with are in the baseline method's study
        study = optuna.load_study(study_name=study_name(plan.config.base.sweep_id, name), storage=journal)
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == rows[0]["optuna_trial"]), None)
        if trial is None or not set(plan.config.sweep.shared) <= set(trial.params):
            log.warning("the baseline %s is not in the Optuna journal: other methods' studies are not given it", point)
            return None
        shared = {key: float(trial.params[key]) for key in plan.config.sweep.shared}
    return Baseline(name, str(point), values, shared)


@dataclass(frozen=True)
class MethodStudy:
    """A method's study, reconciled with the store: its sampler, trials still to run, and whether to
    evaluate the neutral strength first."""

    sampler: optuna.samplers.BaseSampler
    remaining: int
    neutral_first: bool


def method_study(
    method: MethodPlan, index: int, sweep: SweepSection, sweep_id: str, journal: optuna.storages.BaseStorage,
    stored: list[dict[str, Any]], *, trains_baseline: bool = False, baseline: Baseline | None = None,
    baseline_pending: bool = False,
) -> MethodStudy:
    """Open (or create) ``method``'s study in ``journal`` and reconcile it with its ``stored`` trial rows.

    ``trains_baseline``: ``method`` is the plan's baseline method (its neutral strength is enqueued first);
    ``baseline``: the stored baseline trained as another method, added to this study once (counted in its
    budget); ``baseline_pending``: the baseline trains in this same experiment and is added (by
    :func:`add_baseline`) once it completes, so it is counted in the budget already. Either way the neutral
    strength is left out of a grid: it is evaluated once, not again by it.
    """
    given = baseline is not None or baseline_pending
    low, high = method.space.low, method.space.high
    points = method.grid()
    if (trains_baseline or given) and method.holds_neutral:
        points = [p for p in points if p != method.neutral] or points
    grid = {"strength": points} if low < high else {}
    sampler = make_sampler(sweep.sampler, seed=sweep.sampler_seed + index, trials=method.trials, grid=grid)
    study = optuna.create_study(
        storage=journal, study_name=study_name(sweep_id, method.name), directions=DIRECTIONS, sampler=sampler,
        load_if_exists=True,
    )
    if study.metric_names is None:  # once: optuna-dashboard then labels the objectives by name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(NAMES))
    state = reconcile(study, stored, neutral=method.neutral)
    if baseline is not None:
        add_baseline(study, baseline, method, sweep)
    remaining = max(0, method.trials - state.done - given)
    if remaining:
        log.info("%s: %d of %d trials to run (strength in [%g, %g])", method.name, remaining, method.trials, low, high)
    neutral_first = trains_baseline and low < high and method.holds_neutral and not state.neutral_done
    return MethodStudy(sampler, remaining, neutral_first)


def add_baseline(study: optuna.Study, baseline: Baseline, method: MethodPlan, sweep: SweepSection) -> None:
    """Give ``study`` the ``baseline`` as a completed trial at ``method``'s neutral strength, unless it holds
    it already (it counts as one of the method's trials)."""
    if any(t.user_attrs.get("trial_id") == baseline.trial_id for t in study.get_trials(deepcopy=False)):
        return
    low, high = method.space.low, method.space.high
    params: dict[str, float] = dict(baseline.shared)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        key: optuna.distributions.FloatDistribution(lo, hi) for key, (lo, hi) in sweep.shared.items()
    }
    if low < high:  # the search space of the Tune adapter's _Space, so the samplers read it as theirs
        if method.space.integer:
            params["strength"] = int(method.neutral)
            distributions["strength"] = optuna.distributions.IntDistribution(math.ceil(low), math.floor(high))
        else:
            params["strength"] = method.neutral
            distributions["strength"] = optuna.distributions.FloatDistribution(low, high)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions=distributions, values=list(baseline.values),
        user_attrs={"trial_id": baseline.trial_id, "baseline_of": baseline.method},
    ))
    log.info("%s: given the baseline %s (trained as %s) instead of training it again", method.name,
             baseline.trial_id, baseline.method)


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
            study.tell(trial.number, list(mean_objectives(rows)))
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


def stored_trials(storage: SweepStorage, sweep_id: str) -> list[dict[str, Any]]:
    """The sweep's ``trials`` rows so far (the columns resuming, reconciling and pruning read)."""
    if not storage.exists("trials"):
        return []
    table = read_table(storage.out, "trials", sweep_id=sweep_id)
    wanted = [c for c in ("trial_id", "tune_trial_id", "method", "status", "strength", "optuna_trial", PRIVACY.column,
                          UTILITY.column)
              if c in table.column_names]
    return table.select(wanted).to_pylist()
