"""Membership-inference metrics: one estimator each (docs/architecture.md §5). Pure numpy/scipy.

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
- Confidence intervals: percentile bootstrap over records (:func:`bootstrap_values`, the only one), members
  and non-members resampled separately (so both classes are always present), seeded with
  ``np.random.default_rng(seed)``, 95 % by default.
- Leakage transfer ratio: the student's TPR@1 % FPR over the teacher's on eval, for the attack strongest on
  the teacher's calib, with a paired bootstrap CI (:func:`leakage_transfer_ratio`, :func:`strongest_attack`).
- Mixtures: the per-token log-probs of a weighted mixture of models, from each model's (:func:`mixture_logprobs`).

Layout: ``_roc`` (AUC, ROC, TPR@FPR, threshold, rates), ``_bootstrap``, ``_attack`` (one attack's metrics),
``_mixture``, ``_transfer``, ``_checks``.
"""

from mia_kd.metrics._attack import PRIVACY_STATISTICS, AttackMetrics, evaluate_attack, in_sample_statistic
from mia_kd.metrics._bootstrap import bootstrap_ci, bootstrap_values, percentile_interval
from mia_kd.metrics._mixture import check_weights, mixture_logprobs
from mia_kd.metrics._roc import auc, fit_threshold, oracle_accuracy, rates, resolvable, roc_curve, tpr_at_fpr
from mia_kd.metrics._transfer import LeakageTransfer, leakage_transfer_ratio, strongest_attack

__all__ = [
    "PRIVACY_STATISTICS",
    "AttackMetrics",
    "LeakageTransfer",
    "auc",
    "bootstrap_ci",
    "bootstrap_values",
    "check_weights",
    "evaluate_attack",
    "fit_threshold",
    "in_sample_statistic",
    "leakage_transfer_ratio",
    "mixture_logprobs",
    "oracle_accuracy",
    "percentile_interval",
    "rates",
    "resolvable",
    "roc_curve",
    "strongest_attack",
    "tpr_at_fpr",
]
