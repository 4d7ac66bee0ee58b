"""The scorer: one batched, padding-masked forward pass per (model, record set).

It produces what every attack reads (:class:`~mia_kd.attacks.TokenStats`): the log-probability of each
observed token and, when asked, the per-position mean and standard deviation of log p over the
vocabulary (weighted by p, as Min-K%++ defines them). Full-vocabulary logits never leave a batch, so memory
grows with the number of tokens scored, not with tokens × vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    context: int | None = None,
) -> TokenStats:
    """Statistics of ``model`` on token id ``rows`` (each starting with the begin-of-text token).

    With ``prefix`` (ReCaLL), each row is scored as ``prefix + row[1:]`` and statistics cover the row's
    own tokens only, so they align one to one with the plain pass. Results are in the order of ``rows``
    and do not depend on ``batch_size`` or on that order (right padding, causal attention) beyond float32
    rounding: a batch pads to its longest row, and other widths make the kernels sum in another order.

    A row longer than ``context`` tokens (the model's positions) is scored with a sliding window: windows
    of ``context`` tokens every ``context // 2``, each token scored once, in the first window that has it
    with at least half a context of history (:func:`windows`). Nothing is cut.

    ``transform(logits, input_ids, mask)`` (a privacy method at serve stage) changes the model's
    ``(batch, seq, vocab)`` logits before anything is computed from them.
    """
    model.to(device).eval()
    if prefix is not None:
        rows = [[*prefix, *row[1:]] for row in rows]
    skip = len(prefix) - 1 if prefix is not None else 0  # predictions of prefix tokens are not the record's
    windowed = Windowed.of(rows, context)
    outputs: list[tuple[np.ndarray, ...]] = [()] * len(windowed.pieces)
    for batch in windowed.batches(batch_size):
        ids, mask = pad([windowed.pieces[k][2] for k in batch], pad_id=pad_id)
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        if transform is not None:
            logits = transform(logits, ids, mask)
        logits = logits[:, :-1, :].float()
        logp = torch.log_softmax(logits, dim=-1)  # (batch, seq - 1, vocab)
        observed = logp.gather(-1, ids[:, 1:, None]).squeeze(-1).cpu().numpy()  # (batch, seq - 1)
        if moments:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            # The centred form: E[logp²] − μ² cancels catastrophically in float32.
            sigma = (p * (logp - mu[..., None]).square()).sum(-1).sqrt()
            mu, sigma = mu.cpu().numpy(), sigma.cpu().numpy()
        for j, k in enumerate(batch):
            span = windowed.kept(k)
            outputs[k] = (observed[j, span], *((mu[j, span], sigma[j, span]) if moments else ()))
    stats = [[column[skip:].astype(np.float32) for column in row] for row in windowed.stitch(outputs)]
    return TokenStats(
        logprobs=tuple(s[0] for s in stats),
        mean=tuple(s[1] for s in stats) if moments else None,
        std=tuple(s[2] for s in stats) if moments else None,
    )


def windows(row: Sequence[int], context: int | None) -> list[tuple[int, list[int]]]:
    """``row`` as ``(keep, piece)`` pieces of at most ``context`` tokens whose kept predictions, pieced
    together in order, predict every token of ``row`` after the first exactly once.

    ``keep`` is the index of the first prediction of ``piece`` to keep (prediction ``t`` of a piece is of
    its token ``t + 1``). One piece when the row fits; otherwise windows start every ``context // 2`` tokens,
    and each keeps only the predictions the previous window did not make.
    """
    row = list(row)
    if context is None or len(row) <= context:
        return [(0, row)]
    stride = max(1, context // 2)
    pieces, done, start = [], 1, 0  # ``done``: the first token of ``row`` not yet predicted
    while done < len(row):
        piece = row[start : start + context]
        pieces.append((done - start - 1, piece))
        done = start + len(piece)
        start += stride
    return pieces


@dataclass(frozen=True)
class Windowed:
    """Rows cut into :func:`windows` pieces, scored in any batch order, stitched back per row.

    ``pieces[k]`` is ``(row index, keep, token ids)``, in row order.
    """

    pieces: list[tuple[int, int, list[int]]]
    n_rows: int

    @classmethod
    def of(cls, rows: Sequence[Sequence[int]], context: int | None) -> Windowed:
        pieces = [(i, keep, piece) for i, row in enumerate(rows) for keep, piece in windows(row, context)]
        return cls(pieces=pieces, n_rows=len(rows))

    def batches(self, batch_size: int) -> list[np.ndarray]:
        """Length-bucketed batches of piece indices."""
        return bucketed_batches([len(piece) for _, _, piece in self.pieces], batch_size)

    def kept(self, k: int) -> slice:
        """Which of piece ``k``'s predictions (``(len(piece) - 1,)``) belong to its row's result."""
        _, keep, piece = self.pieces[k]
        return slice(keep, len(piece) - 1)

    def stitch(self, outputs: Sequence[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, ...]]:
        """Per row, each column of the pieces' ``outputs`` (one tuple of arrays per piece) concatenated."""
        per_row: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(self.n_rows)]
        for (i, _, _), output in zip(self.pieces, outputs, strict=True):
            per_row[i].append(output)
        return [tuple(np.concatenate(column) for column in zip(*parts, strict=True)) for parts in per_row]


def task_loss(stats: TokenStats) -> float:
    """Mean next-token loss in nats per token over all tokens of all records (token-weighted)."""
    total = sum(float(lp.sum(dtype=np.float64)) for lp in stats.logprobs)
    count = sum(len(lp) for lp in stats.logprobs)
    return -total / count
