"""The scorer: one batched, padding-masked forward pass per (model, record set).

It produces what every attack reads (:class:`~mia_kd.attacks.TokenStats`): the log-probability of each
observed token and, when asked, the per-position mean and standard deviation of log p over the
vocabulary (weighted by p, as Min-K%++ defines them). Full-vocabulary logits never leave a batch, so memory
grows with the number of tokens scored, not with tokens × vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from mia_kd.attacks import TokenStats
from mia_kd.models.batching import bucketed_batches, pad


@torch.inference_mode()
def score(
    model: PreTrainedModel,
    rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    moments: bool = False,
    prefix: Sequence[int] | None = None,
    transform: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> TokenStats:
    """Statistics of ``model`` on token id ``rows`` (each starting with the begin-of-text token).

    With ``prefix`` (ReCaLL), each row is scored as ``prefix + row[1:]`` and statistics cover the row's
    own tokens only, so they align one to one with the plain pass. Results are in the order of ``rows``
    and do not depend on ``batch_size`` or on that order (right padding, causal attention).

    ``transform(logits, input_ids, mask)`` (a privacy method at serve stage) changes the model's
    ``(batch, seq, vocab)`` logits before anything is computed from them.
    """
    model.to(device).eval()
    if prefix is not None:
        rows = [[*prefix, *row[1:]] for row in rows]
    skip = len(prefix) - 1 if prefix is not None else 0  # predictions of prefix tokens are not the record's
    logprobs: list[np.ndarray] = [np.empty(0, np.float32)] * len(rows)
    means: list[np.ndarray] = [np.empty(0, np.float32)] * len(rows)
    stds: list[np.ndarray] = [np.empty(0, np.float32)] * len(rows)
    for batch in bucketed_batches([len(row) for row in rows], batch_size):
        ids, mask = pad([rows[i] for i in batch], pad_id=pad_id)
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        if transform is not None:
            logits = transform(logits, ids, mask)
        logits = logits[:, :-1, :].float()
        logp = torch.log_softmax(logits, dim=-1)  # (batch, seq - 1, vocab)
        observed = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (batch, seq - 1)
        if moments:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            # The centred form: E[logp²] − μ² cancels catastrophically in float32.
            sigma = (p * (logp - mu[..., None]).square()).sum(-1).sqrt()
            mu, sigma = mu.cpu().numpy(), sigma.cpu().numpy()
        observed = observed.cpu().numpy()
        for j, i in enumerate(batch):
            end = len(rows[i]) - 1
            logprobs[i] = observed[j, skip:end].astype(np.float32)
            if moments:
                means[i] = mu[j, skip:end].astype(np.float32)
                stds[i] = sigma[j, skip:end].astype(np.float32)
    return TokenStats(
        logprobs=tuple(logprobs),
        mean=tuple(means) if moments else None,
        std=tuple(stds) if moments else None,
    )


def task_loss(stats: TokenStats) -> float:
    """Mean next-token loss in nats per token over all tokens of all records (token-weighted)."""
    total = sum(float(lp.sum(dtype=np.float64)) for lp in stats.logprobs)
    count = sum(len(lp) for lp in stats.logprobs)
    return -total / count
