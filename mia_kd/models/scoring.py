"""The scorer: one batched, padding-masked forward pass per (model, record set).

It produces what every attack reads (:class:`~mia_kd.attacks.TokenStats`): the log-probability of each
observed token and, when asked, the per-position mean and standard deviation of log p over the
vocabulary (weighted by p, as Min-K%++ defines them). Full-vocabulary logits never leave a batch, so memory
grows with the number of tokens scored, not with tokens × vocabulary.

:class:`ScoringPlan` is a trial's scoring inputs, encoded once: which passes the attacks asked for
(:class:`~mia_kd.attacks.Passes`), the rows of each, and how to batch them (docs/architecture.md §4).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.attacks import AttackInputs, Passes, TokenStats
from mia_kd.models.batching import bucketed_batches, pad
from mia_kd.models.build import context_length
from mia_kd.models.tokenizer import encode, scored_texts

LogitsTransform = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``(logits (batch, seq, vocab), input_ids (batch, seq), attention_mask (batch, seq)) -> logits``: a privacy
method at serve stage (its ``serve_logits``)."""


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
    transform: LogitsTransform | None = None,
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
    starts = windowed.starts()
    # The whole pass's statistics in one array allocated before the first batch, filled batch by batch.
    # Per-batch results kept alive between one batch's large temporaries and the next pin holes in glibc's
    # heap that the next, wider batch cannot reuse: peak RSS then grew with the number of records scored
    # (+1.7 GiB for 4,000 records; benchmarks/memory.py).
    out = np.empty((3 if moments else 1, starts[-1]), dtype=np.float32)  # (statistic, prediction)
    # ReCaLL's prefix is most of a prefixed row's tokens and its predictions are dropped below: where a batch
    # holds only the first pieces of rows, the model's head and the statistics skip them (``logits_to_keep``,
    # the last positions; rows are right-padded). Their slots in ``out`` stay unwritten. Not under a serve-
    # stage transform, which reads the whole row.
    keeps_last = skip > 0 and transform is None and "logits_to_keep" in inspect.signature(model.forward).parameters
    for batch in windowed.batches(batch_size):
        pieces = [windowed.pieces[k] for k in batch]
        ids, mask = pad([piece for _, _, piece in pieces], pad_id=pad_id)
        ids, mask = ids.to(device), mask.to(device)
        first_pieces = not any(keep for _, keep, _ in pieces)  # each keeps all its predictions, prefix's included
        drop = min(skip, *(len(piece) - 1 for _, _, piece in pieces)) if keeps_last and first_pieces else 0
        if drop:
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=ids.shape[1] - drop).logits
        else:
            logits = model(input_ids=ids, attention_mask=mask).logits
        if transform is not None:
            logits = transform(logits, ids, mask)
        # (statistic, batch, seq - 1 - drop): predictions drop, drop + 1, ... of each piece
        stats = token_stats(logits[:, :-1], ids[:, drop + 1 :], moments=moments).cpu().numpy()
        for j, k in enumerate(batch):
            kept = windowed.kept(k)  # slice(0, len(piece) - 1) where drop > 0
            out[:, starts[k] + drop : starts[k + 1]] = stats[:, j, kept.start : kept.stop - drop]
        del logits, stats  # before the next batch's forward pass, not when its results replace them
    per_row = [out[:, start + skip : end] for start, end in windowed.row_bounds(starts)]
    return TokenStats(
        logprobs=tuple(row[0] for row in per_row),
        mean=tuple(row[1] for row in per_row) if moments else None,
        std=tuple(row[2] for row in per_row) if moments else None,
    )


BLOCK_ELEMENTS = 1 << 21
"""Logits in one block of :func:`token_stats` on the CPU (8 MiB in float32): its full-vocabulary temporaries
stay this small whatever a batch's shape, so the scorer's working set barely grows with the batch's width."""

ACCELERATOR_BLOCK_ELEMENTS = 1 << 26
"""The same on a GPU (256 MiB in float32): its caching allocator reuses freed blocks, and each block costs
a few kernel launches."""


