"""Loss functions on ``(batch, seq, vocab)`` logits, with the next-token shift done here and only here.

Position t of the logits predicts token t + 1 of ``input_ids``. The study's code compared logits and
labels at the same position, which scores each token by the model's guess for the next one.
Masked positions (padding) contribute nothing; a fully masked batch gives 0, not NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shift(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(batch, seq, vocab)`` logits and ``(batch, seq)`` ids/mask → predictions, targets, target mask."""
    return logits[:, :-1, :], input_ids[:, 1:], mask[:, 1:].to(logits.dtype)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over real target tokens (nats per token)."""
    pred, target, target_mask = shift(logits, input_ids, mask)
    nll = F.cross_entropy(pred.transpose(1, 2), target, reduction="none")
    return _masked_mean(nll, target_mask)


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor, *, temperature: float
) -> torch.Tensor:
    """Forward KL(teacher ‖ student) of temperature-softened next-token distributions, scaled by T².

    Both logits are ``(batch, seq, vocab)`` and already aligned (same positions predict the same token);
    ``mask`` is ``(batch, seq)`` with 1 on real tokens. The T² factor keeps the gradient's scale independent
    of T (Hinton et al. 2015). Zero for identical logits.
    """
    s = F.log_softmax(student_logits[:, :-1, :] / temperature, dim=-1)
    t = F.log_softmax(teacher_logits[:, :-1, :] / temperature, dim=-1)
    kl = (t.exp() * (t - s)).sum(dim=-1)
    return _masked_mean(kl, mask[:, 1:].to(kl.dtype)) * temperature**2


def distill_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """The distillation objective: ``(1 − alpha)·CE + alpha·KD``."""
    ce = lm_loss(student_logits, input_ids, mask)
    kd = kd_loss(student_logits, teacher_logits, mask, temperature=temperature)
    return (1 - alpha) * ce + alpha * kd
