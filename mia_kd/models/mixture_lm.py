"""The weighted mixture of causal LMs that share a tokenizer: what an exported ensemble is at run time.

Load one from an exported folder with :func:`mia_kd.distill.ensemble.load_ensemble`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from mia_kd.errors import UserError
from mia_kd.metrics import check_weights, mixture_logprobs
from mia_kd.models.build import context_length
from mia_kd.models.scoring import LogitsTransform, score
from mia_kd.models.tokenizer import encode

log = logging.getLogger(__name__)


class MixtureLM(torch.nn.Module):
    """The weighted mixture of causal LMs that share a tokenizer.

    ``models[m]``'s logits pass through ``transforms[m]`` (its serve-stage transform, or None) before its
    log-softmax; the mixture is ``logsumexp_m(log w_m + log_softmax_m)``. ``max_length`` is the token
    budget per text in :meth:`token_logprobs` (the sweep's ``tokenizer.max_length``, so the ids match the
    stored records); None cuts nothing (texts longer than a member's context are windowed).
    """

    def __init__(
        self,
        models: Sequence[torch.nn.Module],
        weights: Sequence[float],
        tokenizer,
        *,
        transforms: Sequence[LogitsTransform | None] | None = None,
        trial_ids: Sequence[str] | None = None,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        w = check_weights(weights, len(models))
        self.members = torch.nn.ModuleList(models)
        self.weights = w.tolist()
        self.register_buffer("log_weights", torch.tensor(np.log(w), dtype=torch.float32), persistent=False)
        self.tokenizer = tokenizer
        self.transforms = list(transforms) if transforms is not None else [None] * len(models)
        self.trial_ids = list(trial_ids) if trial_ids is not None else [str(i) for i in range(len(models))]
        self.context = min((n for n in map(context_length, models) if n is not None), default=None)
        self.max_length = max_length  # None: texts are not cut (long ones are windowed)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.log_weights.device

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return next((i for i in (tok.pad_token_id, tok.eos_token_id) if i is not None), 0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, seq)`` ids and mask → ``(batch, seq, vocab)`` float32 log-probs of the mixture.

        ``vocab`` is the narrowest member's output width: wider output layers' extra columns are no token
        (each member's softmax still runs over its full width, as the scorer's does). The same mixture as
        :meth:`token_logprobs`, kept in float32 over the whole vocabulary (float64 would double the largest
        tensor here), so the two differ by float32 rounding.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mixed = None
        for model, transform, log_w in zip(self.members, self.transforms, self.log_weights, strict=True):
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            if transform is not None:
                logits = transform(logits, input_ids, attention_mask)
            term = torch.log_softmax(logits.float(), dim=-1) + log_w
            if mixed is None:
                mixed = term
            else:  # a running log-sum-exp: one member's logits in memory at a time
                width = min(mixed.shape[-1], term.shape[-1])
                mixed = torch.logaddexp(mixed[..., :width], term[..., :width])
        return mixed

    @torch.inference_mode()
    def token_logprobs(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """Per text, ``(n_tokens,)`` float32 log-prob of each observed token under the mixture.

        Computed as the sweep's stored mixture is: each member scored by the sweep's scorer
        (:func:`mia_kd.models.scoring.score`, its serve-stage transform applied, texts longer than *its*
        context windowed at that context), then :func:`mia_kd.metrics.mixture_logprobs` in float64.
        Texts are encoded as the scorer's records are (:func:`mia_kd.models.tokenizer.encode`: the
        begin-of-text token first, every text token predicted, cut at ``max_length`` tokens if set).
        Batches other than the sweep's pad rows to other widths: the result then differs from the stored
        one by float32 rounding, nothing more.
        """
        rows, cut = encode(self.tokenizer, texts, max_length=self.max_length)
        if cut:
            log.warning("%d texts were longer than %d tokens and were cut", cut, self.max_length)
        per_member = [
            score(
                model, rows, pad_id=self.pad_id, batch_size=batch_size, device=self.device, transform=transform,
                context=context_length(model),
            ).logprobs
            for model, transform in zip(self.members, self.transforms, strict=True)
        ]
        return [
            mixture_logprobs([lp[i] for lp in per_member], self.weights).astype(np.float32) for i in range(len(rows))
        ]

    @torch.inference_mode()
    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 20,
        temperature: float = 1.0,
        seed: int = 0,
        greedy: bool = False,
    ) -> str:
        """The text the mixture continues ``prompt`` with (the continuation only, special tokens dropped).

        Samples each token from the mixture at ``temperature`` with a generator seeded by ``seed``, or
        takes its most likely token (``greedy``); stops at the end-of-text token. Every step runs the whole
        context through every member (no key/value cache): meant for inspection, not for serving volume.
        """
        if not greedy and temperature <= 0:
            raise UserError(f"temperature: got {temperature!r}, must be > 0 (use greedy=True for argmax)")
        ids = encode(self.tokenizer, [prompt], max_length=10**9)[0][0]
        generator = torch.Generator(device=self.device).manual_seed(seed)
        new: list[int] = []
        for _ in range(max_new_tokens):
            context = ids + new
            if self.context is not None:
                context = context[-self.context :]
            logp = self(torch.tensor([context], device=self.device))[0, -1]
            if greedy:
                token = int(logp.argmax())
            else:
                probs = torch.softmax(logp / temperature, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator))
            if token == self.tokenizer.eos_token_id:
                break
            new.append(token)
        return self.tokenizer.decode(new, skip_special_tokens=True)

    def extra_repr(self) -> str:
        return ", ".join(f"{t}: {w:g}" for t, w in zip(self.trial_ids, self.weights, strict=True))

