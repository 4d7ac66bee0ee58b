"""The study's objectives in one place: what is minimised, in which column, under which label.

Two objectives (docs/architecture.md §1, §5): **privacy**, the worst case over the attacks of a privacy
statistic on the student, and **utility**, the student's task loss on held-out records; both minimised.
Every choice (Optuna, Pareto fronts, knees, hypervolume rankings, "best so far", ensemble members, which
students are kept) reads :data:`OBJECTIVES`: :data:`PRIVACY`, the calib value (``selection_privacy``), and
:data:`UTILITY`. What is shown as the result is :data:`REPORTED`: :data:`REPORTED_PRIVACY`, the eval value of
the attack chosen on calib (``objective_privacy``), and the same utility. So nothing is chosen and reported
on the same records (docs/architecture.md §5).

An objective carries its direction (as lm-evaluation-harness's metrics carry ``higher_is_better``), and
directions are normalised once, before any comparison (as optuna's ``_normalize_value``):
:func:`selection_points` gives every objective in its minimised form, so Pareto code compares arrays without
knowing directions. Pure: no pandas, pyarrow, torch or ray; tables are read through duck typing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mia_kd.errors import UserError

__all__ = [
    "DIRECTIONS",
    "MODES",
    "NAMES",
    "OBJECTIVES",
    "PRIVACY",
    "PRIVACY_STATISTICS",
    "REPORTED",
    "REPORTED_COLUMNS",
    "REPORTED_PRIVACY",
    "SELECTION_COLUMNS",
    "UTILITY",
    "Direction",
    "Objective",
    "PrivacyStatistic",
    "privacy_statistic",
    "reported_points",
    "selection_points",
]

Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Objective:
    """One objective value of a trial: its name, its column of the ``trials`` table, direction and label."""

    name: str  # the key a search point reports to Tune: "privacy" | "reported_privacy" | "utility"
    column: str  # the trials column holding it
    direction: Direction
    label: str  # axis and terminal label
    attack: str | None = None  # the trials column naming the attack the value is of (privacy only)

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"objective {self.name!r}: direction {self.direction!r}; allowed: minimize, maximize")

    @property
    def mode(self) -> str:
        """The direction as Ray Tune spells it: ``"min"`` or ``"max"``."""
        return "min" if self.direction == "minimize" else "max"

    @property
    def low(self) -> str:
        """The column of its 95% CI's low end, where a table has one (reported values only)."""
        return f"{self.column}_low"

    @property
    def high(self) -> str:
        return f"{self.column}_high"

    def normalize(self, values: np.ndarray | Sequence[float]) -> np.ndarray:
        """``values`` (any shape) as float64 in minimised form: unchanged when minimised, negated when
        maximised. The one place a direction is applied; every comparison happens after it."""
        values = np.asarray(values, dtype=np.float64)
        return values if self.direction == "minimize" else -values


# Every privacy statistic is higher where the attack does better: privacy is minimised.
PRIVACY = Objective(
    name="privacy",
    column="selection_privacy",  # calib: the worst case over the attacks, settings and threshold fit there
    direction="minimize",
    label="privacy: worst-case attack statistic on the student, calib (lower is better)",
    attack="selection_privacy_attack",
)
REPORTED_PRIVACY = Objective(
    name="reported_privacy",
    column="objective_privacy",  # eval: the value of the attack chosen on calib, with its CI
    direction="minimize",
    label="privacy: worst-case attack statistic on the student, eval (lower is better)",
    attack="objective_privacy_attack",
)
UTILITY = Objective(
    name="utility",
    column="objective_utility",  # selected and reported alike
    direction="minimize",
    label="utility: task loss (nats/token, lower is better)",
)

