"""``topk_targets``: distil on the teacher's renormalised top-k distribution only.

Restricting the released prediction vector to its top k classes is a classic membership-inference
mitigation (Shokri et al. 2017, *Membership Inference Attacks against Machine Learning Models*), used here
as an untargeted baseline next to the methods of Cui, Zhang, Pei 2025 (*On Membership Inference Attacks in
Knowledge Distillation*): the tail of the teacher's distribution, where much of the member/non-member
signal lives, is never shown to the student.

Strength s ∈ [0, 1] maps to ``k = max(1, round(V ** (1 − s)))`` with V the number of logit columns:
s = 0 keeps the full vocabulary (neutral, exactly plain distillation), s = 1 keeps only the argmax (k = 1),
and k falls geometrically in between (s = 0.5 keeps √V). The other logits are set to a *finite* value
10⁴ below the position's smallest logit, so after softening their probability underflows to 0 while the
KD term ``p·(log p − log q)`` stays finite (−inf would give 0·(−inf) = NaN). At serve stage the same
truncation is applied to the student's logits at scoring time.
"""

from __future__ import annotations

import torch

from mia_kd.privacy._base import METHODS, PrivacyMethod

DROP_MARGIN = 1e4  # nats below the row minimum given to dropped logits: exp(−10⁴ / T) is 0 for any usual T


def top_k(vocab_size: int, strength: float) -> int:
    """How many logits ``topk_targets`` keeps per position: ``max(1, round(V ** (1 − strength)))``."""
    return max(1, round(vocab_size ** (1.0 - strength)))


@METHODS.register("topk_targets")
class TopKTargets(PrivacyMethod):
    name = "topk_targets"
    hook = "targets"
    low = 0.0
    high = 1.0
    neutral = 0.0
    summary = "keep only the top k = max(1, round(V^(1 − strength))) logits: 0 → all V, 1 → argmax"
    trades = "less leakage from the distribution's tail for targets that carry no dark knowledge beyond top k"
    stages = frozenset({"train", "serve"})

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → the top k kept, the rest 10⁴ below the position's minimum."""
        k = top_k(logits.shape[-1], self.strength)
        if k >= logits.shape[-1]:
            return logits
        floor = torch.finfo(logits.dtype).min
        dropped = (logits.amin(dim=-1, keepdim=True) - DROP_MARGIN).clamp_min(floor)
        values, indices = logits.topk(k, dim=-1)
        # Scatter by index, not by a threshold, so ties at the k-th value still keep exactly k entries.
        return dropped.expand_as(logits).scatter(-1, indices, values)
