"""What every trial of a sweep shares: the prepared split, models and teacher-side results (docs/architecture.md §2).

:func:`mia_kd.trial.prepare` builds a :class:`Prepared` once per sweep; each trial's
:func:`mia_kd.trial.run_student` reads it. Its key (:meth:`TrialConfig.prepare_key`) is the hash of the config
fields it depends on, so a trial can never run on the wrong preparation.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.attacks import Attacked, ShadowStats, TokenStats
from mia_kd.attacks.zlib import zlib_bytes
from mia_kd.config import PrivacyConfig, TrialConfig
from mia_kd.data import BlindCheck, Split
from mia_kd.distill.teacher_cache import TeacherLogits
from mia_kd.errors import ConfigError
from mia_kd.metrics import leakage_transfer_ratio, strongest_attack
from mia_kd.models.scoring import Scored, ScoringPlan
from mia_kd.models.train import autocast_dtype
from mia_kd.privacy import Vulnerability, vulnerable_subset
from mia_kd.store import prepared_id
from mia_kd.store.rows import RecordsPart, records_table

log = logging.getLogger(__name__)


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
    member_rows: list[list[int]]  # the members, tokenised, in split.members order (the teacher's training set)
    n_truncated: int
    plan: ScoringPlan
    teacher: CachedModel
    reference: CachedModel | None
    reference_stats: TokenStats | None  # the reference model on the attack records
    reference_utility: float | None
    teacher_scored: Scored
    teacher_attacked: Attacked
    stage_times: dict[str, float]
    node_id: str  # where it was built (Ray's node id in a Ray task, else the host name)
    # The teacher's and reference model's ``records`` rows, once for every trial sharing this (shared_records)
    records: pa.Table | None = None
    vulnerabilities: dict[tuple[str, str], Vulnerability] = field(default_factory=dict)
    teacher_logits: TeacherLogits | None = None  # the teacher on the transfer set (distill.teacher_logits)
    pool_rows: list[list[int]] = field(default_factory=list)  # split.transfer tokenised, in order (data.transfer)
    # Shadow models (lira, rmia; mia_kd.shadows): the shadow teachers (for per-trial shadow students), the
    # neutral shadow students' statistics every trial's offline attack reads, and what trial rows record of
    # them (seconds per shadow, nodes: mia_kd.shadows.summary).
    shadow_teachers: list[Any] | None = None
    shadow_students: ShadowStats | None = None
    shadow_summary: dict[str, Any] = field(default_factory=dict)

    def transfer_set(self, mode: str) -> tuple[list[list[int]], list[str]]:
        """``(token rows, record ids)`` the student is distilled on under ``distill.transfer`` = ``mode``: the
        members, or the disjoint pool (whose records no model was trained on and no attack scores)."""
        if mode == "members":
            return self.member_rows, [r.record_id for r in self.split.members]
        if not self.split.transfer:
            raise ConfigError("distill.transfer: disjoint, but the split has no transfer pool; set data.transfer")
        return self.pool_rows, [r.record_id for r in self.split.transfer]

    def shared_records(self, attack_names: list[str]) -> pa.Table:
        """The teacher's and reference model's ``records`` rows, once for every trial sharing this state."""
        shared = {"teacher": self.teacher_scored, "reference": self.reference_stats}
        return records_table(prepared_id(self.key), attack_names,
                             record_parts(self.split, self.plan, shared, {"teacher": self.teacher_attacked}))

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


def leakage_transfer(teacher: Attacked, student: Attacked, split: Split, config: TrialConfig) -> dict[str, Any]:
    """The ``trials`` columns of the leakage transfer ratio: student over teacher TPR@1% FPR on eval for the
    attack whose teacher calib TPR@1% FPR is highest (ties: the first in ``attacks`` order), with its paired
    bootstrap CI over the eval records (``metrics.n_bootstrap``, seeded with ``seed``). NaN where undefined
    (teacher TPR 0, or a fold too small to resolve 1% FPR); the attack is null where calib resolves none."""
    calib = {row["attack"]: row["calib_tpr_at_fpr_1pct"] for row in teacher.rows}
    attack = strongest_attack({spec.name: calib[spec.name] for spec in config.attacks})
    nan = float("nan")
    if attack is None:
        return {"leakage_transfer_ratio": nan, "leakage_transfer_ratio_low": nan, "leakage_transfer_ratio_high": nan,
                "leakage_transfer_attack": None}
    eval_ = slice(split.n_calib, None)
    result = leakage_transfer_ratio(teacher.scores[attack][eval_], student.scores[attack][eval_],
                                    split.attack_labels[eval_], n_bootstrap=config.metrics.n_bootstrap, seed=config.seed)
    if result.n_skipped:
        log.info("leakage transfer ratio (%s): %d of %d bootstrap replicates left out (teacher TPR@1%% FPR 0)",
                 attack, result.n_skipped, config.metrics.n_bootstrap)
    return {"leakage_transfer_ratio": result.ratio, "leakage_transfer_ratio_low": result.low,
            "leakage_transfer_ratio_high": result.high, "leakage_transfer_attack": attack}


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
                        prefixed=inputs.prefixed.logprobs if inputs.prefixed else None, shadows=inputs.shadows),
            RecordsPart(role, utility_ids, [None] * len(utility_ids), ["utility"] * len(utility_ids),
                        model.utility.logprobs, utility_zlib),
        ]
    return parts


def setup_runtime(config: TrialConfig, *, threads: int | None = None) -> tuple[torch.device, torch.dtype | None]:
    """Threads (``threads``, else ``runtime.threads``) and the global seed (the only global seeding there is);
    the device and autocast dtype."""
    if threads or config.runtime.threads:
        torch.set_num_threads(threads or config.runtime.threads)
    torch.manual_seed(config.seed)
    name = config.runtime.device
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    return device, autocast_dtype(device, config.runtime.precision)


@dataclass
class Stopwatch:
    """Seconds spent per named stage (a stage entered twice adds up)."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - start, 3)
