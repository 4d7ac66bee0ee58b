"""LiRA: the target's statistic tested against shadow models trained with and without the record.

Carlini, Chien, Nasr, Song, Terzis, Tramèr, "Membership Inference Attacks From First Principles", IEEE S&P
2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import log_ndtr

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import shadows_of
from mia_kd.errors import ConfigError, MiaKdError

# With few shadows a per-record variance is mostly noise: the paper finds one global variance better with few
# shadow models (tens); `global_variance=None` uses it below 32 shadows a side.
AUTO_GLOBAL_BELOW = 32
# A zero spread (identical shadow statistics) would divide by zero; far below any spread of mean
# log-probabilities that float32 passes resolve.
SIGMA_FLOOR = 1e-6


@dataclass(frozen=True)
class _Side:
    """One side (IN or OUT) of the shadows, fit per record: ``(n_records,)`` arrays and the pooled spread."""

    ok: np.ndarray  # the record has ≥ min_shadows shadows on this side
    mean: np.ndarray  # μ_r over those shadows; NaN where not ok
    std: np.ndarray  # σ_r (ddof 0) where ok and ≥ 2 shadows; NaN elsewhere
    pooled: float  # sqrt(mean over every ok (record, shadow) of (score − μ_r)²)
    fewest: int  # the smallest number of shadows any record has on this side


def _fit(scores: np.ndarray, on_side: np.ndarray, min_shadows: int, pool: np.ndarray) -> _Side:
    """Per-record fit of one side; the pooled spread and the fewest count over the ``pool`` records only."""
    count = on_side.sum(axis=0)
    ok = count >= min_shadows
    total = np.where(on_side, scores, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.full(count.shape, np.nan), where=ok)
    squares = np.where(on_side & ok, scores - np.where(ok, mean, 0.0), 0.0) ** 2
    squares = squares.sum(axis=0)
    used = int(count[ok & pool].sum())
    pooled = float(np.sqrt(squares[ok & pool].sum() / used)) if used else float("nan")
    std = np.sqrt(np.divide(squares, count, out=np.full(count.shape, np.nan), where=ok & (count >= 2)))
    return _Side(ok=ok, mean=mean, std=std, pooled=pooled, fewest=int(count[pool].min()))


def _log_density(s: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """log N(s; μ, σ²) up to the constant −½ log 2π (it cancels in a ratio)."""
    return -0.5 * ((s - mean) / std) ** 2 - np.log(std)


@ATTACKS.register()
@dataclass(frozen=True)
class Lira:
    """Score = log N(s; μ_in, σ_in²) − log N(s; μ_out, σ_out²) (online), or
    −log(1 − Φ((s − μ_out) / σ_out)) (offline).

    s is the target's mean token log-probability of the record; μ_in, σ_in (μ_out, σ_out) the mean and
    standard deviation of the same statistic over the shadow models trained with (without) the record
    (``inputs.shadows``). The paper scales confidences by a logit to make them Gaussian; a mean
    log-probability is already an unbounded average, used as is. Offline, the paper's one-sided test
    Φ((s − μ_out) / σ_out) is reported as −log(1 − Φ), which orders records the same but does not round to 1
    for records far above their OUT shadows.

    Global variance: σ_in (σ_out) is one number, the root mean square of every IN (OUT) shadow statistic's
    deviation from its record's μ_in (μ_out); otherwise each record's own σ (ddof 0), the pooled one where
    the record has fewer than 2 shadows on that side. σ is floored at 1e-6.

    A record with fewer than ``min_shadows`` IN shadows (online) takes μ_in = μ_out + the mean gap μ_in − μ_out
    over records that have both sides, and one lacking OUT shadows μ_out = μ_in − that gap (so its own
    difficulty is kept); offline, one lacking OUT shadows takes the mean over records of μ_out. Such records
    use the pooled σ. No record with both sides (online) or with OUT shadows (offline) is an error. What is
    pooled across records (σ, the gap, the fallback mean) comes from ``inputs.population`` only (the calib
    records in a trial).
    """

    online: bool = True
    """Use shadows trained with the record (IN) as well as without (OUT); offline needs OUT shadows only."""
    global_variance: bool | None = None
    """One σ per side for all records (True), one per record (False), or global below 32 shadows a side (None)."""
    min_shadows: int = 1
    """Fewest shadows on a side from which a record's own μ is used (≥ 1); fewer: the fallback above."""

    needs: ClassVar[frozenset[Need]] = frozenset({"shadows"})

    def __post_init__(self) -> None:
        if not isinstance(self.online, (bool, np.bool_)):
            raise ConfigError(f"lira.online: got {self.online!r}, must be true or false")
        if self.global_variance is not None and not isinstance(self.global_variance, (bool, np.bool_)):
            raise ConfigError(f"lira.global_variance: got {self.global_variance!r}, must be true, false or null")
        if (
            isinstance(self.min_shadows, bool)
            or not isinstance(self.min_shadows, (int, np.integer))
            or self.min_shadows < 1
        ):
            raise ConfigError(f"lira.min_shadows: got {self.min_shadows!r}, must be an integer >= 1")

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        s, scores, inside = shadows_of(inputs, self.name)
        pool = inputs.population_mask()  # what is pooled across records comes from these (calib in a trial)
        out = _fit(scores, ~inside, int(self.min_shadows), pool)
        if not (out.ok & pool).any():
            raise MiaKdError(
                f"attack 'lira': no record has {self.min_shadows} or more shadow models trained without it "
                "(ShadowStats.inside is True almost everywhere); train shadows on part of the records"
            )
        if not self.online:
            mu_out = np.where(out.ok, out.mean, out.mean[out.ok & pool].mean())
            sigma_out = self._sigma(out, out.fewest)
            return -log_ndtr(-(s - mu_out) / sigma_out)

        into = _fit(scores, inside, int(self.min_shadows), pool)
        both = into.ok & out.ok & pool
        if not both.any():
            raise MiaKdError(
                f"attack 'lira' (online): no record has {self.min_shadows} or more shadow models both with and "
                "without it (ShadowStats.inside); train shadows on random halves of the records, or set online: false"
            )
        # Some record has ≥ min_shadows on both sides, so n_shadows ≥ 2 · min_shadows and every record has
        # enough on at least one side.
        gap = float((into.mean[both] - out.mean[both]).mean())
        mu_in = np.where(into.ok, into.mean, out.mean + gap)
        mu_out = np.where(out.ok, out.mean, into.mean - gap)
        fewest = min(into.fewest, out.fewest)
        sigma_in, sigma_out = self._sigma(into, fewest), self._sigma(out, fewest)
        return _log_density(s, mu_in, sigma_in) - _log_density(s, mu_out, sigma_out)

    def _sigma(self, side: _Side, fewest: int) -> np.ndarray:
        """σ of one side per record ``(n_records,)``, floored."""
        use_global = fewest < AUTO_GLOBAL_BELOW if self.global_variance is None else bool(self.global_variance)
        sigma = np.full(side.mean.shape, side.pooled) if use_global else np.where(
            np.isnan(side.std), side.pooled, side.std
        )
        return np.maximum(sigma, SIGMA_FLOOR)
