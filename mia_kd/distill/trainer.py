"""Distil a student from a teacher on the transfer set: the shared training loop with the KD mix."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel

from mia_kd.config import DistillConfig
from mia_kd.distill.loss import distill_loss
from mia_kd.models.train import FitReport, fit


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
) -> FitReport:
    """Train ``student`` in place on ``rows`` against the frozen ``teacher``'s next-token distributions."""
    teacher.to(device).eval()

    def loss_fn(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(input_ids=ids, attention_mask=mask).logits
        return distill_loss(logits, teacher_logits, ids, mask, temperature=config.temperature, alpha=config.alpha)

    return fit(student, rows, config, loss_fn, seed=seed, pad_id=pad_id, device=device, desc="distil student", progress=progress)
