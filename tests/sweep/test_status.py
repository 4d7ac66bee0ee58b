"""mia-kd status picks its "best privacy" trial on calib, never on eval."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa

from mia_kd.store import TRIALS, write_trial
from mia_kd.sweep.status import sweep_status


def _store(root, rows, schema=TRIALS):
    manifest = {"sweep_id": "s", "plan": {"a": len(rows)}, "started_at": datetime.now(UTC).isoformat(),
                "sweep": {"max_concurrent": 1}, "config": {}}
    (root / "sweep.json").write_text(json.dumps(manifest))
    for n, (selection, reported, utility) in enumerate(rows):
        row = {name: None for name in schema.names} | {
            "schema_version": 2, "sweep_id": "s", "trial_id": f"t{n}", "status": "completed", "method": "a",
            "strength": float(n), "selection_privacy": selection, "objective_privacy": reported,
            "objective_utility": utility, "wall_time_s": 1.0,
        }
        row = {k: v for k, v in row.items() if k in schema.names}
        write_trial(str(root), sweep_id="s", method="a", trial_id=f"t{n}",
                    tables={"trials": pa.Table.from_pylist([row], schema=schema)})


def test_best_privacy_is_chosen_on_calib(tmp_path):
    # t1 is best on calib, t0 only on eval: status names t1
    _store(tmp_path, [(0.8, 0.5, 5.0), (0.6, 0.7, 6.0)])
    best = sweep_status(tmp_path).best.set_index("best")
    assert best.at["privacy", "trial_id"] == "t1" and best.at["privacy", "privacy_eval"] == 0.7
    assert best.at["utility", "trial_id"] == "t0"


def test_trials_without_a_calib_value_get_no_privacy_pick(tmp_path):
    # Files written by mia-kd 0.1 (schema 1) have no selection_privacy column at all: eval values only.
    schema_1 = pa.schema([f for f in TRIALS if not f.name.startswith(("selection_", "objective_privacy_"))])
    _store(tmp_path, [(None, 0.5, 5.0), (None, 0.7, 6.0)], schema=schema_1)
    best = sweep_status(tmp_path).best
    assert list(best["best"]) == ["utility"]


def test_a_sweep_still_preparing_says_so(tmp_path):
    # The driver writes sweep.json before the preparation task (which knows the methods' spaces) returns.
    from mia_kd.sweep.status import format_status

    manifest = {"sweep_id": "s", "started_at": datetime.now(UTC).isoformat(),
                "sweep": {"max_concurrent": 1, "methods": {"none": {}, "dp_sgd": {}}}, "config": {}}
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    status = sweep_status(tmp_path)
    assert status.preparing and status.eta_s is None
    assert list(status.per_method["method"]) == ["none", "dp_sgd"] and "planned" not in status.per_method
    assert format_status(status).splitlines()[0].startswith("sweep s: preparing")
