"""Min-K%++: Min-K% on token log-probabilities standardised by the model's own distribution.

Zhang et al., "Min-K%++: Improved Baseline for Detecting Pre-Training Data from Large Language Models",
ICLR 2025 (arXiv 2024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import check_fraction, lowest_k_mean, stats_of
from mia_kd.errors import MiaKdError

# σ_i is 0 only when the next-token distribution puts all its mass on tokens of one log-probability (a
# one-hot or uniform distribution); then ℓ_i = μ_i for any token the model can emit, and the floor turns
# 0/0 into 0 instead of NaN. Far below any σ_i a float32 forward pass resolves otherwise.
SIGMA_FLOOR = 1e-6


@ATTACKS.register()
@dataclass(frozen=True)
class MinKPlusPlus:
    """Score = mean of the ``max(1, ceil(k · n))`` lowest z_i = (ℓ_i − μ_i) / max(σ_i, 1e-6).

    μ_i and σ_i are the mean and standard deviation of log p(v | x_<i) under p(v | x_<i)
    (``inputs.target.mean`` / ``.std``, each ``(n_r,)`` per record).
    """

    k: float = 0.2
    """Fraction of the record's tokens kept, in (0, 1]."""

    needs: ClassVar[frozenset[Need]] = frozenset({"moments"})

    def __post_init__(self) -> None:
        check_fraction(self.name, "k", self.k)

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        target = stats_of(inputs, "target", self.name)
        if target.mean is None or target.std is None:
            raise MiaKdError(
                f"attack {self.name!r} needs the 'moments' pass, but the scorer did not provide them "
                "(TokenStats.mean / .std is None)"
            )
        z = []
        for r, (lp, mu, sigma) in enumerate(zip(target.logprobs, target.mean, target.std, strict=True)):
            if np.shape(mu) != np.shape(lp) or np.shape(sigma) != np.shape(lp):
                raise MiaKdError(
                    f"attack {self.name!r}: record {r} has logprobs of shape {np.shape(lp)} but mean "
                    f"{np.shape(mu)} and std {np.shape(sigma)}"
                )
            lp, mu, sigma = (np.asarray(a, dtype=np.float64) for a in (lp, mu, sigma))
            z.append((lp - mu) / np.maximum(sigma, SIGMA_FLOOR))
        return lowest_k_mean(z, self.k)
