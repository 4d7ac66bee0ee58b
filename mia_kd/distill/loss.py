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
    """The distillation objective: ``(1 − alpha)·CE + alpha·KD``, the value of
    ``(1 - alpha) * lm_loss(...) + alpha * kd_loss(...)`` and its gradient (equal to float rounding, tested),
    in one fused pass: the student's trainer spends most of its time here (vocabulary-wide softmaxes).

    No gradient flows to ``teacher_logits`` (the teacher is fixed).
    """
    return _DistillLoss.apply(student_logits, teacher_logits.detach(), input_ids, mask, float(temperature), float(alpha))


class _DistillLoss(torch.autograd.Function):
    """:func:`distill_loss` with its gradient written out. With ``z`` the student's logits at a position, ``y``
    its next token, ``q`` the teacher's softened distribution and ``n`` the number of real target tokens:

        d loss / d z = [(1 − α)·(softmax(z) − onehot(y)) + α·T·(softmax(z / T) − q)] / n

    (the T² of KD times the 1/T of the softened softmax). Autograd through ``lm_loss`` and ``kd_loss`` keeps
    about twice the ``(batch, seq, vocab)`` intermediates and takes 1.7× as long (forward and backward, 2048
    tokens), which made the loss a third of a quickstart student's training time.
    """

    @staticmethod
    def forward(ctx, logits, teacher_logits, input_ids, mask, temperature, alpha):
        pred, target, weight = shift(logits.float(), input_ids, mask)
        weight = weight.float() / weight.float().sum().clamp_min(1.0)  # a masked token mean, 0 on an empty batch
        log_p = F.log_softmax(pred, dim=-1)
        log_p_soft = F.log_softmax(pred / temperature, dim=-1)
        log_q = F.log_softmax(teacher_logits[:, :-1, :].float() / temperature, dim=-1)
        q = log_q.exp()
        nll = -log_p.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        kl = (q * (log_q - log_p_soft)).sum(dim=-1)
        loss = (1 - alpha) * (nll * weight).sum() + alpha * temperature**2 * (kl * weight).sum()
        ctx.save_for_backward(log_p, log_p_soft, q, target, weight)
        ctx.temperature, ctx.alpha, ctx.dtype, ctx.shape = temperature, alpha, logits.dtype, logits.shape
        return loss.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        log_p, log_p_soft, q, target, weight = ctx.saved_tensors
        temperature, alpha = ctx.temperature, ctx.alpha
        grad = log_p.exp().mul_(1 - alpha)
        grad.scatter_add_(-1, target.unsqueeze(-1), grad.new_full((*target.shape, 1), -(1 - alpha)))
        grad.add_(log_p_soft.exp().sub_(q), alpha=alpha * temperature)
        grad.mul_((weight * grad_output.float()).unsqueeze(-1))
        full = grad.new_zeros(ctx.shape)
        full[:, :-1, :] = grad
        return full.to(ctx.dtype), None, None, None, None, None
