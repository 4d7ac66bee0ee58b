"""Membership-inference metrics: one estimator each (docs/architecture.md §5).

Convention everywhere: ``labels`` has shape ``(n,)``, 1 (or True) = member, 0 = non-member; ``scores`` has
shape ``(n,)``, float, higher = member; a record is predicted member iff ``score >= threshold``.

- AUC: Mann–Whitney U / (n_members · n_nonmembers); a member and a non-member with equal scores count 1/2.
- ROC: exact step curve, threshold +inf (point (0, 0)) then one point per distinct score, decreasing.
- TPR@α FPR: the largest TPR over ROC points with FPR ≤ α (a point with FPR exactly α counts); NaN where
  the non-members cannot resolve α (1/n_nonmembers > α).
- Threshold: maximises balanced accuracy (TPR + TNR)/2 on ``calib`` over +inf and the distinct scores;
  ties go to the middle of the tied plateau (the tied threshold nearest the midpoint of the tied ones).
- Balanced accuracy, TPR, TNR: at the ``calib`` threshold, measured on ``eval`` (threshold held fixed).
- Oracle accuracy (in-sample, only to compare with published numbers): best balanced accuracy on the same
  records, among thresholds leaving each predicted class ≥ 20 % of the records.
- Confidence intervals: percentile bootstrap over records, members and non-members resampled separately
  (so both classes are always present), seeded with ``np.random.default_rng(seed)``, 95 % by default.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from mia_kd.errors import MiaKdError

__all__ = [
    "AttackMetrics",
    "auc",
    "bootstrap_ci",
    "PRIVACY_STATISTICS",
    "evaluate_attack",
    "fit_threshold",
    "in_sample_statistic",
    "oracle_accuracy",
    "rates",
    "resolvable",
    "roc_curve",
    "tpr_at_fpr",
]

Statistic = Callable[[np.ndarray, np.ndarray], float]
# A vectorised statistic: (members (b, n1), non-members (b, n0)) -> (b,) or (b, m) values.
_BatchStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Bootstrap resamples are drawn in chunks of about this many scores, to bound memory on large record sets.
_CHUNK_ELEMENTS = 2_000_000
# Slack for comparing a ratio of counts with a user-given fraction (FPR ≤ α, class share ≥ 20 %).
_EPS = 1e-12


# ---------------------------------------------------------------------------------------------- checks


def _check(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(scores float64 (n,), labels bool (n,))`` with both classes present."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MiaKdError(f"scores must be numbers: {e}") from None
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise MiaKdError(f"scores and labels must be 1-D; got shapes {s.shape} and {y.shape}")
    if len(s) != len(y):
        raise MiaKdError(f"scores and labels differ in length: {len(s)} scores, {len(y)} labels")
    if y.dtype != bool:
        if not (np.issubdtype(y.dtype, np.number) and np.isin(y, (0, 1)).all()):
            bad = np.unique(y[~np.isin(y, (0, 1))])[:5] if np.issubdtype(y.dtype, np.number) else y.dtype
            raise MiaKdError(f"labels must be 1 (member) or 0 (non-member); got {bad}")
        y = y.astype(bool)
    finite = np.isfinite(s)
    if not finite.all():
        raise MiaKdError(
            f"scores must be finite; got {int((~finite).sum())} non-finite of {len(s)} "
            f"(first at index {int(np.argmin(finite))}: {s[np.argmin(finite)]})"
        )
    n1 = int(y.sum())
    if n1 == 0 or n1 == len(y):
        raise MiaKdError(
            f"need both members and non-members; got {n1} members and {len(y) - n1} non-members"
        )
    return s, y


def _check_fraction(name: str, value: object, low: float, high: float) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not low <= value <= high:
        raise MiaKdError(f"{name}: got {value!r}, must be a number in [{low}, {high}]")
    return float(value)


def _check_bootstrap_args(n_bootstrap: object, level: object) -> None:
    if not isinstance(n_bootstrap, numbers.Integral) or isinstance(n_bootstrap, bool) or n_bootstrap < 1:
        raise MiaKdError(f"n_bootstrap: got {n_bootstrap!r}, must be an integer >= 1")
    if not isinstance(level, numbers.Real) or isinstance(level, bool) or not 0 < level < 1:
        raise MiaKdError(f"level: got {level!r}, must be in (0, 1)")


# ------------------------------------------------------------------------------------------ estimators


def _auc(s: np.ndarray, y: np.ndarray) -> float:
    n1 = int(y.sum())
    n0 = len(y) - n1
    r1 = rankdata(s)[y].sum()  # average ranks: a tie across classes contributes 1/2
    return float((r1 - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann–Whitney AUC of ``scores`` (n,) against ``labels`` (n,): P(member > non-member) + ½ P(tie).

    Raises :class:`MiaKdError` unless both classes are present, lengths match and scores are finite.
    """
    s, y = _check(scores, labels)
    return _auc(s, y)


