"""The leakage transfer ratio: how much of the teacher's low-FPR leakage the student carries.

Per trial: the student's TPR at 1 % FPR over the teacher's, on the eval fold, for the strongest attack, the
one whose *teacher* TPR at 1 % FPR is highest on calib (docs/architecture.md §5: chosen on calib, reported
on eval). The CI is a paired percentile bootstrap: each replicate resamples the eval records once (members
and non-members separately, as every CI here) and computes both models' TPR on that same resample, so the
ratio's CI reflects the two models' correlated errors. Replicates whose teacher TPR is 0 have no ratio and
are left out of the interval (:attr:`LeakageTransfer.n_skipped` counts them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mia_kd.metrics._bootstrap import bootstrap_values, percentile_interval
from mia_kd.metrics._checks import check_bootstrap_args, check_scores
from mia_kd.metrics._roc import resolvable, tpr_at_fpr_batch

ALPHA = 0.01


@dataclass(frozen=True)
class LeakageTransfer:
    """``ratio`` = student / teacher TPR at ``ALPHA`` FPR on eval, with its 95 % paired-bootstrap interval.

    NaN where it is undefined: the teacher's TPR is 0, or the eval non-members cannot resolve 1 % FPR; the
    interval is NaN where no replicate has a ratio. ``n_skipped``: replicates left out (teacher TPR 0).
    """

    ratio: float
    low: float
    high: float
    teacher_tpr: float
    student_tpr: float
    n_skipped: int


def strongest_attack(calib_tpr: Mapping[str, float]) -> str | None:
    """The attack with the highest teacher calib TPR@1 % FPR, from ``attack -> value`` in config order.

    Ties go to the first in that order; NaN values (calib too small to resolve 1 % FPR) never win; None
    where every value is NaN.
    """
    best, best_value = None, -math.inf
    for name, value in calib_tpr.items():
        if value is not None and not math.isnan(value) and value > best_value:
            best, best_value = name, float(value)
    return best


def leakage_transfer_ratio(
    teacher_scores: np.ndarray,
    student_scores: np.ndarray,
    labels: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int | np.random.Generator,
    level: float = 0.95,
) -> LeakageTransfer:
    """The ratio on one fold: ``(n,)`` oriented scores of each model on the same records, ``labels`` (n,).

    The bootstrap draws ``n_bootstrap`` stratified resamples (``seed``) and applies each to both models.
    """
    ts, y = check_scores(teacher_scores, labels)
    ss, _ = check_scores(student_scores, labels)
    check_bootstrap_args(n_bootstrap, level)
    if not resolvable(int((~y).sum()), ALPHA):
        nan = float("nan")
        return LeakageTransfer(nan, nan, nan, nan, nan, 0)
    t_members, t_others, s_members, s_others = ts[y], ts[~y], ss[y], ss[~y]

    def pair(members: np.ndarray, others: np.ndarray) -> np.ndarray:
        """``(b, 2)``: teacher and student TPR on each resample (the same indices for both)."""
        return np.stack([tpr_at_fpr_batch(t_members[members], t_others[others], ALPHA),
                         tpr_at_fpr_batch(s_members[members], s_others[others], ALPHA)], axis=1)

    teacher, student = pair(np.arange(len(t_members))[None], np.arange(len(t_others))[None])[0]
    values = bootstrap_values(pair, (len(t_members), len(t_others)), n_bootstrap=n_bootstrap, rng=seed)
    kept = values[:, 0] > 0
    ratios = values[kept, 1] / values[kept, 0]
    low, high = percentile_interval(ratios, level) if len(ratios) else (float("nan"), float("nan"))
    return LeakageTransfer(
        ratio=float(student / teacher) if teacher > 0 else float("nan"), low=float(low), high=float(high),
        teacher_tpr=float(teacher), student_tpr=float(student), n_skipped=int((~kept).sum()),
    )
