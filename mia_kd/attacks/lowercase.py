"""Lowercase attack: compares the model's likelihood of the text with that of its lowercased version.

Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021.
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
class Lowercase:
    """Score = −(mean ℓ(x) / mean ℓ(lower(x))), i.e. minus the ratio of log-perplexities.

    A member's exact casing is likelier than its lowercased form, so the ratio is small and the score high.
    """

    needs: ClassVar[frozenset[Need]] = frozenset({"lowercase"})

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        original = mean_per_record(stats_of(inputs, "target", self.name).logprobs)
        lowered = mean_per_record(stats_of(inputs, "lowercase", self.name).logprobs)
        return -(original / lowered)
