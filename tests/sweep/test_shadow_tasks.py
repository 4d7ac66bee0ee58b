"""Shadow models as Ray tasks: once per sweep (offline), per trial (online), and ``mia_kd.run_trial``'s local Ray."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mia_kd.store import read_table

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SHADOWED = ["loss", "reference", "lira", "rmia"]


class _Fetches:
    """``ray`` as :mod:`mia_kd.sweep.shadow_tasks` sees it, recording what its ``ray.get`` brings to the driver."""

    def __init__(self, ray) -> None:
        self._ray, self.fetched = ray, []

    def __getattr__(self, name):
        return getattr(self._ray, name)

    def get(self, refs, **kwargs):
        values = self._ray.get(refs, **kwargs)
        self.fetched += values if isinstance(refs, list) else [values]
        return values


def test_a_sweep_trains_its_shadows_once_as_tasks(ray_session, sweep_file, tmp_path, ci_raw, monkeypatch):
    """A sweep whose students are distilled on a disjoint pool and attacked with lira and rmia: shadows once,
    every trial on the pool (its shadow students too), the leakage transfer ratio in every row; the driver
    learns each shadow task ended without fetching its model."""
    import yaml

    from mia_kd.sweep import shadow_tasks
    from mia_kd.sweep.runner import run_sweep

    fetches = _Fetches(shadow_tasks.ray)
    monkeypatch.setattr(shadow_tasks, "ray", fetches)

    path = sweep_file({"methods": {"none": {}, "temperature": {"trials": 2}}, "max_concurrent": 2, "save_students": "none"})
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "attacks": SHADOWED, "shadows": {"count": 2},
                                    "data": {**raw["data"], "transfer": 120},
                                    "distill": {**raw["distill"], "transfer": "disjoint"}}))
    out = tmp_path / "out"
    outcome = run_sweep(path, out=str(out))
    assert outcome.completed == 2 and outcome.failed == 0
    # 2 shadow teachers and their 2 students: a done flag each, then the attach task's summary; no model
    assert [v for v in fetches.fetched if not isinstance(v, dict)] == [True] * 4, fetches.fetched
    trials = read_table(str(out), "trials").to_pandas()
    assert (trials["distill_transfer"] == "disjoint").all() and (trials["n_transfer"] == 120).all()
    assert (trials["n_transfer_pool"] == 120).all() and trials["leakage_transfer_ratio"].notna().all()
    metrics = read_table(str(out), "metrics").to_pandas()
    assert {("teacher", "lira"), ("teacher", "rmia"), ("student", "lira"), ("student", "rmia")} <= set(
        zip(metrics["model_role"], metrics["attack"], strict=True))
    records = read_table(str(out), "records", columns=["trial_id", "model_role", "fold", "shadow_inside"]).to_pandas()
    attack_rows = records[records["fold"] != "utility"]
    teacher = attack_rows[attack_rows["model_role"] == "teacher"]
    assert set(teacher["trial_id"]) == {f"prepared-{trials['prepared_key'].iloc[0]}"}, "teacher rows once, with shadows"
    for role in ("teacher", "student"):
        inside = np.stack(attack_rows.loc[attack_rows["model_role"] == role, "shadow_inside"].to_numpy())
        assert (inside.sum(axis=1) == 1).all(), "each record IN for one of the two shadows"
    # The offline shadow students are the same for every trial: their statistics are equal across trials.
    students = read_table(str(out), "records", columns=["trial_id", "model_role", "fold", "record_id", "shadow_scores"])
    students = students.to_pandas().query("model_role == 'student' and fold != 'utility'")
    first, second = (np.stack(rows.sort_values("record_id")["shadow_scores"].to_numpy())
                     for _, rows in students.groupby("trial_id"))
    np.testing.assert_array_equal(first, second)


def test_run_trial_runs_online_shadows_as_local_ray_tasks(ray_session, ci_raw):
    """The API's trial with ``shadows.online``: the same tasks on the running Ray, the same numbers as the
    plain in-process path (neutral method: its own shadow students equal the offline ones)."""
    import mia_kd
    from mia_kd.config import validate_config
    from mia_kd.trial import run_trial

    config = validate_config({**ci_raw, "attacks": SHADOWED, "shadows": {"count": 2, "online": True}})
    with_ray = pd.DataFrame(mia_kd.run_trial(config).metrics).set_index(["model_role", "attack"])
    offline = validate_config({**ci_raw, "attacks": SHADOWED, "shadows": {"count": 2}})
    here = pd.DataFrame(run_trial(offline).metrics).set_index(["model_role", "attack"])
    for key in [("teacher", "lira"), ("student", "lira"), ("student", "rmia")]:
        assert with_ray.at[key, "auc"] == here.at[key, "auc"]
        assert with_ray.at[key, "attack_params"] == here.at[key, "attack_params"]
