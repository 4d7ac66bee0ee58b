"""``temperature``: shrink the vulnerable tokens' logits towards 0 in the teacher's targets.

From Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: the logits of the
vulnerable tokens (those of the members the teacher's attack flags, DESIGN §6) are multiplied by
``1 − strength`` before softening, i.e. those columns alone see a temperature of ``1 / (1 − strength)``.
The teacher's sharp, membership-revealing confidence on those tokens is flattened; the other columns are
left bit-identical. The study uses a single point, strength 0.5 (logits halved).

Strength ∈ [0, 0.95]; 0 is neutral (plain distillation). At serve stage the same scaling is applied to the
student's logits at scoring time.
"""

from __future__ import annotations

import torch

from mia_kd.privacy._base import METHODS, PrivacyMethod
from mia_kd.privacy.red_list import vulnerable_columns


@METHODS.register("temperature")
class VulnerableTemperature(PrivacyMethod):
    name = "temperature"
    hook = "targets"
    low = 0.0
    high = 0.95
    neutral = 0.0
    summary = "multiply the vulnerable tokens' logits by (1 − strength) before softening (study: 0.5)"
    trades = "less leakage on vulnerable tokens for flatter, less informative targets on them"
    stages = frozenset({"train", "serve"})
    needs_vulnerability = True

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → the same with the vulnerable columns scaled by ``1 − strength``."""
        if self.is_neutral:
            return logits
        return torch.where(vulnerable_columns(self.context, logits), logits * (1.0 - self.strength), logits)
