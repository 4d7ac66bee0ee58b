"""RMIA: the record's likelihood ratio (target over shadow models) ranked against other records' ratios.

Zarifzadeh, Liu, Ong, Shokri, "Low-Cost High-Power Membership Inference Attacks", ICML 2024.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import shadows_of
from mia_kd.errors import ConfigError, MiaKdError

# The population is a fixed, label-free draw of records: the same for every score of a given record count.
POPULATION_SEED = 0


def population_indices(n_records: int, size: int) -> np.ndarray:
    """Indices (sorted) of the records that serve as z: all when ``size`` is 0 or ≥ ``n_records``, else
    ``size`` drawn without replacement by ``np.random.default_rng(0)``."""
    if size == 0 or size >= n_records:
        return np.arange(n_records)
    return np.sort(np.random.default_rng(POPULATION_SEED).choice(n_records, size=size, replace=False))


def _log_mean_exp(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log of the mean of exp(scores) over the masked shadows of each record ``(n_records,)``; NaN where none."""
    count = mask.sum(axis=0)
    peak = np.where(count > 0, np.where(mask, scores, -np.inf).max(axis=0), 0.0)
    total = np.exp(np.where(mask, scores - peak, -np.inf)).sum(axis=0)
    return np.where(count > 0, peak + np.log(np.where(count > 0, total, 1.0)) - np.log(np.maximum(count, 1)), np.nan)


@ATTACKS.register()
@dataclass(frozen=True)
class Rmia:
    """Score(x) = the fraction of population records z ≠ x with Ratio(x) / Ratio(z) > γ.

    Ratio(x) = Pr(x | θ) / Pr(x), with Pr(x | θ) = exp(s), s the target's mean token log-probability of x (a
    per-token geometric-mean likelihood), and Pr(x) the mean of exp(s') over reference models (the shadows,
    ``inputs.shadows``): online all of them; offline only those trained without x, with the paper's linear
    approximation of the missing IN models, Pr(x) = ½((1 + a) · Pr_OUT(x) + (1 − a)). Every record's ratio,
    x's and z's alike, is computed this way, in log space. A record without OUT shadows (offline) takes the
    mean Pr_OUT over the population records that have some; none having any is an error.

    ``a`` defaults to 1 (Pr(x) = Pr_OUT(x)): the paper's approximation was made for confidences near 1, and
    with a per-token likelihood (about e^-3 here) its constant (1 − a) / 2 swamps Pr_OUT unless a is near 1
    (on synthetic shadows: AUC 0.63 at a = 0.3, 0.975 at a = 1). A grid over ``a`` is chosen on calib.

    The population is the other records of ``inputs.population`` (the calib records in a trial; all of them,
    or ``population`` of them drawn with seed 0), chosen without membership labels. So a record's score is a
    rank among them, unchanged when every record's statistic rises alike.
    """

    gamma: float = 1.0
    """Threshold γ > 0 on the pairwise likelihood ratio Ratio(x) / Ratio(z)."""
    a: float = 1.0
    """Offline only: Pr_IN(x) ≈ a · Pr_OUT(x) + (1 − a), a in [0, 1] (the paper fits it on a reference model)."""
    online: bool = False
    """Average over every shadow (with and without x) instead of the OUT ones."""
    population: int = 0
    """How many records serve as z (≥ 0; 0 = all)."""

    needs: ClassVar[frozenset[Need]] = frozenset({"shadows"})

    def __post_init__(self) -> None:
        def real(value: object) -> bool:
            return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)

        if not real(self.gamma) or not self.gamma > 0:
            raise ConfigError(f"rmia.gamma: got {self.gamma!r}, must be a number > 0")
        if not real(self.a) or not 0 <= self.a <= 1:
            raise ConfigError(f"rmia.a: got {self.a!r}, must be in [0, 1]")
        if not isinstance(self.online, (bool, np.bool_)):
            raise ConfigError(f"rmia.online: got {self.online!r}, must be true or false")
        size = self.population
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ConfigError(f"rmia.population: got {self.population!r}, must be an integer >= 0 (0 = all records)")

    def log_ratio(self, inputs: AttackInputs) -> np.ndarray:
        """log Ratio(x) = s − log Pr(x) of every record ``(len(inputs),)`` float64."""
        s, scores, inside = shadows_of(inputs, self.name)
        if self.online:
            return s - _log_mean_exp(scores, np.ones_like(inside))
        log_out = _log_mean_exp(scores, ~inside)
        has_out = ~np.isnan(log_out)
        if not has_out.any():
            raise MiaKdError(
                "attack 'rmia' (offline): no record has a shadow model trained without it (ShadowStats.inside); "
                "train shadows on part of the records, or set online: true"
            )
        usable = has_out & inputs.population_mask() if (has_out & inputs.population_mask()).any() else has_out
        log_out[~has_out] = np.logaddexp.reduce(log_out[usable]) - math.log(int(usable.sum()))
        a = float(self.a)
        constant = math.log1p(-a) if a < 1 else -math.inf  # log(1 − a)
        return s - (np.logaddexp(math.log1p(a) + log_out, constant) - math.log(2.0))

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64 in [0, 1]."""
        ratio = self.log_ratio(inputs)
        pool = np.flatnonzero(inputs.population_mask())
        pool = pool[population_indices(len(pool), int(self.population))]
        in_pool = np.zeros(len(ratio), dtype=bool)
        in_pool[pool] = True
        size = len(pool) - in_pool
        if (size < 1).any():
            raise MiaKdError(f"attack 'rmia' needs at least 2 population records to rank a record against; got {len(pool)}")
        # Ratio(x)/Ratio(z) > γ  ⇔  log Ratio(z) < log Ratio(x) − log γ: count the pool below that, less x itself.
        bound = ratio - math.log(float(self.gamma))
        below = np.searchsorted(np.sort(ratio[pool]), bound, side="left")
        below = below - (in_pool & (ratio < bound))
        return below / size
