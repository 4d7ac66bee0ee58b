"""Distil a student from a teacher on the transfer set: the shared training loop with the KD mix.

A privacy method (if any) acts here and only here, through its one hook: it chooses the transfer records,
changes the student's modules, transforms the teacher's logits before softening, or changes the optimiser
step. At its neutral strength every hook is the identity, so the result is exactly plain distillation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from mia_kd.config import DistillConfig
from mia_kd.distill.loss import distill_loss
from mia_kd.distill.teacher_cache import TeacherLogits
from mia_kd.models.build import context_length
from mia_kd.models.train import FitReport, fit
from mia_kd.privacy import PrivacyMethod

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillResult:
    student: torch.nn.Module  # the (possibly modified) student, trained
    report: FitReport
    n_transfer: int  # records actually distilled on


def distill(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    rows: Sequence[Sequence[int]],
    config: DistillConfig,
    *,
    seed: int,
    pad_id: int,
    device: torch.device,
    progress: bool = False,
    method: PrivacyMethod | None = None,
    record_ids: Sequence[str] | None = None,
    amp_dtype: torch.dtype | None = None,
    teacher_cache: TeacherLogits | None = None,
) -> DistillResult:
    """Train ``student`` on ``rows`` (ids ``record_ids``) against the frozen ``teacher``'s distributions.

    ``teacher_cache`` (:mod:`mia_kd.distill.teacher_cache`): the teacher's logits on these rows, computed
    once, read instead of a teacher forward pass per batch where it covers the batch.
    """
    teacher.to(device).eval()
    if method is not None and not method.is_neutral:
        keep = method.select_records(list(record_ids) if record_ids is not None else [str(i) for i in range(len(rows))])
        rows = [rows[i] for i in keep]
        student = method.modify_student(student)
    if not rows:
        raise ValueError("no transfer records left to distil on")
    if teacher_cache is not None:
        why = teacher_cache.unusable(rows, context=context_length(student), amp_dtype=amp_dtype)
        if why is not None:
            log.info("teacher logits recomputed per batch: the cache does not fit this run (%s)", why)
            teacher_cache = None

    def loss_fn(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher_cache.lookup(ids, mask) if teacher_cache is not None else None
            if teacher_logits is None:
                teacher_logits = teacher(input_ids=ids, attention_mask=mask).logits
            if method is not None and not method.is_neutral:
                teacher_logits = method.transform_logits(teacher_logits, ids, mask)
        return distill_loss(logits, teacher_logits, ids, mask, temperature=config.temperature, alpha=config.alpha)

    hooks = method if method is not None and not method.is_neutral else None
    report = fit(
        student, rows, config, loss_fn, seed=seed, pad_id=pad_id, device=device, desc="distil student",
        progress=progress, hooks=hooks, amp_dtype=amp_dtype,
    )
    return DistillResult(student=student, report=report, n_transfer=len(rows))
