"""Reference-model attack: the target's likelihood calibrated by a reference model's.

Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021; Mireshghallah
et al., "Quantifying Privacy Risks of Masked Language Models Using Membership Inference Attacks", EMNLP
2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import mean_per_record, stats_of


@ATTACKS.register()
@dataclass(frozen=True)
class Reference:
    """Score = mean ℓ_target − mean ℓ_reference, the reference model trained on ``public`` only.

    The two means may be over different token counts (the models may tokenise differently).
    """

    needs: ClassVar[frozenset[Need]] = frozenset({"reference"})

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        target = mean_per_record(stats_of(inputs, "target", self.name).logprobs)
        reference = mean_per_record(stats_of(inputs, "reference", self.name).logprobs)
        return target - reference
