"""Input checks shared by the estimators: one message format for every metric (docs/architecture.md §5)."""

from __future__ import annotations

import numbers

import numpy as np

from mia_kd.errors import MiaKdError

# Slack for comparing a ratio of counts with a user-given fraction (FPR ≤ α, class share ≥ 20 %).
EPS = 1e-12


def check_scores(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(scores float64 (n,), labels bool (n,))`` with both classes present."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MiaKdError(f"scores must be numbers: {e}") from None
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1:
        raise MiaKdError(f"scores and labels must be 1-D; got shapes {s.shape} and {y.shape}")
    if len(s) != len(y):
        raise MiaKdError(f"scores and labels differ in length: {len(s)} scores, {len(y)} labels")
    if y.dtype != bool:
        if not (np.issubdtype(y.dtype, np.number) and np.isin(y, (0, 1)).all()):
            bad = np.unique(y[~np.isin(y, (0, 1))])[:5] if np.issubdtype(y.dtype, np.number) else y.dtype
            raise MiaKdError(f"labels must be 1 (member) or 0 (non-member); got {bad}")
        y = y.astype(bool)
    finite = np.isfinite(s)
    if not finite.all():
        raise MiaKdError(
            f"scores must be finite; got {int((~finite).sum())} non-finite of {len(s)} "
            f"(first at index {int(np.argmin(finite))}: {s[np.argmin(finite)]})"
        )
    n1 = int(y.sum())
    if n1 == 0 or n1 == len(y):
        raise MiaKdError(
            f"need both members and non-members; got {n1} members and {len(y) - n1} non-members"
        )
    return s, y


def check_fraction(name: str, value: object, low: float, high: float) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not low <= value <= high:
        raise MiaKdError(f"{name}: got {value!r}, must be a number in [{low}, {high}]")
    return float(value)


def check_bootstrap_args(n_bootstrap: object, level: object) -> None:
    if not isinstance(n_bootstrap, numbers.Integral) or isinstance(n_bootstrap, bool) or n_bootstrap < 1:
        raise MiaKdError(f"n_bootstrap: got {n_bootstrap!r}, must be an integer >= 1")
    if not isinstance(level, numbers.Real) or isinstance(level, bool) or not 0 < level < 1:
        raise MiaKdError(f"level: got {level!r}, must be in (0, 1)")
