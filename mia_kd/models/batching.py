"""Padding and length-bucketed batches: sequences of similar length share a batch, so little is padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def pad(rows: Sequence[Sequence[int]], *, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to ``(batch, max_len)`` ``input_ids`` and ``attention_mask`` (1 = real token).

    Right padding keeps every real token at the same position as without padding, so a causal model's
    outputs at real positions do not depend on the batch they came in.
    """
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index batches of near-equal length.

    With ``rng`` (training): ties in length are broken at random and the batch order is shuffled, so each
    epoch sees different batches. Without (scoring): sorted by length, fixed order.
    """
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
