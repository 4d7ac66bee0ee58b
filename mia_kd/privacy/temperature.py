"""``temperature``: temper the vulnerable tokens' probabilities in the teacher's targets.

From Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: the vulnerable
tokens (those of the members the teacher's attack flags) see a temperature of ``1 / (1 − strength)``
before softening, so the teacher's sharp, membership-revealing confidence on them is flattened. The study
multiplied those columns' raw logits by ``1 − strength`` (a single point, strength 0.5: logits halved).

Raw logits are defined only up to a constant per position (softmax cannot tell ``z`` from ``z + c``), so
scaling them turns one teacher distribution into different targets depending on an offset the model
never chose. The scaling is applied to the log-probabilities instead, ``log_softmax(z)``, which have a
fixed zero (probability 1): the vulnerable columns become ``(1 − strength) · log p``, i.e. ``p_v →
p_v^(1 − strength)`` before renormalising, and every other column is ``log p``, so the other tokens keep
their odds against each other exactly. Among the vulnerable tokens the target is the teacher's at
temperature ``1 / (1 − strength)``; raising probabilities below 1 to a power below 1 also gives the
vulnerable tokens together more of the mass than the teacher did, while the most likely of them loses
share to the other vulnerable ones.

Strength ∈ [0, 0.95]; 0 is neutral (plain distillation: the logits are returned unchanged). The output is
log-probabilities (in the logits' dtype, computed in at least float32). At serve stage the same transform
is applied to the student's logits at scoring time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mia_kd.privacy._base import METHODS, PrivacyMethod
from mia_kd.privacy._vulnerability import vulnerable_columns

if TYPE_CHECKING:
    import torch


@METHODS.register()
class VulnerableTemperature(PrivacyMethod):
    hook = "targets"
    low = 0.0
    high = 0.95
    neutral = 0.0
    summary = "raise the vulnerable tokens' probabilities to the power (1 − strength) before softening (study: 0.5)"
    trades = "less leakage on vulnerable tokens for flatter, less informative targets on them"
    stages = frozenset({"train", "serve"})
    needs_vulnerability = True

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → log-probabilities, the vulnerable columns scaled by ``1 − strength``."""
        import torch

        if self.is_neutral:
            return logits
        logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
        tempered = torch.where(vulnerable_columns(self.context, logits), logp * (1.0 - self.strength), logp)
        return tempered.to(logits.dtype)
