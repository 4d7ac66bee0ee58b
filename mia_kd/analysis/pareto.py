"""Pareto fronts, hypervolume and the knee over an ``(n_points, n_objectives)`` array, every objective minimised.

Non-dominated sorting and hypervolume come from moocore (C implementations, exact); the tests check them
against brute force on random point sets with ties and duplicates.
"""

from __future__ import annotations

import moocore
import numpy as np


def _points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be (n_points, n_objectives), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite (drop failed trials first)")
    return points


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: True where no other point is at least as good in every objective and better in one.

    Duplicated points are all on the front when one of them is.
    """
    points = _points(points)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(points, keep_weakly=True), dtype=bool)


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Area (volume) dominated by ``points`` and bounded by ``reference`` ``(n_objectives,)``.

    Points that do not strictly dominate the reference add nothing (0.0 for an empty set).
    """
    points, reference = _points(points), np.asarray(reference, dtype=np.float64)
    if reference.shape != (points.shape[1],):
        raise ValueError(f"reference must have shape ({points.shape[1]},), got {reference.shape}")
    inside = points[(points < reference).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=reference))


def knee_index(points: np.ndarray) -> int:
    """Index of the knee of a front: the point closest (Euclidean) to the ideal point after scaling each
    objective to [0, 1] over ``points``. Ties go to the first. Objectives that do not vary are ignored."""
    points = _points(points)
    if len(points) == 0:
        raise ValueError("knee_index of an empty front")
    low, span = points.min(axis=0), np.ptp(points, axis=0)
    scaled = np.divide(points - low, span, out=np.zeros_like(points), where=span > 0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))
