"""Frontier on a synthetic store: fronts against brute force, the recorded reference point, the outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet  # noqa: F401 (pa.parquet)
import pytest

from mia_kd.analysis import frontier as fr
from mia_kd.analysis.pareto import hypervolume
from mia_kd.analysis.results import load_results
from mia_kd.errors import UserError
from mia_kd.store import METRICS, TRIALS, write_trial

PARAMS = json.dumps({"attacks": [{"name": "loss", "params": {}}], "metrics": {"n_bootstrap": 10}, "seed": 0})


def write_store(root, points, methods, sweep_id="s", reported=None):
    """Completed trials at ``points`` (selection privacy on calib, utility) of ``methods``, with a metrics row
    each. ``reported``: the eval privacy of each trial (default: the calib value)."""
    reported = [p for p, _ in points] if reported is None else reported
    for n, ((privacy, utility), method, shown) in enumerate(zip(points, methods, reported, strict=True)):
        trial_id = f"t{n:03d}"
        trial = {name: None for name in TRIALS.names} | {
            "schema_version": 2, "sweep_id": sweep_id, "trial_id": trial_id, "status": "completed", "method": method,
            "strength": float(n), "params": PARAMS, "privacy_objective": "auc", "selection_privacy": privacy,
            "selection_privacy_attack": "loss", "objective_privacy": shown, "objective_privacy_low": shown - 0.01,
            "objective_privacy_high": shown + 0.01, "objective_privacy_attack": "loss", "objective_utility": utility,
            "teacher_task_loss": 1.0,
        }
        metric = {name: None for name in METRICS.names} | {
            "schema_version": 1, "trial_id": trial_id, "model_role": "student", "attack": "loss", "auc": privacy,
            "auc_low": privacy - 0.01, "auc_high": privacy + 0.01,
        }
        write_trial(str(root), sweep_id=sweep_id, method=method, trial_id=trial_id, tables={
            "trials": pa.Table.from_pylist([trial], schema=TRIALS), "metrics": pa.Table.from_pylist([metric], schema=METRICS),
        })
    return str(root)


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    points = np.round(rng.random((30, 2)) * [0.5, 3] + [0.5, 4], 2)  # rounded: ties and duplicates
    points[5] = points[6]
    methods = ["none"] + [["a", "b", "c"][i % 3] for i in range(29)]
    return write_store(tmp_path, points, methods), points, methods


def _dominated(points, i):
    return any((points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in range(len(points)))


def test_fronts_hypervolume_and_knee_match_brute_force(store):
    root, points, methods = store
    results = load_results(root)
    ref = fr.reference_point(results)
    front = fr.compute_frontier(results, ref)
    got = front.points.set_index("trial_id")
    for i, (method, (privacy, utility)) in enumerate(zip(methods, points, strict=True)):
        row = got.loc[f"t{i:03d}"]
        assert (row.selection_privacy, row.objective_utility) == (privacy, utility)
        assert row.on_front == (not _dominated(points, i))
        same = np.array([m == method for m in methods])
        assert row.on_method_front == (not _dominated(points[same], int(same[: i + 1].sum()) - 1))
        assert row.privacy_low == pytest.approx(privacy - 0.01)
    assert got["is_knee"].sum() == 1 and got.loc[got["is_knee"], "on_front"].all()
    fronts = front.fronts.set_index("method")
    assert fronts.at["all", "hypervolume"] == pytest.approx(hypervolume(points, np.array(ref.point)))
    for method in ("a", "b", "c"):
        mine = points[[m == method for m in methods]]
        assert fronts.at[method, "hypervolume"] == pytest.approx(hypervolume(mine, np.array(ref.point)))
    assert list(front.fronts["method"])[0] == "all"  # then methods by hypervolume, best first
    assert list(front.fronts["hypervolume"][1:]) == sorted(front.fronts["hypervolume"][1:], reverse=True)


def test_fronts_and_knees_read_calib_and_never_eval(tmp_path):
    # The same calib values with two different (random, "poisoned") sets of eval values: every choice (front,
    # method fronts, knee, hypervolumes) is identical; the reported privacy is each trial's eval value.
    rng = np.random.default_rng(1)
    points = np.round(rng.random((25, 2)) * [0.5, 3] + [0.5, 4], 2)
    methods = ["none"] + [["a", "b"][i % 2] for i in range(24)]
    frames = []
    for k in range(2):
        eval_values = rng.random(25)
        results = load_results(write_store(tmp_path / str(k), points, methods, reported=eval_values))
        front = fr.compute_frontier(results, fr.reference_point(results))
        got = front.points.set_index("trial_id").loc[[f"t{i:03d}" for i in range(25)]]
        np.testing.assert_array_equal(got["objective_privacy"], eval_values)
        np.testing.assert_array_equal(got["on_front"], [not _dominated(points, i) for i in range(25)])
        frames.append((got[["on_front", "on_method_front", "is_knee"]], front.fronts.drop(columns="knee_reported_privacy")))
    pd.testing.assert_frame_equal(frames[0][0], frames[1][0])
    pd.testing.assert_frame_equal(frames[0][1], frames[1][1])


def test_a_schema_1_store_without_the_calib_objective_is_refused(tmp_path):
    root = write_store(tmp_path, [(0.6, 5.0)], ["none"])
    path = next((tmp_path / "trials").rglob("*.parquet"))
    table = pa.parquet.read_table(path)
    table = table.set_column(table.schema.get_field_index("selection_privacy"), "selection_privacy",
                             pa.nulls(1, pa.float64()))
    pa.parquet.write_table(table, path)
    with pytest.raises(UserError, match="no calib selection objective"):
        load_results(root)


def test_reference_point_is_recorded_once_and_reused(store):
    root, points, _ = store
    results = load_results(root)
    ref = fr.reference_point(results, margin=0.25)
    np.testing.assert_allclose(ref.point, points[0] * 1.25)  # the none trial + 25%
    recorded = json.loads((results.local_root() / fr.REFERENCE_FILE).read_text())
    assert recorded["s"]["point"] == list(ref.point)
    assert fr.reference_point(load_results(root)) == ref  # reused without asking
    with pytest.raises(UserError, match="already has the reference point"):
        fr.reference_point(results, margin=0.5)


def test_reference_point_needs_none_or_a_given_point(tmp_path):
    root = write_store(tmp_path, [(0.6, 5.0), (0.7, 4.0)], ["a", "a"])
    with pytest.raises(UserError, match="--reference-point"):
        fr.reference_point(load_results(root))
    ref = fr.reference_point(load_results(root), given=(1.0, 6.0))
    assert ref.point == (1.0, 6.0) and ref.basis == "given"


def test_write_frontier_keeps_the_front_rows(store, tmp_path):
    root, _, _ = store
    results = load_results(root)
    front = fr.compute_frontier(results, fr.reference_point(results))
    paths = fr.write_frontier(front, tmp_path / "out")
    assert [p.name for p in paths] == ["frontier.parquet", "frontier.png", "frontier.html"]
    rows = pd.read_parquet(paths[0])
    expected = front.points[front.points["on_front"] | front.points["on_method_front"]]
    assert sorted(rows["trial_id"]) == sorted(expected["trial_id"])
    text = fr.format_frontier(front)
    assert "hypervolume reference point" in text and front.points.loc[front.points["is_knee"], "trial_id"].iloc[0] in text


def test_load_results_errors(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        load_results(str(tmp_path / "missing"))
    root = write_store(tmp_path / "two", [(0.6, 5.0)], ["none"], sweep_id="x")
    write_store(tmp_path / "two", [(0.6, 5.0)], ["none"], sweep_id="y")
    with pytest.raises(UserError, match="--sweep-id"):
        load_results(root)
    assert load_results(root, "y").sweep_id == "y"
    (tmp_path / "bad" / "trials").mkdir(parents=True)
    (tmp_path / "bad" / "trials" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="cannot read"):
        load_results(str(tmp_path / "bad"))
