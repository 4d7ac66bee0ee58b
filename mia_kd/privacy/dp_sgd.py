"""``dp_sgd``: distil the student with differentially private SGD (per-sample clipping plus Gaussian noise).

Abadi et al. 2016, *Deep Learning with Differential Privacy*: every record's gradient is clipped to norm
``max_grad_norm`` (C), the clipped gradients are summed, Gaussian noise of standard deviation ``σ · C`` is
added and the sum is divided by the batch size. The clipping, noise and averaging are Opacus's
``DPOptimizer`` wrapped around the loop's AdamW, and ε is Opacus's ``RDPAccountant`` (Yousefpour et al.
2021, *Opacus: User-Friendly Differential Privacy Library in PyTorch*).

Strength = the noise multiplier σ ∈ [0, 10]. σ = 0 is neutral: no noise *and* no clipping, because the
trainer skips every hook at neutral strength (plain distillation, not "clipping without noise").

Per-sample gradients are computed here, not by Opacus's ``GradSampleModule``: on transformers' GPT-2 (tied
input/output embeddings, ``Conv1D``) its hooks mode fails ("stack expects each tensor to be equal size"), its
functorch mode fails ("Trying to add hooks twice"), and ``torch.func.vmap`` stops at the attention-mask code's
data-dependent branch. So :func:`per_sample_gradients` runs one forward/backward per record of the batch,
each record's loss being the trainer's ``loss_fn`` on its own ``(1, seq)`` slice (teacher call included). A
tied weight is one parameter, so its per-sample gradient already sums both of its uses. Cost: ``batch``
forward/backward passes per step instead of one, and ``batch × n_params`` floats of per-sample gradients
(the same memory Opacus would need).

Accounting, honestly: the accountant steps once per optimiser step at sample rate ``batch_size /
n_records`` and ``delta`` defaults to ``1 / n_records``. RDP accounting assumes Poisson sampling (each record
enters each batch independently with that probability), whereas the loop uses shuffled, length-bucketed
batches of fixed size, each record exactly once per epoch. The reported ε is therefore the customary
figure under the Poisson assumption, not a proven bound for this exact sampler.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field

from mia_kd.models.train import BatchLoss
from mia_kd.privacy._base import METHODS, MethodParams, PrivacyMethod

if TYPE_CHECKING:
    from opacus.accountants import RDPAccountant

log = logging.getLogger(__name__)


class DpSgdParams(MethodParams):
    max_grad_norm: float = Field(
        default=1.0, gt=0.0, description="per-sample clipping norm C (L2 over all trainable parameters)"
    )
    delta: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="δ of the reported (ε, δ) guarantee; None = 1 / (number of transfer records), as is customary",
    )


def per_sample_gradients(
    model: torch.nn.Module,
    loss_fn: BatchLoss,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    params: list[torch.nn.Parameter],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each record's loss and its gradient with respect to ``params``.

    ``input_ids`` and ``mask`` are ``(batch, seq)``; record ``b``'s loss is ``loss_fn`` on the ``(1, seq)``
    slices ``b:b+1``. Returns the losses ``(batch,)`` (detached) and, per parameter, a ``(batch, *p.shape)``
    tensor of per-record gradients (zeros where a record does not reach the parameter).
    """
    losses, grads = [], []
    for b in range(input_ids.shape[0]):
        ids, m = input_ids[b : b + 1], mask[b : b + 1]
        loss = loss_fn(model(input_ids=ids, attention_mask=m).logits, ids, m)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss of record {b} of the batch became {loss.item()}")
        grads.append(torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True))
        losses.append(loss.detach())
    return torch.stack(losses), [torch.stack(per_param) for per_param in zip(*grads)]


@METHODS.register("dp_sgd")
class DpSgd(PrivacyMethod):
    name = "dp_sgd"
    hook = "optimizer"
    low = 0.0
    high = 10.0
    neutral = 0.0
    summary = "DP-SGD via Opacus: clip each record's gradient to max_grad_norm, add Gaussian noise of `strength` × it"
    trades = "a formal (ε, δ) bound on every record for a noisier, slower student"
    Params = DpSgdParams
    clips_gradients = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._accountant: RDPAccountant | None = None  # set by wrap_training, i.e. only at non-neutral strength
        self._delta = float("nan")

    @property
    def max_grad_norm(self) -> float:
        return self.params.max_grad_norm  # type: ignore[attr-defined]  # self.params is a DpSgdParams

    def wrap_training(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, batch_size: int, n_records: int, epochs: int
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """``model`` unchanged and ``optimizer`` wrapped in a seeded ``DPOptimizer`` with an RDP accountant.

        ``DPOptimizer`` shares the inner optimiser's ``param_groups`` and calls its ``step``, so an LR
        scheduler built on the inner optimiser still drives the learning rate.
        """
        if n_records < 1:
            raise ValueError("dp_sgd needs at least one transfer record")
        delta = self.params.delta  # type: ignore[attr-defined]
        self._delta = float(delta) if delta is not None else 1.0 / n_records
        device = next(model.parameters()).device
        # Imported here: listing or validating methods should not need Opacus loaded.
        from opacus.accountants import RDPAccountant
        from opacus.optimizers import DPOptimizer

        dp_optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.strength,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=batch_size,
            # The noise comes from the trial's seed, so a rerun reproduces the run bit for bit.
            generator=torch.Generator(device=device).manual_seed(self.context.seed),
        )
        self._accountant = RDPAccountant()
        sample_rate = min(1.0, batch_size / n_records)
        dp_optimizer.attach_step_hook(self._accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
        return model, dp_optimizer

    def backward(self, model: torch.nn.Module, loss_fn, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sets ``p.grad_sample`` ``(batch, *p.shape)`` on every trainable parameter for ``DPOptimizer.step``.

        Returns the mean of the records' losses (the loop's running loss), detached.
        """
        params = [p for p in model.parameters() if p.requires_grad]
        losses, grads = per_sample_gradients(model, loss_fn, input_ids, mask, params)
        for p, grad_sample in zip(params, grads):
            p.grad_sample = grad_sample
        return losses.mean()

    @property
    def steps(self) -> int:
        """Optimiser steps the accountant has seen."""
        if self._accountant is None:
            return 0
        return sum(n_steps for _, _, n_steps in self._accountant.history)

    def report(self) -> dict[str, Any]:
        """ε at ``delta`` after training, with the settings it depends on; empty at neutral strength (no DP)."""
        if self._accountant is None or self.steps == 0:
            return {}
        return {
            "epsilon": float(self._accountant.get_epsilon(delta=self._delta)),
            "delta": self._delta,
            "noise_multiplier": self.strength,
            "max_grad_norm": self.max_grad_norm,
            "dp_steps": self.steps,
        }
