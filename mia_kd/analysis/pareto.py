"""Pareto fronts over an ``(n_points, n_objectives)`` array, every objective minimised."""

from __future__ import annotations

import numpy as np


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: True where no other point is at least as good in every objective and better in one.

    Duplicated points are all on the front when one of them is.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be (n_points, n_objectives), got shape {points.shape}")
    better_or_equal = (points[:, None, :] <= points[None, :, :]).all(-1)  # [i, j]: i weakly dominates j
    strictly = (points[:, None, :] < points[None, :, :]).any(-1)
    dominated = (better_or_equal & strictly).any(axis=0)
    return ~dominated
