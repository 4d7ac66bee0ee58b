"""One training loop for every model: AdamW, linear warm-up and decay, gradient clipping, seeded order.

The loss is a function of the model's logits on a batch, so the same loop trains the teacher and the
reference model (cross entropy) and distils the student (the KD mix). What one step does, and what a
privacy method may change about it, is :mod:`mia_kd.models.step`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from mia_kd.config import TrainConfig
from mia_kd.models.batching import bucketed_batches, pad
from mia_kd.models.build import context_length
from mia_kd.models.step import BatchLoss, StepHooks, standard_backward

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitReport:
    steps: int
    tokens: int
    seconds: float
    final_loss: float  # mean training loss over the last epoch

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for training on ``device`` at ``precision`` (auto | fp32 | bf16), None for fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    cuda = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if cuda else None


def fit(
    model: PreTrainedModel,
    rows: Sequence[Sequence[int]],
    schedule: TrainConfig,
    loss_fn: BatchLoss,
    *,
    seed: int,
    pad_id: int,
    device: torch.device,
    desc: str,
    progress: bool = False,
    hooks: StepHooks | None = None,
    amp_dtype: torch.dtype | None = None,
) -> FitReport:
    """Train ``model`` in place on token id ``rows`` for ``schedule.epochs`` epochs.

    ``hooks`` (a privacy method) may wrap the module and optimiser, replace the backward pass and choose
    the batches (DP-SGD samples them the way its accountant assumes); without, batches are shuffled,
    length-bucketed partitions of the rows.
    ``amp_dtype`` (e.g. bf16, from :func:`autocast_dtype`) runs the forward passes under autocast; weights,
    gradients and optimiser state stay fp32.
    """
    model.to(device).train()
    context = context_length(model)
    if context is not None and any(len(row) > context for row in rows):
        # Training sees at most a context of tokens per record; scoring windows the rest.
        log.info("%s: %d records longer than the context (%d tokens) are cut for training", desc,
                 sum(len(row) > context for row in rows), context)
        rows = [row[:context] for row in rows]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lengths = [len(row) for row in rows]
    steps_per_epoch = -(-len(rows) // schedule.batch_size)
    total = steps_per_epoch * schedule.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    warmup = int(schedule.warmup_fraction * total)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    trained, clip = model, True
    if hooks is not None:
        trained, optimizer = hooks.wrap_training(
            model, optimizer, batch_size=schedule.batch_size, n_records=len(rows), epochs=schedule.epochs
        )
        clip = not hooks.clips_gradients
    epoch_batches = bucketed_batches if hooks is None else hooks.batches
    start, tokens, epoch_loss = time.perf_counter(), 0, float("nan")
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)
    for _ in range(schedule.epochs):
        losses = []
        for batch in epoch_batches(lengths, schedule.batch_size, rng):
            if len(batch):
                ids, mask = pad([rows[i] for i in batch], pad_id=pad_id)
            else:  # an empty Poisson batch: still a (noise-only) step
                ids = torch.zeros((0, 1), dtype=torch.long)
                mask = torch.zeros_like(ids)
            ids, mask = ids.to(device), mask.to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                if hooks is None:
                    loss = standard_backward(trained, loss_fn, ids, mask)
                else:
                    loss = hooks.backward(trained, loss_fn, ids, mask)
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()
            scheduler.step()
            if len(batch):
                losses.append(loss.item())
            tokens += int(mask.sum())
            bar.update()
        epoch_loss = float(np.mean(losses)) if losses else float("nan")
        bar.set_postfix(loss=f"{epoch_loss:.3f}")
    bar.close()
    model.eval()
    report = FitReport(steps=total, tokens=tokens, seconds=time.perf_counter() - start, final_loss=epoch_loss)
    log.info(
        "%s: %d epochs, %d steps in %.1f s (%.0f tokens/s), last-epoch loss %.3f",
        desc, schedule.epochs, total, report.seconds, report.tokens_per_second, report.final_loss,
    )
    return report
