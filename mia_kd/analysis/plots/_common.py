"""What the figures share: table columns, styles, checks and the axis helpers (see the package docstring)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mia_kd.objectives import REPORTED_PRIVACY, UTILITY
# The frontier's axes: the reported values (eval privacy, task loss); fronts were chosen on the selection values.
X, Y = UTILITY.column, REPORTED_PRIVACY.column
POINT_COLUMNS = (
    "trial_id", "method", "strength", Y, "privacy_low", "privacy_high",
    REPORTED_PRIVACY.attack, X, "on_front", "on_method_front", "is_knee", "epsilon",
)
FRONT_COLUMNS = ("method", "n_trials", "n_front", "hypervolume", "knee_trial_id")
# The teacher on the frontier, one row per teacher: its eval privacy (same statistic, its worst attack chosen
# on calib like a student's) with CI, that attack, and its task loss.
TEACHER_COLUMNS = ("attack", "privacy", "privacy_low", "privacy_high", "utility")
# Each privacy statistic's value for an attack that guesses: the frontier's chance line.
CHANCE = {"auc": 0.5, "balanced_accuracy": 0.5, "tpr_at_fpr_1pct": 0.01}
MARGIN = 0.05  # axes extend this share of the data's span past it
RATE_COLUMNS = (
    "trial_id", "method", "strength", "attack", "role",
    "tpr", "tpr_low", "tpr_high", "tnr", "tnr_low", "tnr_high",
)
AGREEMENT_COLUMNS = (
    "trial_id", "method", "strength", "attack", "label", "both", "teacher_only", "student_only", "neither",
)
AGREEMENT_PARTS = ("both", "teacher_only", "student_only", "neither")
UTILITY_LABEL = UTILITY.label

# matplotlib's tab10, shared by both back ends so a method has one colour everywhere.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
# A marker shape per method (methods are told apart without colour, e.g. printed in grey); the teacher's
# cross and the knee's star are in neither list.
_MARKERS = ("o", "s", "^", "D", "v", "<", ">", "p", "h", "8")
_SYMBOLS = ("circle", "square", "triangle-up", "diamond", "triangle-down", "triangle-left", "triangle-right",
            "pentagon", "hexagon", "octagon")
_TEACHER_MARKER = "x"
_ROLE_STYLE = {"teacher": ("#444444", "o"), "student": ("#d95f02", "D")}
_PART_COLOURS = {"both": "#c0392b", "teacher_only": "#444444", "student_only": "#d95f02", "neither": "#d9d9d9"}


@dataclass(frozen=True)
class Curve:
    """One exact ROC step curve: ``fpr``, ``tpr`` are ``(n_points,)`` rates in [0, 1] from (0, 0) to (1, 1)."""

    name: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float

    def __post_init__(self) -> None:
        fpr, tpr = np.asarray(self.fpr, dtype=np.float64), np.asarray(self.tpr, dtype=np.float64)
        if fpr.ndim != 1 or fpr.shape != tpr.shape or len(fpr) < 2:
            raise ValueError(f"curve {self.name!r}: fpr {fpr.shape} and tpr {tpr.shape} must be equal 1-d, >= 2")
        for key, rate in (("fpr", fpr), ("tpr", tpr)):
            if not np.isfinite(rate).all() or rate.min() < 0 or rate.max() > 1:
                raise ValueError(f"curve {self.name!r}: {key} must lie in [0, 1], got [{rate.min()}, {rate.max()}]")
        object.__setattr__(self, "fpr", fpr)
        object.__setattr__(self, "tpr", tpr)


# ---------------------------------------------------------------------------------------------- helpers


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column {missing[0]!r} (missing {missing}; has {list(frame.columns)})")


def _check_points(points: pd.DataFrame, fronts: pd.DataFrame, reference: Sequence[float]) -> None:
    _require(points, POINT_COLUMNS, "points")
    _require(fronts, FRONT_COLUMNS, "fronts")
    if points.empty:
        raise ValueError("points: no completed trials to plot")
    if len(reference) != 2 or not np.isfinite(np.asarray(reference, dtype=np.float64)).all():
        raise ValueError(f"reference must be a finite (privacy, utility) pair, got {reference!r}")


def _colours(methods: Iterable[str]) -> dict[str, str]:
    return _styles(methods, _PALETTE)


def _styles(methods: Iterable[str], styles: Sequence[str]) -> dict[str, str]:
    """One of ``styles`` per method, in sorted order (cycling), so a method keeps it across figures."""
    return {m: styles[i % len(styles)] for i, m in enumerate(sorted(set(methods)))}


def _with_hypervolume(label: str, fronts: pd.DataFrame, method: str) -> str:
    """``label`` plus the hypervolume of ``method``'s front (``"all"``: all methods) when ``fronts`` has it."""
    hv = fronts.loc[fronts["method"] == method, "hypervolume"].to_numpy(np.float64)
    return f"{label} (HV {hv[0]:.3g})" if len(hv) and np.isfinite(hv[0]) else label


def _staircase(front: pd.DataFrame) -> pd.DataFrame:
    """Front points in drawing order: utility ascending, privacy descending (a 'post' step line)."""
    return front.sort_values([X, Y], ascending=[True, False])


def _privacy_errors(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(minus, plus)`` lengths of the privacy CI whiskers, NaN where the CI is missing."""
    y = frame[Y].to_numpy(np.float64)
    minus = np.clip(y - frame["privacy_low"].to_numpy(np.float64), 0, None)
    plus = np.clip(frame["privacy_high"].to_numpy(np.float64) - y, 0, None)
    return minus, plus


def _privacy_axis(privacy_label: str) -> str:
    return f"privacy: worst-case attack {privacy_label}, eval (attack and front chosen on calib; lower is better)"


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    return path


# --------------------------------------------------------------------------------------------- frontier


def _check_teacher(teacher: pd.DataFrame | None) -> pd.DataFrame:
    """``teacher`` checked (:data:`TEACHER_COLUMNS`), or an empty frame of them where it is None."""
    if teacher is None:
        return pd.DataFrame(columns=TEACHER_COLUMNS)
    _require(teacher, TEACHER_COLUMNS, "teacher")
    return teacher


def _span(values: Iterable[float], pad: float = MARGIN) -> tuple[float, float]:
    """``(low, high)`` of the finite ``values`` widened by ``pad`` of their span on each side."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    low, high = float(finite.min()), float(finite.max())
    span = high - low if high > low else max(abs(high), 1.0) * 0.1
    return low - pad * span, high + pad * span


