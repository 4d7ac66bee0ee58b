"""The teacher's logits on the transfer set, computed once per prepared state and read by every distillation.

The teacher is frozen, so its logits on a transfer record are a fixed function of the record's token ids:
a sweep's trials (and each trial's epochs) would otherwise run the same teacher forward pass on the same
records again and again (25–51% of a distillation run). :func:`build_teacher_logits` runs it once, in eval
mode, on the records cut to the model's context as the training loop cuts them, in batches of records of one
length (no padding) in a fixed order; :meth:`TeacherLogits.lookup` hands a training batch its teacher logits
back.

The cache is exact, not an approximation: the full vocabulary in float32 (the dtype the teacher produced,
e.g. bfloat16 under autocast, is restored on lookup), each record's logits as if it were scored alone. A
forward pass per training batch differs from them by float rounding only: a record padded to a wider batch
rounds differently in attention (by about 1e-7 on CPU), so a student distilled from the cache matches one
distilled with ``recompute`` to that rounding, not bit for bit (``tests/distill/test_teacher_cache.py``).
Where the logits would not fit the memory budget, ``auto`` recomputes them (:func:`should_cache`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedModel

from mia_kd.models.batching import pad
from mia_kd.models.build import context_length

log = logging.getLogger(__name__)

TeacherLogitsMode = Literal["cache", "recompute", "auto"]
BYTES_PER_LOGIT = 4  # float32


@dataclass(frozen=True)
class TeacherLogits:
    """The teacher's ``(n_tokens, vocab)`` float32 logits per transfer record, keyed by the record's token ids.

    One numpy array per record, so that Ray ships them through its object store without a copy (they arrive
    read-only; :meth:`lookup` only reads them).
    """

    logits: dict[tuple[int, ...], np.ndarray]
    vocab: int
    dtype: torch.dtype  # of the teacher's logits when computed (restored on lookup)
    amp_dtype: torch.dtype | None  # the autocast dtype they were computed under; None: none
    context: int | None  # records were cut to this many tokens (the model's context), as training cuts them
    seconds: float  # time to build

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.logits.values())

    def unusable(self, rows: Sequence[Sequence[int]], *, context: int | None, amp_dtype: torch.dtype | None) -> str | None:
        """Why this cache cannot stand in for the teacher when training on ``rows`` (cut to ``context``, the
        student's, as :func:`mia_kd.models.train.fit` cuts them) under ``amp_dtype``; None if it can."""
        if amp_dtype != self.amp_dtype:
            return f"built under autocast {self.amp_dtype}, training runs under {amp_dtype}"
        missing = sum(tuple(_cut(row, context)) not in self.logits for row in rows)
        if missing:
            return f"{missing} of {len(rows)} transfer records are not in it (cut to another context?)"
        return None

    def lookup(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """``(batch, seq)`` right-padded ids and mask → the teacher's ``(batch, seq, vocab)`` logits on
        ``input_ids``' device, zeros at padded positions (the loss ignores them); None where a record is not
        cached, the mask is not a right padding, or the tensors are traced by a ``torch.func`` transform
        (their values cannot be read there): the caller then runs the teacher."""
        if _functorch_wrapped(input_ids) or _functorch_wrapped(mask):
            return None
        ids = input_ids.detach().cpu().numpy()
        real = mask.detach().cpu().numpy().astype(bool)
        lengths = real.sum(axis=1)
        if not (real == (np.arange(real.shape[1]) < lengths[:, None])).all():
            return None
        out = np.zeros((*ids.shape, self.vocab), dtype=np.float32)
        for b, (row, n) in enumerate(zip(ids.tolist(), lengths.tolist())):
            found = self.logits.get(tuple(row[:n]))
            if found is None:
                return None
            out[b, :n] = found
        return torch.from_numpy(out).to(device=input_ids.device, dtype=self.dtype)


def logits_bytes(rows: Sequence[Sequence[int]], vocab: int, *, context: int | None = None) -> int:
    """Bytes of the float32 full-vocabulary logits of the distinct ``rows`` (cut to ``context``)."""
    distinct = {tuple(_cut(row, context)) for row in rows}
    return sum(len(row) for row in distinct) * vocab * BYTES_PER_LOGIT


def should_cache(mode: TeacherLogitsMode, rows: Sequence[Sequence[int]], teacher: PreTrainedModel, max_mb: float) -> bool:
    """``cache``: yes; ``recompute``: no; ``auto``: when the logits fit ``max_mb`` MiB."""
    if mode != "auto":
        return mode == "cache"
    size = logits_bytes(rows, _vocab(teacher), context=context_length(teacher))
    fits = size <= max_mb * 2**20
    log.info("teacher logits on the transfer set: %.0f MiB, %s (budget %g MiB)", size / 2**20,
             "cached" if fits else "recomputed per batch", max_mb)
    return fits


@torch.no_grad()
def build_teacher_logits(
    teacher: PreTrainedModel,
    rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    device: torch.device,
    batch_size: int,
    amp_dtype: torch.dtype | None = None,
) -> TeacherLogits:
    """The teacher's logits on every distinct row of ``rows``, cut to the teacher's context.

    Records of one length share a batch (at most ``batch_size``), so none is padded: a record's logits do not
    depend on which others were scored with it. Under the same autocast as training (``amp_dtype``), so that
    the cached values are the ones a forward pass per batch would give. The teacher is left in eval mode (as
    distillation uses it).
    """
    start = time.perf_counter()
    context = context_length(teacher)
    distinct = list(dict.fromkeys(tuple(_cut(row, context)) for row in rows))
    teacher.to(device).eval()
    cached: dict[tuple[int, ...], np.ndarray] = {}
    dtype, vocab = torch.float32, _vocab(teacher)
    for batch in _same_length_batches([len(row) for row in distinct], batch_size):
        ids, mask = pad([distinct[i] for i in batch], pad_id=pad_id)
        ids, mask = ids.to(device), mask.to(device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = teacher(input_ids=ids, attention_mask=mask).logits
        dtype, vocab = logits.dtype, logits.shape[-1]
        values = logits.float().cpu().numpy()
        for j, i in enumerate(batch):
            cached[distinct[i]] = np.ascontiguousarray(values[j, : len(distinct[i])])
    result = TeacherLogits(cached, vocab=vocab, dtype=dtype, amp_dtype=amp_dtype, context=context,
                           seconds=time.perf_counter() - start)
    log.info("teacher logits cached: %d records, %.0f MiB in %.1f s", len(cached), result.nbytes / 2**20, result.seconds)
    return result


def _same_length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches of equal-length records, at most ``batch_size`` each, shortest first (a fixed order)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    for _, group in itertools.groupby(order, key=lengths.__getitem__):
        group = list(group)
        batches += [group[k : k + batch_size] for k in range(0, len(group), batch_size)]
    return batches


def _cut(row: Sequence[int], context: int | None) -> Sequence[int]:
    # As mia_kd.models.train.fit cuts a record for training.
    return row if context is None or len(row) <= context else row[:context]


def _vocab(model: PreTrainedModel) -> int:
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    return int(weight.shape[0]) if weight is not None else int(model.config.vocab_size)


def _functorch_wrapped(tensor: torch.Tensor) -> bool:
    # Inside vmap/grad a tensor is a functorch wrapper whose values cannot be read (.tolist() raises).
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(tensor))
