"""One search point of a sweep: ``repeats`` students at one strength, rows written, objectives averaged.

Plain Python: the Tune adapter (:mod:`mia_kd.sweep.tune`) calls :func:`run_point` inside a worker and reports
what it returns (docs/architecture.md §2).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mia_kd.config import TrialConfig
from mia_kd.objectives import PRIVACY, REPORTED_PRIVACY, UTILITY, Objective
from mia_kd.prepared import Prepared
from mia_kd.shadows import ShadowScores
from mia_kd.store import SweepStorage
from mia_kd.sweep import students
from mia_kd.sweep.plan import SweepPlan
from mia_kd.trial import run_student

TRACKED = ("auc", "tpr_at_fpr_1pct")  # the student's per-attack eval metrics a search point reports to Tune


@dataclass(frozen=True)
class PointResult:
    """One search point's objectives, each the mean over its ``repeats`` students, and what trackers see."""

    values: dict[str, float]  # objective name -> mean value
    seconds: float
    # attack -> {auc, tpr_at_fpr_1pct}: the student's eval-fold metrics, mean over repeats (NaN where unresolved)
    student: dict[str, dict[str, float]] = field(default_factory=dict)
    epsilon: float | None = None  # DP-SGD's epsilon, mean over repeats; None for other methods

    def __getitem__(self, objective: Objective) -> float:
        return self.values[objective.name]


def run_point(
    plan: SweepPlan,
    prepared: Prepared,
    *,
    method: str,
    strength: float,
    shared: dict[str, float],
    trial_id: str,
    optuna_trial: int | None,
    out: str,
    threads: int,
    shadow_students: Callable[[TrialConfig], list[ShadowScores]] | None = None,
) -> PointResult:
    """One search point: ``sweep.repeats`` students at ``strength``, each one's rows written (and its student
    saved, as asked), the objectives averaged. Called by the Tune adapter inside a worker. ``shadow_students``:
    each student's own shadow students from its config (``shadows.online``), else the prepared ones."""
    start, sweep = time.perf_counter(), plan.config.sweep
    sums = {objective.name: 0.0 for objective in (PRIVACY, REPORTED_PRIVACY, UTILITY)}
    student: dict[str, dict[str, float]] = {}
    epsilons: list[float] = []
    for repeat in range(sweep.repeats):
        config = plan.trial_config(method, strength, shared, repeat=repeat, threads=threads)
        result = run_student(prepared, config, trial_id=trial_id if sweep.repeats == 1 else f"{trial_id}-r{repeat}",
                             shadow_students=shadow_students(config) if shadow_students else None)
        result.trial.update(optuna_trial=optuna_trial, tune_trial_id=trial_id)
        if sweep.save_students != "none":
            students.save(SweepStorage.parse(out), result)
        result.write(out, shared=False)  # the runner wrote the prepared state's teacher and reference rows
        row = result.trial
        for objective in (PRIVACY, REPORTED_PRIVACY, UTILITY):
            sums[objective.name] += row[objective.column]
        for metric in (m for m in result.metrics if m["model_role"] == "student"):
            into = student.setdefault(metric["attack"], dict.fromkeys(TRACKED, 0.0))
            for key in TRACKED:
                into[key] += _float(metric.get(key)) / sweep.repeats
        if row.get("epsilon") is not None:
            epsilons.append(float(row["epsilon"]))
        del result
    if torch.cuda.is_available():  # the worker is reused: hand this point's GPU memory back before the next
        gc.collect()
        torch.cuda.empty_cache()
    return PointResult(
        {name: total / sweep.repeats for name, total in sums.items()}, time.perf_counter() - start, student=student,
        epsilon=sum(epsilons) / len(epsilons) if epsilons else None,
    )


def _float(value) -> float:
    return float("nan") if value is None else float(value)


