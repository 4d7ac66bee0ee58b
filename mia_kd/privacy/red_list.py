"""``red_list``: push the vulnerable tokens down in the teacher's targets before softening.

From Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: the tokens of the
members the teacher's attack flags (the vulnerable subset, docs/architecture.md §6) form a "red list"; lowering their
logits by ``strength`` nats (a fixed additive penalty, i.e. dividing their unnormalised probability by
``e^strength``) makes the student copy less of the teacher's confidence on exactly the tokens that give the
members away. Every other column is left bit-identical.

Strength ∈ [0, 8] nats; 0 is neutral (plain distillation). At serve stage the same penalty is applied to
the student's logits at scoring time.
"""

from __future__ import annotations

import torch

from mia_kd.errors import MiaKdError
from mia_kd.privacy._base import METHODS, MethodContext, PrivacyMethod


def vulnerable_columns(context: MethodContext, logits: torch.Tensor) -> torch.Tensor:
    """``(vocab,)`` bool on ``logits.device``: True on the vulnerable tokens' columns of ``logits``.

    A model's output layer may be wider than the tokenizer's vocabulary (embeddings padded to a multiple of
    64, say); the extra columns are no token, hence never vulnerable.
    """
    if context.vulnerability is None:
        raise MiaKdError("no vulnerability in the method context: cannot tell which tokens are vulnerable")
    token_mask = torch.as_tensor(context.vulnerability.token_mask, dtype=torch.bool)
    width = logits.shape[-1]
    if token_mask.shape[0] > width:
        raise MiaKdError(
            f"vulnerability token mask has {token_mask.shape[0]} entries but the logits only {width} columns"
        )
    if token_mask.shape[0] < width:
        token_mask = torch.cat([token_mask, token_mask.new_zeros(width - token_mask.shape[0])])
    return token_mask.to(logits.device)


@METHODS.register("red_list")
class RedList(PrivacyMethod):
    name = "red_list"
    hook = "targets"
    low = 0.0
    high = 8.0
    neutral = 0.0
    summary = "subtract `strength` nats from the vulnerable tokens' logits before softening"
    trades = "less leakage on vulnerable tokens for a teacher that under-predicts them (worse fit on those tokens)"
    stages = frozenset({"train", "serve"})
    needs_vulnerability = True

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → the same with ``strength`` subtracted on vulnerable columns."""
        if self.is_neutral:
            return logits
        return torch.where(vulnerable_columns(self.context, logits), logits - self.strength, logits)
