"""``topk_targets``: distil on (or serve) only the top k of a distribution.

Restricting the released prediction vector to its top k classes is a classic membership-inference
mitigation (Shokri et al. 2017, *Membership Inference Attacks against Machine Learning Models*), used here
as an untargeted baseline next to the methods of Cui, Zhang, Pei 2025 (*On Membership Inference Attacks in
Knowledge Distillation*): the tail of the distribution, where much of the member/non-member signal lives,
is never shown.

Strength s ∈ [0, 1] maps to ``k = max(1, round(V ** (1 − s)))`` with V the number of logit columns:
s = 0 keeps the full vocabulary (neutral, exactly plain distillation), s = 1 keeps only the argmax (k = 1),
and k falls geometrically in between (s = 0.5 keeps √V). Both behaviours are invariant to adding a
constant to all logits of a position.

Train stage (teacher targets): the renormalised top-k distribution. The other logits are set to a
*finite* value ``DROP_MARGIN`` below the position's smallest logit, so after softening their probability
underflows to exactly 0 while the KD term ``p·(log p − log q)`` stays finite (−inf would give
0·(−inf) = NaN). The margin only has to underflow; its value changes nothing.

Serve stage (the student's logits at scoring time): what a top-k API tells a user. The top k tokens keep
their own probabilities and the rest of the mass, ``1 − Σ top-k p``, is spread evenly over the other
V − k tokens, each ``log((1 − Σ top-k p) / (V − k))``. Every token keeps a finite log-probability that
depends on the model's distribution only (no arbitrary constant scales the task loss or the attack
scores); the tail's shape, and so its membership signal, is gone. The remaining mass is computed as the
log-sum-exp of the dropped log-probabilities, which does not cancel when the top k hold nearly all of it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mia_kd.privacy._base import METHODS, PrivacyMethod

if TYPE_CHECKING:
    import torch

DROP_MARGIN = 1e4  # nats below the row minimum given to dropped logits: exp(−10⁴ / T) is 0 for any usual T


def top_k(vocab_size: int, strength: float) -> int:
    """How many logits ``topk_targets`` keeps per position: ``max(1, round(V ** (1 − strength)))``."""
    return max(1, round(vocab_size ** (1.0 - strength)))


@METHODS.register()
class TopKTargets(PrivacyMethod):
    hook = "targets"
    low = 0.0
    high = 1.0
    neutral = 0.0
    summary = (
        "keep only the top k = max(1, round(V^(1 − strength))) tokens: 0 → all V, 1 → argmax "
        "(serve: the rest of the mass spread evenly)"
    )
    trades = "less leakage from the distribution's tail for targets that carry no dark knowledge beyond top k"
    stages = frozenset({"train", "serve"})

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → the top k kept, the rest 10⁴ below the position's minimum."""
        import torch

        k = top_k(logits.shape[-1], self.strength)
        if k >= logits.shape[-1]:
            return logits
        floor = torch.finfo(logits.dtype).min
        dropped = (logits.amin(dim=-1, keepdim=True) - DROP_MARGIN).clamp_min(floor)
        values, indices = logits.topk(k, dim=-1)
        # Scatter by index, not by a threshold, so ties at the k-th value still keep exactly k entries.
        return dropped.expand_as(logits).scatter(-1, indices, values)

    def serve_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → log-probabilities: the top k's own, the rest of the mass spread evenly."""
        import torch

        vocab = logits.shape[-1]
        k = top_k(vocab, self.strength)
        if k >= vocab:
            return logits
        logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
        values, indices = logp.topk(k, dim=-1)
        kept = torch.zeros_like(logp, dtype=torch.bool).scatter(-1, indices, True)
        rest = logp.masked_fill(kept, -math.inf).logsumexp(dim=-1, keepdim=True)  # log(1 − Σ top-k p)
        spread = rest - math.log(vocab - k)
        return spread.expand_as(logp).scatter(-1, indices, values).to(logits.dtype)