def token_stats(
    logits: torch.Tensor, targets: torch.Tensor, *, moments: bool, block: int | None = None
) -> torch.Tensor:
    """``(statistic, batch, seq)`` float32: log p of ``targets`` (batch, seq) under ``logits`` (batch, seq,
    vocab), then with ``moments`` the mean and standard deviation of log p over the vocabulary, weighted by p.

    Computed in blocks of whole rows, or of positions of one row, of at most ``block`` logits (at least one
    position; default: :data:`BLOCK_ELEMENTS` on the CPU, else :data:`ACCELERATOR_BLOCK_ELEMENTS`): the same
    numbers as one pass over the batch, without its batch-sized temporaries.
    """
    if block is None:
        block = BLOCK_ELEMENTS if logits.device.type == "cpu" else ACCELERATOR_BLOCK_ELEMENTS
    batch, seq, vocab = logits.shape
    out = torch.empty((3 if moments else 1, batch, seq), dtype=torch.float32, device=logits.device)
    per_block = max(1, block // vocab)  # positions
    if per_block >= seq:
        step = per_block // max(seq, 1)  # seq is 0 in a batch of one-token rows
        blocks = [(slice(i, i + step), slice(None)) for i in range(0, batch, step)]
    else:
        blocks = [(slice(i, i + 1), slice(t, t + per_block)) for i in range(batch) for t in range(0, seq, per_block)]
    for rows, positions in blocks:
        logp = torch.log_softmax(logits[rows, positions].float(), dim=-1)  # (rows, positions, vocab)
        out[0, rows, positions] = logp.gather(-1, targets[rows, positions, None]).squeeze(-1)
        if moments:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            out[1, rows, positions] = mu
            # The centred form: E[logp²] − μ² cancels catastrophically in float32. In place: logp and p
            # are not needed after it.
            out[2, rows, positions] = p.mul_(logp.sub_(mu[..., None]).square_()).sum(-1).sqrt_()
    return out


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
    """Rows cut into :func:`windows` pieces, scored in any batch order, read back per row.

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

    def starts(self) -> np.ndarray:
        """``(n_pieces + 1,)``: where each piece's kept predictions start in one flat array of the pass's
        predictions, the last entry its length. Pieces are in row order and a row's windows in token order,
        so each row's predictions are one contiguous run of it (:meth:`row_bounds`)."""
        kept = [len(piece) - 1 - keep for _, keep, piece in self.pieces]
        return np.concatenate([[0], np.cumsum(kept, dtype=np.int64)])

    def row_bounds(self, starts: np.ndarray) -> list[tuple[int, int]]:
        """Per row, ``(start, end)`` of its predictions in that flat array (``starts``: :meth:`starts`)."""
        first = np.searchsorted([i for i, _, _ in self.pieces], np.arange(self.n_rows + 1))
        bounds = starts[first].tolist()
        return list(zip(bounds[:-1], bounds[1:], strict=True))


def task_loss(stats: TokenStats) -> float:
    """Mean next-token loss in nats per token over all tokens of all records (token-weighted)."""
    total = sum(float(lp.sum(dtype=np.float64)) for lp in stats.logprobs)
    count = sum(len(lp) for lp in stats.logprobs)
    return -total / count


@dataclass(frozen=True)
class Scored:
    """One model's statistics on the attack records (calib then eval) and on the utility records."""

    attack: AttackInputs
    utility: TokenStats


@dataclass(frozen=True)
class ScoringPlan:
    """Everything needed to score one model on the attack records and on utility, encoded once per trial.

    ``rows`` (n_attack,) and ``utility_rows`` (n_utility,) are token ids starting with the begin-of-text token,
    cut at the tokenizer's ``max_length``; ``texts`` and ``utility_texts`` are the spans those rows cover (cut
    where the rows were cut: zlib and lowercase describe what the model scored). ``lowercase_rows`` and
    ``prefix`` (ReCaLL's public records, encoded) exist only when an attack needs their pass; ``moments``
    asks the plain pass for the vocabulary's mean and spread. ``n_truncated`` counts attack and utility
    records cut at ``max_length``.
    """

    texts: list[str]
    rows: list[list[int]]
    utility_texts: list[str]
    utility_rows: list[list[int]]
    lowercase_rows: list[list[int]] | None
    prefix: list[int] | None
    moments: bool
    pad_id: int
    batch_size: int
    device: torch.device
    n_truncated: int = 0

    @classmethod
    def build(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        attack_texts: Sequence[str],
        utility_texts: Sequence[str],
        public_texts: Sequence[str],
        passes: Passes,
        *,
        max_length: int | None,
        batch_size: int,
        device: torch.device,
    ) -> ScoringPlan:
        """Encode the records' texts for the passes in ``passes``.

        ``attack_texts`` are the whole records (calib then eval), ``public_texts`` the public records whose
        first ``passes.prefix_records`` make ReCaLL's prefix (none when 0).
        """
        rows, cut = encode(tokenizer, attack_texts, max_length=max_length)
        utility_rows, utility_cut = encode(tokenizer, utility_texts, max_length=max_length)
        texts = scored_texts(tokenizer, attack_texts, rows, max_length=max_length)
        prefix = None
        if passes.prefix_records:
            # The prefix is never cut: it is the context the records are read in, not a record.
            prefix = encode(tokenizer, [" ".join(public_texts[: passes.prefix_records])], max_length=10**9)[0][0]
        # Not cut again: the lowercased span may take a few more tokens; past the context it is windowed.
        lowercase_rows = encode(tokenizer, [t.lower() for t in texts], max_length=None)[0] if passes.lowercase else None
        return cls(
            texts=texts, rows=rows,
            utility_texts=scored_texts(tokenizer, utility_texts, utility_rows, max_length=max_length),
            utility_rows=utility_rows, lowercase_rows=lowercase_rows, prefix=prefix, moments=passes.moments,
            pad_id=tokenizer.pad_token_id, batch_size=batch_size, device=device, n_truncated=cut + utility_cut,
        )

    def stats(self, model: PreTrainedModel, rows: Sequence[Sequence[int]], **kwargs) -> TokenStats:
        """:func:`score` of ``model`` on ``rows`` with this plan's batching; ``kwargs`` as :func:`score`'s."""
        return score(
            model, rows, pad_id=self.pad_id, batch_size=self.batch_size, device=self.device,
            context=context_length(model), **kwargs,
        )

    def reference(self, model: PreTrainedModel) -> tuple[TokenStats, float]:
        """The reference model's plain pass on the attack records, and its utility task loss (nats/token)."""
        return self.stats(model, self.rows), task_loss(self.stats(model, self.utility_rows))

    def n_windowed(self, model: PreTrainedModel) -> int:
        """Rows of every pass (plain, lowercased, ReCaLL-prefixed, utility) longer than ``model``'s context:
        scored with a sliding window."""
        context = context_length(model)
        if context is None:
            return 0
        passes = [self.rows, self.utility_rows, self.lowercase_rows or []]
        if self.prefix is not None:  # the prefixed pass scores prefix + row[1:]
            passes.append([[*self.prefix, *row[1:]] for row in self.rows])
        return sum(len(row) > context for rows in passes for row in rows)

    def model(
        self, model: PreTrainedModel, reference: TokenStats | None, transform: LogitsTransform | None = None
    ) -> Scored:
        """One pass per record set: plain (with moments if asked), lowercased, prefixed; and utility.

        ``reference`` is the reference model's plain pass (:meth:`reference`), or None. ``transform`` is a
        privacy method's ``serve_logits`` at serve stage: it wraps the model's logits in every pass.
        """
        target = self.stats(model, self.rows, moments=self.moments, transform=transform)
        lowercase = self.stats(model, self.lowercase_rows, transform=transform) if self.lowercase_rows is not None else None
        prefixed = self.stats(model, self.rows, prefix=self.prefix, transform=transform) if self.prefix is not None else None
        inputs = AttackInputs(texts=self.texts, target=target, lowercase=lowercase, prefixed=prefixed, reference=reference)
        return Scored(attack=inputs, utility=self.stats(model, self.utility_rows, transform=transform))
