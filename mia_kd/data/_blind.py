"""The blind check (docs/architecture.md §3): can a model-free text classifier tell members from non-members?

A bag-of-words logistic regression is fit on the calib fold (members 1, non-members 0) and scored on the
eval fold. On an IID split it can only learn noise, so its eval AUC is near 0.5 and the 95% bootstrap
interval contains 0.5. A split by source or date (as in WikiMIA) differs in vocabulary, the classifier
separates the folds without any model, and a membership attack would look successful for that reason
alone: such a split is refused unless the user records it as shifted.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from mia_kd.data._record import Record
from mia_kd.data._split import Split
from mia_kd.errors import ShiftedSplitError

__all__ = ["BlindCheck", "blind_check", "require_iid"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlindCheck:
    """Eval AUC of the text-only classifier (1 = member) with its 95% bootstrap interval."""

    auc: float
    auc_low: float
    auc_high: float
    passed: bool

    def to_dict(self) -> dict[str, float | bool]:
        """Plain values, for the results store."""
        return asdict(self)

    def describe(self) -> str:
        """``AUC 0.97, 95% CI 0.95–0.99``."""
        return f"AUC {self.auc:.2f}, 95% CI {self.auc_low:.2f}–{self.auc_high:.2f}"


def _texts_and_labels(
    members: tuple[Record, ...], nonmembers: tuple[Record, ...]
) -> tuple[list[str], np.ndarray]:
    """Texts of members then non-members, and labels of shape ``(n,)``: 1 = member."""
    texts = [record.text for record in members] + [record.text for record in nonmembers]
    labels = np.r_[np.ones(len(members), dtype=np.int64), np.zeros(len(nonmembers), dtype=np.int64)]
    return texts, labels


def blind_check(split: Split, *, seed: int, n_bootstrap: int = 1000) -> BlindCheck:
    """Fit unigram+bigram tf-idf logistic regression on calib, report its AUC on eval.

    ``passed`` is True when the 95% bootstrap interval (members and non-members resampled separately,
    ``n_bootstrap`` times, seeded with ``seed``) contains 0.5.
    """
    # Heavy imports (scikit-learn, scipy through metrics), paid only when the check runs: importing
    # mia_kd.data happens on every config validation.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from mia_kd import metrics

    train_texts, train_labels = _texts_and_labels(split.members_calib, split.nonmembers_calib)
    eval_texts, eval_labels = _texts_and_labels(split.members_eval, split.nonmembers_eval)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    classifier = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    classifier.fit(vectorizer.fit_transform(train_texts), train_labels)
    scores = classifier.decision_function(vectorizer.transform(eval_texts))
    auc = metrics.auc(scores, eval_labels)
    low, high = metrics.bootstrap_ci(
        metrics.auc, scores, eval_labels, n_bootstrap=n_bootstrap, seed=seed, level=0.95
    )
    return BlindCheck(auc=auc, auc_low=low, auc_high=high, passed=bool(low <= 0.5 <= high))


def require_iid(check: BlindCheck, *, allow_shifted: bool) -> None:
    """Raise :class:`ShiftedSplitError` if ``check`` failed, unless ``allow_shifted`` (then warn)."""
    if check.passed:
        return
    if not allow_shifted:
        raise ShiftedSplitError(
            "blind check failed: a bag-of-words classifier tells members from non-members without any model "
            f"({check.describe()}); the split is not IID. Use one source for both, or set "
            "data.allow_shifted_split: true to record it as shifted"
        )
    logger.warning(
        "blind check failed (%s) and data.allow_shifted_split is true: membership is not IID, so attack "
        "results on this split overstate leakage; the split is recorded as shifted",
        check.describe(),
    )
