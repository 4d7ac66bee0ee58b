"""LOSS attack: the mean log-probability of the record's tokens (the negated mean loss).

Yeom, Giacomelli, Fredrikson, Jha, "Privacy Risk in Machine Learning: Analyzing the Connection to
Overfitting", IEEE CSF 2018.
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
class Loss:
    """Score = mean ℓ_i over the predicted tokens (higher = lower loss = member)."""

    needs: ClassVar[frozenset[Need]] = frozenset()

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        return mean_per_record(stats_of(inputs, "target", self.name).logprobs)
