"""The mixture of members' next-token distributions, from their per-token log-probs (no model needed).

For an observed token, the mixture's log-probability is ``log Σ_m w_m p_m(x_i | x_<i)`` = the log-sum-exp of
``log w_m + ℓ_m,i``: exact from the members' stored per-token log-probs. The analysis scores ensembles with
it and the exported ensemble (a torch model) computes the same function, so both live below either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp


def check_weights(weights: Sequence[float], n_members: int) -> np.ndarray:
    """``(n_members,)`` float64 weights, positive and summing to 1 (within 1e-9)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_members,):
        raise ValueError(f"weights: got shape {w.shape}, expected ({n_members},)")
    if (w <= 0).any() or abs(w.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights must be positive and sum to 1, got {w.tolist()}")
    return w


def mixture_logprobs(member_logprobs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Per-token log-probs of the mixture.

    ``member_logprobs``: one array per member, all the same shape (any: one record's ``(n_tokens,)`` or a
    batch of tokens flattened), ℓ_m in nats. Returns float64 of that shape: ``logsumexp_m(log w_m + ℓ_m)``.
    """
    stacked = np.stack([np.asarray(a, dtype=np.float64) for a in member_logprobs])
    w = check_weights(weights, len(stacked))
    return logsumexp(stacked + np.log(w).reshape((-1,) + (1,) * (stacked.ndim - 1)), axis=0)
