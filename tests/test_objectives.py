"""The objectives module: one source for columns and directions, equal to what config, metrics and the store hold."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mia_kd import metrics, objectives
from mia_kd.config import PrivacyObjective
from mia_kd.errors import UserError
from mia_kd.store import ENSEMBLES, METRICS, TRIALS


def test_privacy_statistics_are_the_same_in_config_metrics_and_objectives():
    # config and metrics may not import objectives (tests/test_architecture.py): this test keeps the three equal.
    assert objectives.PRIVACY_STATISTICS == get_args(PrivacyObjective) == metrics.PRIVACY_STATISTICS


def test_every_named_column_is_in_the_store_and_the_metrics():
    for objective in (*objectives.OBJECTIVES, *objectives.REPORTED):
        assert objective.column in TRIALS.names and (objective.attack is None or objective.attack in TRIALS.names)
    for objective in objectives.REPORTED:  # reported values carry a CI in the ensembles table
        assert {objective.column, objective.low, objective.high} <= set(ENSEMBLES.names)
    assert {objectives.REPORTED_PRIVACY.low, objectives.REPORTED_PRIVACY.high} <= set(TRIALS.names)
    assert objectives.PRIVACY.column in ENSEMBLES.names  # the calib value an ensemble was selected on
    fields = set(metrics.AttackMetrics.__dataclass_fields__)
    for name in objectives.PRIVACY_STATISTICS:
        statistic = objectives.privacy_statistic(name)
        assert {statistic.name, statistic.calib, statistic.low, statistic.high} <= fields & set(METRICS.names)


def test_directions_for_optuna_and_tune():
    assert objectives.NAMES == ("privacy", "utility")
    assert objectives.DIRECTIONS == ("minimize", "minimize") and objectives.MODES == ("min", "min")
    assert objectives.SELECTION_COLUMNS == ("selection_privacy", "objective_utility")
    assert objectives.REPORTED_COLUMNS == ("objective_privacy", "objective_utility")
    assert objectives.REPORTED_PRIVACY.name not in objectives.NAMES  # reported to Tune, never searched on


def test_a_maximised_objective_is_negated_once():
    up = objectives.Objective(name="x", column="a", direction="maximize", label="x")
    np.testing.assert_array_equal(up.normalize([1.0, -2.0]), [-1.0, 2.0])
    np.testing.assert_array_equal(objectives.UTILITY.normalize([1.0, -2.0]), [1.0, -2.0])
    assert up.mode == "max"
    with pytest.raises(ValueError, match="direction 'down'"):
        objectives.Objective(name="x", column="a", direction="down", label="x")  # type: ignore[arg-type]


def test_points_read_frames_tables_and_rows_alike():
    rows = [
        {"selection_privacy": 0.6, "objective_privacy": 0.55, "objective_utility": 3.0},
        {"selection_privacy": 0.7, "objective_privacy": None, "objective_utility": 2.5},
    ]
    want = np.array([[0.6, 3.0], [0.7, 2.5]])
    for form in (rows, pd.DataFrame(rows), pa.Table.from_pylist(rows)):
        np.testing.assert_array_equal(objectives.selection_points(form), want)
        reported = objectives.reported_points(form)
        assert reported.shape == (2, 2) and reported[0, 0] == 0.55 and np.isnan(reported[1, 0])
    assert objectives.selection_points([]).shape == (0, 2)
    assert objectives.selection_points(pa.Table.from_pylist(rows).slice(0, 0)).shape == (0, 2)


def test_unknown_statistic_names_the_allowed_ones():
    with pytest.raises(UserError, match="got 'aucc'; allowed: auc, balanced_accuracy, tpr_at_fpr_1pct"):
        objectives.privacy_statistic("aucc")
