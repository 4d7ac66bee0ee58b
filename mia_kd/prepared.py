"""What every trial of a sweep shares: the prepared split, models and teacher-side results (docs/architecture.md §2).

:func:`mia_kd.trial.prepare` builds a :class:`Prepared` once per sweep; each trial's
:func:`mia_kd.trial.run_student` reads it. Its key (:meth:`TrialConfig.prepare_key`) is the hash of the config
fields it depends on, so a trial can never run on the wrong preparation.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.attacks import Attacked, TokenStats
from mia_kd.attacks.zlib import zlib_bytes
from mia_kd.config import PrivacyConfig
from mia_kd.data import BlindCheck, Split
from mia_kd.distill.teacher_cache import TeacherLogits
from mia_kd.models.scoring import Scored, ScoringPlan
from mia_kd.privacy import Vulnerability, vulnerable_subset
from mia_kd.store.rows import RecordsPart


@dataclass(frozen=True)
class CachedModel:
    model: PreTrainedModel
    key: str  # the content key it is cached under
    folder: Path
    hit: bool  # loaded from the cache rather than trained


@dataclass
class Prepared:
    """Everything a trial needs before its student, built once per sweep and shared by its trials.

    It depends on the config minus ``privacy``, ``distill`` and ``student_seed`` (:meth:`TrialConfig.prepare_key`).
    The teacher's vulnerable subsets are computed on first use, one per vulnerability setting.
    """

    key: str
    split: Split
    blind: BlindCheck
    tokenizer: PreTrainedTokenizerBase
    member_rows: list[list[int]]  # the transfer set, tokenised, in split.members order
    n_truncated: int
    plan: ScoringPlan
    teacher: CachedModel
    reference: CachedModel | None
    reference_stats: TokenStats | None  # the reference model on the attack records
    reference_utility: float | None
    teacher_scored: Scored
    teacher_attacked: Attacked
    records: pa.Table  # the teacher's and reference model's ``records`` rows, once for every trial sharing this
    stage_times: dict[str, float]
    node_id: str  # where it was built (Ray's node id in a Ray task, else the host name)
    vulnerabilities: dict[tuple[str, str], Vulnerability] = field(default_factory=dict)
    teacher_logits: TeacherLogits | None = None  # the teacher on the transfer set (distill.teacher_logits)

    def to_cpu(self) -> Prepared:
        """The models moved to the CPU (in place), so that any node can load what a GPU node prepared."""
        for cached in (self.teacher, self.reference):
            if cached is not None:
                cached.model.cpu()
        return self

    def vulnerability(self, privacy: PrivacyConfig) -> Vulnerability:
        attack, rule = privacy.vulnerability_attack, privacy.vulnerable_tokens
        if (attack, rule) not in self.vulnerabilities:
            # The members among the attack records (label 1, in order) are split.members: the transfer set.
            members = np.flatnonzero(self.split.attack_labels == 1)
            self.vulnerabilities[attack, rule] = vulnerable_subset(
                self.teacher.folder, attack=attack, tokens_rule=rule, member_ids=[r.record_id for r in self.split.members],
                member_scores=self.teacher_attacked.scores[attack][members],
                threshold=self.teacher_attacked.thresholds[attack], member_rows=self.member_rows,
                vocab_size=len(self.tokenizer),
            )
        return self.vulnerabilities[attack, rule]


def record_parts(
    split: Split, plan: ScoringPlan, scored: dict[str, Scored | TokenStats | None], attacked: dict[str, Attacked],
) -> list[RecordsPart]:
    """What the ``records`` table keeps of the models in ``scored`` (role → scores): every model's token
    log-probabilities on every record it scored, and the attack scores of the roles in ``attacked``.
    The reference model is scored on the attack records only (its :class:`TokenStats`)."""
    ids, labels = [r.record_id for r in split.attack_records], split.attack_labels.tolist()
    folds = ["calib"] * split.n_calib + ["eval"] * (len(ids) - split.n_calib)
    zlib = [zlib_bytes(text) for text in plan.texts]  # of the scored span
    utility_ids = [r.record_id for r in split.utility]
    utility_zlib = [zlib_bytes(text) for text in plan.utility_texts]
    parts = []
    for role, model in scored.items():
        if model is None:
            continue
        if isinstance(model, TokenStats):
            parts.append(RecordsPart(role, ids, labels, folds, model.logprobs, zlib))
            continue
        inputs = model.attack
        parts += [
            RecordsPart(role, ids, labels, folds, inputs.target.logprobs, zlib, scores=attacked[role].scores,
                        lowercase=inputs.lowercase.logprobs if inputs.lowercase else None,
                        prefixed=inputs.prefixed.logprobs if inputs.prefixed else None),
            RecordsPart(role, utility_ids, [None] * len(utility_ids), ["utility"] * len(utility_ids),
                        model.utility.logprobs, utility_zlib),
        ]
    return parts


@dataclass
class Stopwatch:
    """Seconds spent per named stage (a stage entered twice adds up)."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - start, 3)
