"""Min-K% Prob: the mean of the lowest k% token log-probabilities.

Shi et al., "Detecting Pretraining Data from Large Language Models", ICLR 2024.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import check_fraction, lowest_k_mean, stats_of


@ATTACKS.register()
@dataclass(frozen=True)
class MinK:
    """Score = mean of the ``max(1, ceil(k · n))`` lowest ℓ_i of a record with n predicted tokens.

    ``k = 1`` is the LOSS attack.
    """

    k: float = 0.2
    """Fraction of the record's tokens kept, in (0, 1]."""

    needs: ClassVar[frozenset[Need]] = frozenset()

    def __post_init__(self) -> None:
        check_fraction(self.name, "k", self.k)

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        return lowest_k_mean(stats_of(inputs, "target", self.name).logprobs, self.k)