def _roc_counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, tp, fp)``, each ``(n_distinct + 1,)``: +inf then the distinct scores, decreasing;
    ``tp``/``fp`` count members/non-members with ``score >= threshold``."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # The last position of each run of equal scores: every tied record is in or out together.
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(~y_sorted)[last]
    return np.r_[np.inf, s_sorted[last]], np.r_[0, tp], np.r_[0, fp]


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact ROC step curve: ``(fpr, tpr, thresholds)``, each ``(n_distinct + 1,)``.

    Point 0 is ``(0, 0)`` at threshold +inf; then one point per distinct score in decreasing order, where
    ``fpr``/``tpr`` are the shares of non-members/members with ``score >= threshold``. Nothing is
    interpolated or dropped.
    """
    s, y = _check(scores, labels)
    thresholds, tp, fp = _roc_counts(s, y)
    n1 = int(y.sum())
    return fp / (len(y) - n1), tp / n1, thresholds


def resolvable(n_nonmembers: int, alpha: float) -> bool:
    """Whether ``n_nonmembers`` can resolve an FPR of ``alpha``: one false positive is a step of
    1/n_nonmembers, so below that "TPR at α FPR" is only TPR at zero false positives."""
    return n_nonmembers > 0 and 1.0 / n_nonmembers <= alpha + _EPS


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, alpha: float) -> float:
    """The largest TPR over ROC points with FPR ≤ ``alpha`` (in [0, 1]; a point at exactly ``alpha``
    counts), or NaN where the non-members cannot resolve ``alpha`` (1/n_nonmembers > alpha, see
    :func:`resolvable`). The (0, 0) point always qualifies, so this is 0 when every other point has
    FPR > alpha."""
    alpha = _check_fraction("alpha", alpha, 0.0, 1.0)
    s, y = _check(scores, labels)
    if not resolvable(int((~y).sum()), alpha):
        return float("nan")
    return float(_tpr_at_fpr_batch(s[y][None, :], s[~y][None, :], alpha)[0])


def _tpr_at_fpr_batch(members: np.ndarray, nonmembers: np.ndarray, alpha: float) -> np.ndarray:
    """TPR at ``alpha`` FPR of each row: ``members`` (b, n1) against ``nonmembers`` (b, n0) -> (b,).

    At most k = ⌊α·n0⌋ non-members may score at or above the threshold, so the best threshold sits just
    above the (k+1)-th highest non-member score v, and TPR is the share of members scoring strictly above v
    (the exact ROC step curve's value: thresholds are distinct scores, ties move together).
    """
    n0 = nonmembers.shape[1]
    k = int(np.floor(alpha * n0 + _EPS * n0))
    if k >= n0:
        return np.ones(members.shape[0])
    v = -np.partition(-nonmembers, k, axis=1)[:, k]
    return (members > v[:, None]).mean(axis=1)


def _best_threshold(
    s: np.ndarray, y: np.ndarray, min_class_fraction: float = 0.0, *, ties: str = "middle"
) -> tuple[float, float]:
    """``(balanced_accuracy, threshold)`` maximising balanced accuracy over +inf and the distinct scores,
    among thresholds leaving each predicted class ≥ ``min_class_fraction`` of the records.

    Ties (several candidates reach the best accuracy, which balanced folds make common: with n1 = n0 the
    accuracy is a function of tp − fp, a random walk that revisits its maximum) go to the **middle of the
    tied plateau** with ``ties="middle"``: the tied candidate nearest the midpoint between the largest and
    the smallest tied score (the larger on an exact tie; +inf, which ties only with the smallest score, is
    never chosen). The
    threshold stays one that maximises balanced accuracy. Taking an end instead biases what the threshold
    flags: the smallest flags the most records and raised eval TPR by 2–6 points on symmetric, signal-free
    scores (``tests/test_metrics.py`` measures it). ``ties="smallest"`` keeps the study's convention (the
    oracle). ``(nan, nan)`` when no threshold qualifies.
    """
    thresholds, tp, fp = _roc_counts(s, y)
    n = len(y)
    n1 = int(y.sum())
    n0 = n - n1
    # 2·n1·n0 · balanced accuracy, in integers so that equal accuracies compare equal.
    key = tp * n0 + (n0 - fp) * n1
    predicted_members = tp + fp
    floor = min_class_fraction * n - _EPS * n
    ok = (predicted_members >= floor) & (n - predicted_members >= floor)
    if not ok.any():
        return float("nan"), float("nan")
    key = np.where(ok, key, -1)
    tied = np.flatnonzero(key == key.max())  # thresholds decrease along the index
    accuracy = float(key[tied[0]] / (2 * n1 * n0))
    if ties == "smallest" or len(tied) == 1:
        return accuracy, float(thresholds[tied[-1]])
    finite = tied[tied > 0]  # +inf (index 0) ties only with the smallest score, so finite is never empty here
    middle = (thresholds[finite[0]] + thresholds[finite[-1]]) / 2
    return accuracy, float(thresholds[finite[np.argmin(np.abs(thresholds[finite] - middle))]])


def fit_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold maximising balanced accuracy (TPR + TNR)/2 on these (``calib``) records.

    Candidates are +inf and every distinct score; ties go to the middle of the tied plateau (see
    :func:`_best_threshold`). Always finite: +inf and the smallest score both reach ½, so +inf is never the
    only best candidate.
    """
    s, y = _check(scores, labels)
    return _best_threshold(s, y)[1]


