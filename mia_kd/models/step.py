"""One optimiser step's contract: the batch loss, the plain backward pass and the hooks a privacy method may
replace (docs/architecture.md §6).

The training loop (:mod:`mia_kd.models.train`) drives these; privacy methods implement :class:`StepHooks`
and fall back on :func:`standard_backward`. Kept apart from the loop so that a method depends on the step
it changes, not on the loop that takes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

# loss(logits, input_ids, mask) -> scalar; logits (batch, seq, vocab), input_ids and mask (batch, seq)
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class StepHooks(Protocol):
    """How a privacy method may change the optimiser step (``mia_kd.privacy.PrivacyMethod`` implements it)."""

    clips_gradients: bool

    def wrap_training(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, batch_size: int, n_records: int, epochs: int
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]: ...

    def backward(self, model: torch.nn.Module, loss_fn: BatchLoss, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...

    def batches(self, lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One epoch's index batches, ``ceil(len(lengths) / batch_size)`` of them (the LR schedule counts on
        that). A batch may be empty (Poisson sampling): the step is still taken, ``backward`` gets
        ``(0, 1)`` tensors."""
        ...


def standard_backward(model: torch.nn.Module, loss_fn: BatchLoss, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``loss_fn(logits, input_ids, mask).backward()``; refuses a non-finite loss. Returns the detached loss."""
    logits = model(input_ids=input_ids, attention_mask=mask).logits
    loss = loss_fn(logits, input_ids, mask)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the training loss became {loss.item()}")
    loss.backward()
    return loss.detach()
