"""What every trial of a sweep shares: the prepared split, models and teacher-side results (docs/architecture.md §2).

:func:`mia_kd.trial.prepare` builds a :class:`Prepared` once per sweep; each trial's
:func:`mia_kd.trial.run_student` reads it. Its key (:func:`prepare_key`) is the hash of the config fields it
depends on, so a trial can never run on the wrong preparation.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.attacks import Attacked, TokenStats
from mia_kd.config import PrivacyConfig, TrialConfig
from mia_kd.data import BlindCheck, Split
from mia_kd.models.scoring import Scored, ScoringPlan
from mia_kd.privacy import Vulnerability, vulnerable_subset


@dataclass(frozen=True)
class CachedModel:
    model: PreTrainedModel
    key: str  # the content key it is cached under
    folder: Path
    hit: bool  # loaded from the cache rather than trained


@dataclass
class Prepared:
    """Everything a trial needs before its student, built once per sweep and shared by its trials.

    It depends on the config minus ``privacy``, ``distill`` and ``student_seed`` (:func:`prepare_key`). The
    teacher's vulnerable subsets are computed on first use, one per vulnerability setting.
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
    stage_times: dict[str, float]
    vulnerabilities: dict[tuple[str, str], Vulnerability] = field(default_factory=dict)

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


def prepare_key(config: TrialConfig) -> str:
    """Hash of the config fields that :func:`prepare` depends on."""
    payload = config.model_dump(mode="json", exclude={"runtime", "privacy", "distill", "student_seed", "sweep_id"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Stopwatch:
    """Seconds spent per named stage (a stage entered twice adds up)."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - start, 3)
