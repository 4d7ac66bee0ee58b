"""Formulas shared by several attacks: per-record means, the lowest-k% mean, fetching a needed pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from mia_kd.attacks._base import AttackInputs, ShadowStats, TokenStats
from mia_kd.errors import ConfigError, MiaKdError

# Slack so that k·n a hair above an integer in floating point (0.07 · 100 = 7.000000000000001) does not
# keep one token more.
_K_EPS = 1e-9


def check_fraction(attack: str, field: str, value: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a real number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        0 < value <= 1
    ):
        raise ConfigError(f"{attack}.{field}: got {value!r}, must be in (0, 1]")


def stats_of(
    inputs: AttackInputs, which: Literal["target", "lowercase", "prefixed", "reference", "shadows"], attack: str
) -> TokenStats | ShadowStats:
    """``inputs.<which>``, checked to be present and to hold one entry per text."""
    stats = getattr(inputs, which)
    if stats is None:
        raise MiaKdError(
            f"attack {attack!r} needs the {which!r} pass, but the scorer did not provide it "
            f"(AttackInputs.{which} is None)"
        )
    if len(stats) != len(inputs):
        raise MiaKdError(
            f"attack {attack!r}: AttackInputs.{which} has {len(stats)} records, texts has {len(inputs)}"
        )
    return stats


def shadows_of(inputs: AttackInputs, attack: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a shadow-model attack reads: the target's statistic ``s`` (mean ℓ per record, ``(n,)``), and the
    shadows' ``scores`` (float64) and ``inside`` (bool), ``(n_shadows, n)``, checked to hold one column per text."""
    shadows = stats_of(inputs, "shadows", attack)
    s = mean_per_record(stats_of(inputs, "target", attack).logprobs)
    return s, np.asarray(shadows.scores, dtype=np.float64), np.asarray(shadows.inside, dtype=bool)


def _lengths(arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
    lengths = np.array([np.size(a) for a in arrays], dtype=np.int64)
    if len(lengths) and lengths.min() < 1:
        raise MiaKdError(f"{what}: record {int(np.argmin(lengths))} has no predicted tokens")
    return lengths


def mean_per_record(arrays: Sequence[np.ndarray], what: str = "logprobs") -> np.ndarray:
    """Mean of each 1-D array: ``len(arrays)`` arrays of shapes ``(n_r,)``, n_r ≥ 1 -> ``(len(arrays),)``
    float64."""
    lengths = _lengths(arrays, what)
    if len(lengths) == 0:
        return np.zeros(0)
    flat = np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    return np.add.reduceat(flat, starts) / lengths


def n_lowest(n: int, k: float) -> int:
    """How many of ``n`` tokens "the lowest k %" keeps: ``max(1, ceil(k · n))``.

    Rounding up (rather than the reference code's ``int(k · n)``, which keeps nothing for short records)
    means every record keeps at least one token and k = 1 keeps them all.
    """
    return max(1, math.ceil(k * n - _K_EPS))


def lowest_k_mean(arrays: Sequence[np.ndarray], k: float, what: str = "logprobs") -> np.ndarray:
    """Mean of the ``n_lowest(n_r, k)`` smallest values of each array ``(n_r,)`` -> ``(len(arrays),)``."""
    _lengths(arrays, what)
    out = np.empty(len(arrays))
    for r, a in enumerate(arrays):
        a = np.ravel(a).astype(np.float64)
        m = n_lowest(len(a), k)
        out[r] = np.partition(a, m - 1)[:m].mean()
    return out
