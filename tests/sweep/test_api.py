"""The public API end to end: one CI-sized sweep through ``mia_kd.run_sweep``, read back through
``mia_kd.load_results``, whose fronts and ensembles must be what ``mia-kd frontier`` and ``mia-kd ensemble`` compute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

import mia_kd
from mia_kd.objectives import PRIVACY, REPORTED_PRIVACY, UTILITY
from mia_kd.store import read_table

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def swept(ray_session, tmp_path_factory, ci_raw_factory):
    """``(outcome, out, seen)``: one sweep (the none baseline, then one temperature trial), run once for the
    module; ``seen``: the trial ids a user callback was told of."""
    from ray.tune import Callback

    class Seen(Callback):
        def __init__(self) -> None:
            self.ids: list[str] = []

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.ids.append(trial.trial_id)

    root = tmp_path_factory.mktemp("api")
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump({**ci_raw_factory(root / "cache"), "sweep": {
        "methods": {"none": {}, "temperature": {"trials": 2}}, "max_concurrent": 1, "save_students": "none",
    }}))
    seen = Seen()
    outcome = mia_kd.run_sweep(path, out=root / "out", callbacks=[seen])
    return outcome, root / "out", seen.ids


def test_run_sweep_returns_the_store_counts_and_its_tune_experiment(swept):
    outcome, out, seen = swept
    assert isinstance(outcome, mia_kd.SweepOutcome)
    assert outcome.out == str(out) and outcome.completed == 2 and outcome.failed == 0 and outcome.ran == 2
    # One experiment: the baseline, then temperature's one trial (it is given the baseline).
    assert len(outcome.result_grids) == 1
    (grid,) = outcome.result_grids
    assert len(grid) == 2 and not grid.errors
    stored = read_table(str(out), "trials").to_pandas()
    tune_ids = [result.metrics["trial_id"] for result in grid]
    assert sorted(tune_ids) == sorted(stored["tune_trial_id"]) == sorted(seen), "user callbacks see every trial"
    frame = grid.get_dataframe().set_index("trial_id")
    rows = stored.set_index("tune_trial_id")
    for tune_id in tune_ids:
        assert frame.loc[tune_id, UTILITY.name] == pytest.approx(rows.loc[tune_id, UTILITY.column])
        assert frame.loc[tune_id, PRIVACY.name] == pytest.approx(rows.loc[tune_id, PRIVACY.column])


def test_dir_lists_the_public_names():
    assert {"run_sweep", "load_results", "SweepResults", "SweepOutcome", "run_trial"} <= set(dir(mia_kd))
    assert set(mia_kd.__all__) <= set(dir(mia_kd))


def test_load_results_computes_without_writing_and_matches_the_commands(swept, tmp_path, capsys):
    from mia_kd.cli import main

    _, out, _ = swept
    results = mia_kd.load_results(out)
    stored = read_table(str(out), "trials").to_pandas()
    assert isinstance(results, mia_kd.SweepResults) and results.sweep_id == "ci" and results.n_failed == 0
    assert sorted(results.trials["trial_id"]) == sorted(stored["trial_id"])
    assert set(results.metrics["trial_id"]) == set(stored["trial_id"])
    assert set(results.metrics["model_role"]) == {"teacher", "student"}

    front = results.frontier()
    ensemble = results.ensemble(max_utility_drop=0.5, max_size=3)
    asym = results.asymmetry()
    # Computed only: no reference point recorded, no ensembles row.
    assert not (out / "frontier.json").exists() and not (out / "ensembles").exists()
    assert set(asym.rates["role"]) == {"teacher", "student"} and set(asym.rates["attack"]) == {"loss"}
    assert len(asym.agreement) == 2 * len(stored)  # members and non-members per trial

    # The frontier command (which records the reference point) computes the same fronts.
    assert main(["frontier", str(out), "--out", str(tmp_path / "analysis")]) == 0
    written = pd.read_parquet(tmp_path / "analysis" / "frontier.parquet")
    again = results.frontier()
    pd.testing.assert_frame_equal(again.fronts, front.fronts)
    on = front.points[front.points["on_front"] | front.points["on_method_front"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(on, written[list(on.columns)], check_dtype=False, check_categorical=False)
    assert set(front.fronts["method"]) == {"all", "none", "temperature"}

    # The ensemble command chooses and reports the same mixture.
    assert main(["ensemble", str(out), "--max-utility-drop", "0.5", "--max-size", "3"]) == 0
    capsys.readouterr()
    row = read_table(str(out), "ensembles").to_pandas().iloc[-1]
    assert ensemble.members == list(row["members"]) and np.allclose(ensemble.weights, row["weights"])
    for key in (REPORTED_PRIVACY.column, UTILITY.column, "selection_privacy", "max_task_loss"):
        assert ensemble.row[key] == pytest.approx(row[key]), key
    assert ensemble.row["best_single_trial_id"] == row["best_single_trial_id"]
    assert ensemble.privacy == pytest.approx(row[REPORTED_PRIVACY.column]) and ensemble.utility == pytest.approx(row[UTILITY.column])
    assert set(ensemble.attacks["attack"]) <= {a.name for a in results.results.attacks}
    assert list(ensemble.vote["attack"]) == [a.name for a in results.results.attacks]
    assert len(ensemble.steps) >= 1 and ensemble.steps.iloc[0]["added"] == row["best_single_trial_id"]

    saved = results.ensemble(max_utility_drop=0.5, max_size=3, save=True)
    assert saved.row["ensemble_id"] in set(read_table(str(out), "ensembles").to_pandas()["ensemble_id"])


def test_import_and_analysis_load_neither_torch_nor_ray(swept):
    import subprocess
    import sys

    _, out, _ = swept
    code = (
        "import sys, mia_kd; names = dir(mia_kd); r = mia_kd.load_results(sys.argv[1]); r.frontier(); "
        "r.ensemble(max_utility_drop=0.5); r.asymmetry(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray'}))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