OBJECTIVES: tuple[Objective, ...] = (PRIVACY, UTILITY)  # the search's: what every choice reads, Optuna's order
REPORTED: tuple[Objective, ...] = (REPORTED_PRIVACY, UTILITY)  # what is shown, in the same order
NAMES = tuple(o.name for o in OBJECTIVES)  # Tune's ``metric`` (Tune wants a list: ``list(NAMES)``)
DIRECTIONS = tuple(o.direction for o in OBJECTIVES)  # optuna.create_study(directions=DIRECTIONS)
MODES = tuple(o.mode for o in OBJECTIVES)  # Tune's ``mode`` (``list(MODES)``)
SELECTION_COLUMNS = tuple(o.column for o in OBJECTIVES)  # ("selection_privacy", "objective_utility")
REPORTED_COLUMNS = tuple(o.column for o in REPORTED)  # ("objective_privacy", "objective_utility")


# --------------------------------------------------------------------------------- privacy statistics


@dataclass(frozen=True)
class PrivacyStatistic:
    """A statistic the privacy objective may be (``metrics.privacy_objective``). Higher = the attack does
    better. ``name`` is its eval column in the ``metrics`` table; :attr:`calib` its in-sample calib column,
    which selection reads."""

    name: str
    label: str

    @property
    def calib(self) -> str:
        return f"calib_{self.name}"

    @property
    def low(self) -> str:
        return f"{self.name}_low"

    @property
    def high(self) -> str:
        return f"{self.name}_high"


_STATISTICS = (
    PrivacyStatistic("auc", "AUC"),
    PrivacyStatistic("balanced_accuracy", "balanced accuracy"),
    PrivacyStatistic("tpr_at_fpr_1pct", "TPR at 1% FPR"),
)
# The names, equal to mia_kd.metrics.PRIVACY_STATISTICS and mia_kd.config.PrivacyObjective (the layers may
# not import one another; tests/test_objectives.py keeps the three equal).
PRIVACY_STATISTICS = tuple(s.name for s in _STATISTICS)


def privacy_statistic(name: str) -> PrivacyStatistic:
    """The statistic called ``name``; a :class:`UserError` naming the allowed ones otherwise."""
    for statistic in _STATISTICS:
        if statistic.name == name:
            return statistic
    raise UserError(f"privacy objective: got {name!r}; allowed: {', '.join(PRIVACY_STATISTICS)}")


# ------------------------------------------------------------------------------------------------ points


def _columns(rows: Any, columns: Sequence[str]) -> np.ndarray:
    """``(n, len(columns))`` float64 of ``rows``: a pandas ``DataFrame``, a pyarrow ``Table`` or an
    iterable of mappings (rows as dicts). Nulls read as NaN."""
    if hasattr(rows, "column_names") and hasattr(rows, "column"):  # pyarrow.Table
        return np.column_stack(
            [np.asarray(rows.column(c).to_numpy(zero_copy_only=False), dtype=np.float64) for c in columns]
        ).reshape(rows.num_rows, len(columns))
    if hasattr(rows, "columns") and hasattr(rows, "to_numpy"):  # pandas.DataFrame
        return rows[list(columns)].to_numpy(np.float64)
    records: Iterable[Mapping[str, Any]] = rows
    values = [[row[c] for c in columns] for row in records]
    return np.array(values, dtype=np.float64).reshape(len(values), len(columns))


def _points(rows: Any, objectives: Sequence[Objective]) -> np.ndarray:
    values = _columns(rows, [o.column for o in objectives])
    return np.column_stack([o.normalize(values[:, i]) for i, o in enumerate(objectives)]).reshape(values.shape)


def selection_points(rows: Any) -> np.ndarray:
    """``(n_trials, 2)`` float64: each trial's :data:`OBJECTIVES` (calib privacy, utility) in minimised form
    (:meth:`Objective.normalize`). What Optuna, Pareto fronts, knees and hypervolumes compare.

    ``rows``: a pandas ``DataFrame``, a pyarrow ``Table`` or dicts with the :data:`SELECTION_COLUMNS`.
    """
    return _points(rows, OBJECTIVES)


def reported_points(rows: Any) -> np.ndarray:
    """``(n_trials, 2)`` float64: each trial's :data:`REPORTED` values (eval privacy, utility) in minimised
    form, as :func:`selection_points` (both objectives are minimised, so these are the stored values)."""
    return _points(rows, REPORTED)
