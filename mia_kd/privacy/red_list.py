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

from typing import TYPE_CHECKING

from mia_kd.privacy._base import METHODS, PrivacyMethod
from mia_kd.privacy._vulnerability import vulnerable_columns

if TYPE_CHECKING:
    import torch


@METHODS.register()
class RedList(PrivacyMethod):
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
        import torch

        if self.is_neutral:
            return logits
        return torch.where(vulnerable_columns(self.context, logits), logits - self.strength, logits)
