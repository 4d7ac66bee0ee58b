"""Experiment tracking: ``sweep.tracking`` attaches Ray Tune's MLflow / W&B logger callbacks, every trial reports
its per-attack student metrics, both objectives, epsilon and its id, and Optuna studies name their metrics.

MLflow 3 refuses ``file:`` tracking stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; offline, ``sqlite:///PATH``
works without that (both are checked here)."""

from __future__ import annotations

import math
import sys

import optuna
import pytest
import yaml

import mia_kd
from mia_kd.config import SweepSection, load_sweep
from mia_kd.errors import ConfigError, UserError
from mia_kd.objectives import NAMES, PRIVACY, REPORTED_PRIVACY, UTILITY
from mia_kd.store import read_table

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SWEEP = {"methods": {"none": {}, "dp_sgd": {"trials": 1}}, "max_concurrent": 1, "save_students": "none"}


def _write(root, ci_raw_factory, sweep: dict):
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump({**ci_raw_factory(root / "cache"), "sweep": sweep}))
    return path


@pytest.fixture(scope="module")
def tracked(ray_session, tmp_path_factory, ci_raw_factory):
    """``(outcome, out, uri)``: a sweep (the none baseline, one dp_sgd trial) logged to a file MLflow store."""
    root = tmp_path_factory.mktemp("tracking")
    uri = "file://" + str(root / "mlruns")
    path = _write(root, ci_raw_factory, {**SWEEP, "tracking": {"mlflow": {
        "tracking_uri": uri, "experiment_name": "mia-kd-ci", "tags": {"team": "privacy"}}}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        outcome = mia_kd.run_sweep(path, out=root / "out")
        yield outcome, root / "out", uri


def test_every_trial_is_an_mlflow_run_with_its_metrics(tracked, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    outcome, out, uri = tracked
    assert outcome.completed == 2 and outcome.failed == 0
    stored = read_table(str(out), "trials").to_pandas()
    metrics = read_table(str(out), "metrics").to_pandas()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mia-kd-ci")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(stored) == 2
    attacks = sorted(metrics["attack"].unique())
    assert len(attacks) >= 2
    for _, row in stored.iterrows():
        # Ray names each run after its Tune trial (<trainable>_<trial id>): the stored row's tune_trial_id.
        (run,) = [r for r in runs if r.data.tags["trial_name"].endswith(row["tune_trial_id"])]
        got = run.data.metrics
        assert run.data.tags["team"] == "privacy" and run.info.status == "FINISHED"
        assert run.data.params["method"] == row["method"]
        for objective in (PRIVACY, REPORTED_PRIVACY, UTILITY):
            assert got[objective.name] == pytest.approx(row[objective.column])
        mine = metrics[(metrics["trial_id"] == row["trial_id"]) & (metrics["model_role"] == "student")]
        for _, m in mine.iterrows():
            for key in ("auc", "tpr_at_fpr_1pct"):
                value = got[f"student/{m['attack']}/{key}"]
                assert value == pytest.approx(m[key], nan_ok=True), (m["attack"], key)
        if row["method"] == "dp_sgd":
            assert math.isfinite(got["epsilon"]) and got["epsilon"] == pytest.approx(row["epsilon"])
        else:
            assert "epsilon" not in got


def test_optuna_studies_name_their_metrics_and_each_trial_its_tune_trial(tracked):
    from mia_kd.sweep.study import journal_storage

    outcome, out, _ = tracked
    stored = read_table(str(out), "trials").to_pandas()
    journal = journal_storage(outcome.journal)
    for method in ("none", "dp_sgd"):
        study = optuna.load_study(study_name=f"ci.{method}", storage=journal)
        assert study.metric_names == list(NAMES)
        ids = [t.user_attrs.get("trial_id") for t in study.get_trials()]
        assert ids and set(ids) == set(stored.loc[stored["method"] == method, "tune_trial_id"])


def test_a_refused_mlflow_store_is_one_line_before_any_training(ray_session, tmp_path, ci_raw_factory, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    path = _write(tmp_path, ci_raw_factory, {**SWEEP, "tracking": {"mlflow": {"tracking_uri": f"file://{tmp_path}/ml"}}})
    with pytest.raises(UserError, match=r"sweep.tracking.mlflow.tracking_uri .*sqlite:///") as error:
        mia_kd.run_sweep(path, out=tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out" / "trials").exists() and not (tmp_path / "cache").exists()


def test_an_offline_sqlite_store_is_accepted(tmp_path):
    from mia_kd.sweep.tracking import tracking_callbacks

    tracking = SweepSection.model_validate({"tracking": {"mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/ml.db"}}})
    (callback,) = tracking_callbacks(tracking.tracking, "ci")
    assert type(callback).__name__ == "MLflowLoggerCallback" and callback.experiment_name == "ci"


@pytest.mark.parametrize(("tracker", "package"), [("mlflow", "mlflow-skinny"), ("wandb", "wandb")])
def test_a_missing_tracker_package_names_its_install(tracker, package, monkeypatch):
    from mia_kd.sweep.tracking import tracking_callbacks

    monkeypatch.setitem(sys.modules, tracker, None)  # import fails as if not installed
    section = SweepSection.model_validate({"tracking": {tracker: {}}})
    with pytest.raises(UserError, match=rf"pip install {package}$"):
        tracking_callbacks(section.tracking, "ci")


def test_tracking_keys_are_checked(tmp_path, ci_raw_factory):
    path = _write(tmp_path, ci_raw_factory, SWEEP)
    config = load_sweep(path, ["sweep.tracking.mlflow.experiment_name=x", "sweep.tracking.wandb.mode=offline"])
    assert config.sweep.tracking.mlflow.experiment_name == "x" and config.sweep.tracking.wandb.mode == "offline"
    with pytest.raises(ConfigError, match="uri"):
        load_sweep(path, ["sweep.tracking.mlflow.uri=http://x"])
    with pytest.raises(ConfigError, match="mode"):
        load_sweep(path, ["sweep.tracking.wandb.mode=sometimes"])
