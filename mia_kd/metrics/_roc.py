"""The ROC family of estimators: AUC, the exact ROC curve, TPR at α FPR, the threshold and its rates.

Convention (docs/architecture.md §5): ``labels`` ``(n,)`` 1 (or True) = member; ``scores`` ``(n,)``
float, higher = member; a record is predicted member iff ``score >= threshold``.
"""

from __future__ import annotations

import numbers

import numpy as np

from mia_kd.errors import MiaKdError
from mia_kd.metrics._checks import EPS, check_fraction, check_scores


def auc_of(s: np.ndarray, y: np.ndarray) -> float:
    """:func:`auc` of already checked ``s`` float64 (n,) and ``y`` bool (n,)."""
    from scipy.stats import rankdata  # here: scipy.stats takes 3 s to import, and validating a config needs none

    n1 = int(y.sum())
    n0 = len(y) - n1
    r1 = rankdata(s)[y].sum()  # average ranks: a tie across classes contributes 1/2
    return float((r1 - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann–Whitney AUC of ``scores`` (n,) against ``labels`` (n,): P(member > non-member) + ½ P(tie).

    Raises :class:`MiaKdError` unless both classes are present, lengths match and scores are finite.
    """
    s, y = check_scores(scores, labels)
    return auc_of(s, y)


def auc_batch(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
    """AUC of each row: ``members`` (b, n1) against ``nonmembers`` (b, n0) -> (b,)."""
    from scipy.stats import rankdata

    n1, n0 = members.shape[1], nonmembers.shape[1]
    ranks = rankdata(np.concatenate([members, nonmembers], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def roc_counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    s, y = check_scores(scores, labels)
    thresholds, tp, fp = roc_counts(s, y)
    n1 = int(y.sum())
    return fp / (len(y) - n1), tp / n1, thresholds


def resolvable(n_nonmembers: int, alpha: float) -> bool:
    """Whether ``n_nonmembers`` can resolve an FPR of ``alpha``: one false positive is a step of
    1/n_nonmembers, so below that "TPR at α FPR" is only TPR at zero false positives."""
    return n_nonmembers > 0 and 1.0 / n_nonmembers <= alpha + EPS


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, alpha: float) -> float:
    """The largest TPR over ROC points with FPR ≤ ``alpha`` (in [0, 1]; a point at exactly ``alpha``
    counts), or NaN where the non-members cannot resolve ``alpha`` (1/n_nonmembers > alpha, see
    :func:`resolvable`). The (0, 0) point always qualifies, so this is 0 when every other point has
    FPR > alpha."""
    alpha = check_fraction("alpha", alpha, 0.0, 1.0)
    s, y = check_scores(scores, labels)
    if not resolvable(int((~y).sum()), alpha):
        return float("nan")
    return float(tpr_at_fpr_batch(s[y][None, :], s[~y][None, :], alpha)[0])


def tpr_at_fpr_batch(members: np.ndarray, nonmembers: np.ndarray, alpha: float) -> np.ndarray:
    """TPR at ``alpha`` FPR of each row: ``members`` (b, n1) against ``nonmembers`` (b, n0) -> (b,).

    At most k = ⌊α·n0⌋ non-members may score at or above the threshold, so the best threshold sits just
    above the (k+1)-th highest non-member score v, and TPR is the share of members scoring strictly above v
    (the exact ROC step curve's value: thresholds are distinct scores, ties move together).
    """
    n0 = nonmembers.shape[1]
    k = int(np.floor(alpha * n0 + EPS * n0))
    if k >= n0:
        return np.ones(members.shape[0])
    v = -np.partition(-nonmembers, k, axis=1)[:, k]
    return (members > v[:, None]).mean(axis=1)


def best_threshold(
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
    thresholds, tp, fp = roc_counts(s, y)
    n = len(y)
    n1 = int(y.sum())
    n0 = n - n1
    # 2·n1·n0 · balanced accuracy, in integers so that equal accuracies compare equal.
    key = tp * n0 + (n0 - fp) * n1
    predicted_members = tp + fp
    floor = min_class_fraction * n - EPS * n
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
    :func:`best_threshold`). Always finite: +inf and the smallest score both reach ½, so +inf is never the
    only best candidate.
    """
    s, y = check_scores(scores, labels)
    return best_threshold(s, y)[1]


def rates_of(s: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    """:func:`rates` of already checked ``s`` and ``y``."""
    predicted = s >= threshold
    return float(predicted[y].mean()), float((~predicted[~y]).mean())


def rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(TPR, TNR)`` at ``threshold``: the share of members with ``score >= threshold`` and the share
    of non-members below it. Balanced accuracy is their mean."""
    s, y = check_scores(scores, labels)
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or np.isnan(threshold):
        raise MiaKdError(f"threshold: got {threshold!r}, must be a number (±inf allowed)")
    return rates_of(s, y, float(threshold))


def oracle_accuracy(
    scores: np.ndarray, labels: np.ndarray, min_class_fraction: float = 0.2
) -> tuple[float, float]:
    """IN-SAMPLE "oracle" balanced accuracy, as in the study this project grows from: ``(accuracy,
    threshold)``, both the best on these same records, among thresholds (+inf and the distinct scores)
    leaving each predicted class at least ``min_class_fraction`` of the records; ties go to the smallest
    threshold. Optimistic by construction: report it only under its own name, next to the calibrated
    balanced accuracy. ``(nan, nan)`` when no threshold satisfies the class rule (e.g. constant scores).
    """
    s, y = check_scores(scores, labels)
    fraction = check_fraction("min_class_fraction", min_class_fraction, 0.0, 0.5)
    return best_threshold(s, y, fraction, ties="smallest")
