"""Everything reported for one attack on one model: calib picks, eval reports (docs/architecture.md §5)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mia_kd.errors import MiaKdError
from mia_kd.metrics._bootstrap import percentile_interval, stratified_values
from mia_kd.metrics._checks import check_bootstrap_args, check_scores
from mia_kd.metrics._roc import (
    auc_batch,
    auc_of,
    best_threshold,
    fit_threshold,
    rates_of,
    resolvable,
    tpr_at_fpr,
    tpr_at_fpr_batch,
)

# The privacy statistics an objective may be (all: higher = the attack does better = less private). The
# same names as mia_kd.objectives.PRIVACY_STATISTICS and mia_kd.config.PrivacyObjective: neither layer may
# import the other, so tests/test_objectives.py keeps the three equal.
PRIVACY_STATISTICS = ("auc", "balanced_accuracy", "tpr_at_fpr_1pct")


def in_sample_statistic(statistic: str, scores: np.ndarray, labels: np.ndarray) -> float:
    """``statistic`` (one of :data:`PRIVACY_STATISTICS`) of oriented ``scores`` on the same records its
    threshold is fit on: the *selection* value read on calib, never a reported number."""
    s, y = check_scores(scores, labels)
    if statistic == "auc":
        return auc_of(s, y)
    if statistic == "balanced_accuracy":
        return float(np.mean(rates_of(s, y, best_threshold(s, y)[1])))
    if statistic == "tpr_at_fpr_1pct":
        return tpr_at_fpr(s, y, 0.01)
    raise MiaKdError(f"privacy statistic: got {statistic!r}; allowed: {', '.join(PRIVACY_STATISTICS)}")


@dataclass(frozen=True)
class AttackMetrics:
    """Everything reported for one attack on one model (a row of the ``metrics`` table, docs/architecture.md §7).

    All numbers come from ``eval`` except ``calib_*`` (the selection statistics); ``threshold`` was fit on
    ``calib``. ``*_low``/``*_high`` are bootstrap 95 % intervals. ``oracle_*`` is the in-sample oracle on
    ``eval`` (see :func:`mia_kd.metrics.oracle_accuracy`).
    """

    auc: float
    auc_low: float
    auc_high: float
    tpr_at_fpr_1pct: float  # NaN where 1/n_nonmembers > 1 %
    tpr_at_fpr_1pct_low: float
    tpr_at_fpr_1pct_high: float
    tpr_at_fpr_0_1pct: float  # NaN where 1/n_nonmembers > 0.1 %
    fpr_step: float  # 1/n_nonmembers: the smallest non-zero FPR the eval fold can show
    balanced_accuracy: float
    balanced_accuracy_low: float
    balanced_accuracy_high: float
    tpr: float
    tpr_low: float
    tpr_high: float
    tnr: float
    tnr_low: float
    tnr_high: float
    threshold: float
    oracle_accuracy: float
    oracle_threshold: float
    n_members: int
    n_nonmembers: int
    # The same statistics on calib, where the settings, orientation and threshold were fit (in-sample): what
    # selection reads (the privacy objective Optuna, fronts and ensembles use), never reported as a result.
    calib_auc: float
    calib_balanced_accuracy: float
    calib_tpr_at_fpr_1pct: float

    def to_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def evaluate_attack(
    calib_scores: np.ndarray,
    calib_labels: np.ndarray,
    eval_scores: np.ndarray,
    eval_labels: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int | np.random.Generator,
) -> AttackMetrics:
    """All metrics of one attack: threshold fit on ``calib`` (:func:`fit_threshold`), all else on ``eval``.

    Scores and labels are ``(n_calib,)`` and ``(n_eval,)``, already oriented (higher = member). The AUC,
    balanced accuracy, TPR, TNR and TPR@1 % FPR intervals come from the same stratified resamples of
    ``eval`` (``seed``), with the threshold held fixed.
    """
    cs, cy = check_scores(calib_scores, calib_labels)
    es, ey = check_scores(eval_scores, eval_labels)
    check_bootstrap_args(n_bootstrap, 0.95)
    threshold = fit_threshold(cs, cy)

    n_nonmembers = int((~ey).sum())
    low_fpr = resolvable(n_nonmembers, 0.01)

    def batch(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
        tpr = (members >= threshold).mean(axis=1)
        tnr = (nonmembers < threshold).mean(axis=1)
        at_1pct = tpr_at_fpr_batch(members, nonmembers, 0.01) if low_fpr else np.full(len(members), np.nan)
        return np.stack([auc_batch(members, nonmembers), (tpr + tnr) / 2, tpr, tnr, at_1pct], axis=1)

    (auc_lo, ba_lo, tpr_lo, tnr_lo, low_lo), (auc_hi, ba_hi, tpr_hi, tnr_hi, low_hi) = percentile_interval(
        stratified_values(batch, es, ey, n_bootstrap, seed), 0.95
    )
    tpr, tnr = rates_of(es, ey, threshold)
    oracle, oracle_threshold = best_threshold(es, ey, 0.2, ties="smallest")
    n_members = int(ey.sum())
    return AttackMetrics(
        auc=auc_of(es, ey),
        auc_low=float(auc_lo),
        auc_high=float(auc_hi),
        tpr_at_fpr_1pct=tpr_at_fpr(es, ey, 0.01),
        tpr_at_fpr_1pct_low=float(low_lo),
        tpr_at_fpr_1pct_high=float(low_hi),
        tpr_at_fpr_0_1pct=tpr_at_fpr(es, ey, 0.001),
        fpr_step=1.0 / n_nonmembers,
        balanced_accuracy=(tpr + tnr) / 2,
        balanced_accuracy_low=float(ba_lo),
        balanced_accuracy_high=float(ba_hi),
        tpr=tpr,
        tpr_low=float(tpr_lo),
        tpr_high=float(tpr_hi),
        tnr=tnr,
        tnr_low=float(tnr_lo),
        tnr_high=float(tnr_hi),
        threshold=threshold,
        oracle_accuracy=oracle,
        oracle_threshold=oracle_threshold,
        n_members=n_members,
        n_nonmembers=n_nonmembers,
        **{f"calib_{stat}": in_sample_statistic(stat, cs, cy) for stat in PRIVACY_STATISTICS},
    )