def _rates(s: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    predicted = s >= threshold
    return float(predicted[y].mean()), float((~predicted[~y]).mean())


def rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(TPR, TNR)`` at ``threshold``: the share of members with ``score >= threshold`` and the share
    of non-members below it. Balanced accuracy is their mean."""
    s, y = _check(scores, labels)
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or np.isnan(threshold):
        raise MiaKdError(f"threshold: got {threshold!r}, must be a number (±inf allowed)")
    return _rates(s, y, float(threshold))


def oracle_accuracy(
    scores: np.ndarray, labels: np.ndarray, min_class_fraction: float = 0.2
) -> tuple[float, float]:
    """IN-SAMPLE "oracle" balanced accuracy, as in the study this project grows from: ``(accuracy,
    threshold)``, both the best on these same records, among thresholds (+inf and the distinct scores)
    leaving each predicted class at least ``min_class_fraction`` of the records; ties go to the smallest
    threshold. Optimistic by construction: report it only under its own name, next to the calibrated
    balanced accuracy. ``(nan, nan)`` when no threshold satisfies the class rule (e.g. constant scores).
    """
    s, y = _check(scores, labels)
    fraction = _check_fraction("min_class_fraction", min_class_fraction, 0.0, 0.5)
    return _best_threshold(s, y, fraction, ties="smallest")


# ------------------------------------------------------------------------------------------- bootstrap


def _auc_batch(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
    """AUC of each row: ``members`` (b, n1) against ``nonmembers`` (b, n0) -> (b,)."""
    n1, n0 = members.shape[1], nonmembers.shape[1]
    ranks = rankdata(np.concatenate([members, nonmembers], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _bootstrap_values(
    batch_statistic: _BatchStatistic, s: np.ndarray, y: np.ndarray, n_bootstrap: int, seed: int
) -> np.ndarray:
    """``batch_statistic`` on ``n_bootstrap`` stratified resamples: (n_bootstrap,) or (n_bootstrap, m).

    Each resample draws n1 members from the members and n0 non-members from the non-members, with
    replacement. The draws depend only on ``seed``, n1 and n0, so statistics bootstrapped with the same
    seed on the same records see the same resamples.
    """
    members, nonmembers = s[y], s[~y]
    n1, n0 = len(members), len(nonmembers)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // (n1 + n0))
    values = []
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        values.append(
            batch_statistic(members[rng.integers(0, n1, (b, n1))], nonmembers[rng.integers(0, n0, (b, n0))])
        )
    return np.concatenate(values, axis=0)


def _percentile_interval(values: np.ndarray, level: float) -> np.ndarray:
    """Percentile interval of ``values`` (B,) or (B, m) along axis 0: (2,) or (2, m)."""
    tail = (1 - level) / 2
    return np.quantile(values, [tail, 1 - tail], axis=0)


def bootstrap_ci(
    statistic: Statistic,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` of ``statistic(scores, labels) -> float``.

    Members and non-members are resampled separately with replacement (each resample keeps n1 members
    and n0 non-members), seeded with ``np.random.default_rng(seed)``. The resample passed to
    ``statistic`` lists its members first; its labels are an int array of 1s then 0s. :func:`auc` is
    bootstrapped vectorised (about a millisecond per 100 resamples of 400 records); any other statistic is
    called once per resample.
    """
    s, y = _check(scores, labels)
    _check_bootstrap_args(n_bootstrap, level)
    if statistic is auc:
        batch: _BatchStatistic = _auc_batch
    else:
        n1 = int(y.sum())
        resample_labels = np.r_[np.ones(n1, dtype=np.int64), np.zeros(len(y) - n1, dtype=np.int64)]

        def batch(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
            return np.array(
                [statistic(np.concatenate([m, o]), resample_labels) for m, o in zip(members, nonmembers)],
                dtype=np.float64,
            )

    low, high = _percentile_interval(_bootstrap_values(batch, s, y, n_bootstrap, seed), level)
    return float(low), float(high)


# ---------------------------------------------------------------------------------------- one attack

# The privacy statistics an objective may be (all: higher = the attack does better = less private).
PRIVACY_STATISTICS = ("auc", "balanced_accuracy", "tpr_at_fpr_1pct")


def in_sample_statistic(statistic: str, scores: np.ndarray, labels: np.ndarray) -> float:
    """``statistic`` (one of :data:`PRIVACY_STATISTICS`) of oriented ``scores`` on the same records its
    threshold is fit on: the *selection* value read on calib, never a reported number."""
    s, y = _check(scores, labels)
    if statistic == "auc":
        return _auc(s, y)
    if statistic == "balanced_accuracy":
        return float(np.mean(_rates(s, y, _best_threshold(s, y)[1])))
    if statistic == "tpr_at_fpr_1pct":
        return tpr_at_fpr(s, y, 0.01)
    raise MiaKdError(f"privacy statistic: got {statistic!r}; allowed: {', '.join(PRIVACY_STATISTICS)}")



@dataclass(frozen=True)
class AttackMetrics:
    """Everything reported for one attack on one model (a row of the ``metrics`` table, docs/architecture.md §7).

    All numbers come from ``eval`` except ``calib_*`` (the selection statistics); ``threshold`` was fit on
    ``calib``. ``*_low``/``*_high`` are bootstrap 95 % intervals. ``oracle_*`` is the in-sample oracle on
    ``eval`` (see :func:`oracle_accuracy`).
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
    seed: int = 0,
) -> AttackMetrics:
    """All metrics of one attack: threshold fit on ``calib`` (:func:`fit_threshold`), all else on ``eval``.

    Scores and labels are ``(n_calib,)`` and ``(n_eval,)``, already oriented (higher = member). The AUC,
    balanced accuracy, TPR, TNR and TPR@1 % FPR intervals come from the same stratified resamples of
    ``eval`` (``seed``), with the threshold held fixed.
    """
    cs, cy = _check(calib_scores, calib_labels)
    es, ey = _check(eval_scores, eval_labels)
    _check_bootstrap_args(n_bootstrap, 0.95)
    threshold = fit_threshold(cs, cy)

    n_nonmembers = int((~ey).sum())
    low_fpr = resolvable(n_nonmembers, 0.01)

    def batch(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
        tpr = (members >= threshold).mean(axis=1)
        tnr = (nonmembers < threshold).mean(axis=1)
        at_1pct = _tpr_at_fpr_batch(members, nonmembers, 0.01) if low_fpr else np.full(len(members), np.nan)
        return np.stack([_auc_batch(members, nonmembers), (tpr + tnr) / 2, tpr, tnr, at_1pct], axis=1)

    (auc_lo, ba_lo, tpr_lo, tnr_lo, low_lo), (auc_hi, ba_hi, tpr_hi, tnr_hi, low_hi) = _percentile_interval(
        _bootstrap_values(batch, es, ey, n_bootstrap, seed), 0.95
    )
    tpr, tnr = _rates(es, ey, threshold)
    oracle, oracle_threshold = _best_threshold(es, ey, 0.2, ties="smallest")
    n_members = int(ey.sum())
    return AttackMetrics(
        auc=_auc(es, ey),
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
