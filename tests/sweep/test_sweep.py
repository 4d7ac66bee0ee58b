"""Sweeps on Ray Tune + Optuna, CI-sized: tables, the baseline trained once, resume after SIGKILL, failed trials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mia_kd.store import read_table

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _trials(out: Path):
    return read_table(str(out), "trials").to_pandas()


def test_two_methods_three_trials_each_share_one_baseline(ray_session, sweep_file, tmp_path):
    from mia_kd.sweep.runner import run_sweep

    out = tmp_path / "out"
    path = sweep_file({
        "methods": {"red_list": {}, "temperature": {}}, "trials_per_method": 3, "max_concurrent": 2,
        "save_students": "all",
    })
    outcome = run_sweep(path, out=str(out))
    trials = _trials(out)
    # The neutral strength is the same student for both: trained once (as red_list, the first method) and given
    # to temperature's study, where it counts as one of its 3 trials. 5 students, not 6.
    assert outcome.completed == 5 and outcome.failed == 0 and outcome.ran == 5 and len(trials) == 5
    assert trials["trial_id"].is_unique
    assert (trials["status"] == "completed").all()
    assert (trials["strength"] == 0.0).sum() == 1, "the baseline is trained once in the sweep"
    red, temperature = (trials[trials["method"].astype(str) == m] for m in ("red_list", "temperature"))
    assert len(red) == 3 and len(temperature) == 2
    assert (red["strength"] == 0.0).any(), "the baseline is trained first, as the first method"
    assert trials["optuna_trial"].notna().all()
    # The teacher is prepared once and shared: one teacher for all, and no trial spent time on it.
    assert trials["teacher_key"].nunique() == 1
    assert all("teacher" not in json.loads(times)["trial"] for times in trials["stage_times"])
    metrics = read_table(str(out), "metrics").to_pandas()
    assert set(metrics["trial_id"]) == set(trials["trial_id"])
    _check_records_once(out, trials)
    for trial_id in trials["trial_id"]:
        assert (out / "students" / trial_id / "model.safetensors").is_file()
    _check_selection_objective(out, outcome.journal, trials)
    # Running the same sweep again finds everything in the store and runs nothing, nor adds the baseline again.
    again = run_sweep(path, out=str(out))
    assert again.ran == 0 and len(_trials(out)) == 5
    _check_selection_objective(out, again.journal, trials)
    _check_status_and_export(out, trials, tmp_path)


def _check_records_once(out: Path, trials) -> None:
    """The teacher's and reference model's rows are stored once for the sweep's one prepared state, the
    students' once per trial; every trial still reads its teacher's rows."""
    from mia_kd.analysis.results import load_results

    records = read_table(str(out), "records", columns=["trial_id", "model_role", "record_id"]).to_pandas()
    assert trials["prepared_key"].nunique() == 1
    shared = records[records["model_role"].isin(["teacher", "reference"])]
    assert set(shared["trial_id"]) == {f"prepared-{trials['prepared_key'].iloc[0]}"}
    assert not shared.duplicated(["model_role", "record_id"]).any(), "teacher and reference rows once, not per trial"
    student = records[records["model_role"] == "student"]
    assert set(student["trial_id"]) == set(trials["trial_id"])
    assert len(shared[shared["model_role"] == "teacher"]) == len(student) // len(trials)
    teacher = load_results(str(out)).records(roles=("teacher",), columns=["trial_id", "record_id"])
    assert teacher.groupby("trial_id").size().to_dict() == dict.fromkeys(trials["trial_id"], len(student) // len(trials))


def _check_selection_objective(out: Path, journal: Path, trials) -> None:
    """Optuna saw the calib selection objective, and the reported front is its Pareto set."""
    import numpy as np
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from mia_kd.analysis import frontier as fr
    from mia_kd.analysis.results import load_results

    assert trials["selection_privacy"].notna().all() and trials["selection_privacy_attack"].notna().all()
    storage = JournalStorage(JournalFileBackend(str(journal)))
    baseline = trials[trials["strength"] == 0.0].iloc[0]
    for method in ("red_list", "temperature"):
        study = optuna.load_study(study_name=f"ci.{method}", storage=storage)
        rows = trials[trials["method"].astype(str) == method].set_index("optuna_trial")
        done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
        assert len(done) == len(study.trials) == 3
        given = [t for t in done if "baseline_of" in t.user_attrs]
        assert len(given) == (method == "temperature"), "the baseline is added once, to the other method only"
        # Every Optuna trial names its Tune trial (optuna-dashboard links a point to the store's rows).
        assert all(t.user_attrs["trial_id"] == rows.at[t.number, "tune_trial_id"] for t in done if t not in given)
        for t in given:
            assert t.user_attrs["trial_id"] == baseline["tune_trial_id"] and t.params == {"strength": 0.0}
            assert t.values == [baseline["selection_privacy"], baseline["objective_utility"]]
        for t in done:
            if t not in given:
                assert t.values == [rows.at[t.number, "selection_privacy"], rows.at[t.number, "objective_utility"]]
    results = load_results(str(out))
    front = fr.compute_frontier(results, fr.reference_point(results, given=(1.0, 100.0)))
    points = trials[["selection_privacy", "objective_utility"]].to_numpy()
    pareto = {
        trials["trial_id"].iloc[i] for i in range(len(points))
        if not any((points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in range(len(points)))
    }
    assert set(front.points.loc[front.points["on_front"], "trial_id"]) == pareto
    # Each method's front counts the baseline, as if it had trained it itself.
    assert front.fronts.set_index("method").loc[["red_list", "temperature"], "n_trials"].tolist() == [3, 3]
    np.testing.assert_array_equal(  # the reported privacy is the eval value, beside the calib one
        front.points.set_index("trial_id").loc[list(pareto), "objective_privacy"],
        trials.set_index("trial_id").loc[list(pareto), "objective_privacy"])


def _check_status_and_export(out: Path, trials, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mia_kd.cli import main

    capsys_out = tmp_path / "status.txt"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["status", str(out)]) == 0
    text = buffer.getvalue()
    capsys_out.write_text(text)
    for method, trained in (("red_list", "3"), ("temperature", "2")):  # temperature was given the baseline
        line = next(line for line in text.splitlines() if line.strip().startswith(method))
        assert line.split()[1:4] == [trained, trained, "0"]  # planned, completed, failed
    assert "best so far" in text

    trial_id = trials.sort_values("objective_privacy")["trial_id"].iloc[0]
    dest = tmp_path / "exported"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["export", str(out), trial_id, str(dest)]) == 0
        assert main(["export", str(out), "no-such-trial", str(tmp_path / "x")]) == 2
        assert main(["status", str(tmp_path)]) == 2
    card = (dest / "README.md").read_text()
    assert trial_id in card and "| loss |" in card and "TNR" in card
    model = AutoModelForCausalLM.from_pretrained(dest)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    assert model.config.vocab_size == len(tokenizer)


def test_a_failing_trial_becomes_a_failed_row_and_the_sweep_goes_on(ray_session, sweep_file, tmp_path):
    from mia_kd.sweep.runner import run_sweep

    out = tmp_path / "out"
    # Dropping almost all vulnerable members plus half of all members leaves nothing to distil on: it raises.
    path = sweep_file({
        "methods": {
            "red_list": {"trials": 2},
            "vulnerable_filter": {"trials": 2, "strength": [0.95, 1.0], "params": {"margin": 0.5}},
        },
        "max_concurrent": 2, "max_failures": 1, "save_students": "none",
    })
    outcome = run_sweep(path, out=str(out))
    trials = _trials(out)
    failed = trials[trials["status"] == "failed"]
    assert outcome.failed == 2 and len(failed) == 2
    assert (failed["method"].astype(str) == "vulnerable_filter").all()
    assert failed["error"].str.contains("nothing", case=False).all()
    assert (trials[trials["method"].astype(str) == "red_list"]["status"] == "completed").sum() == 2


def _sweep_command(path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mia_kd", "sweep", str(path), "--out", str(out), "-q"]


def test_sigkill_of_the_driver_then_rerun_completes_exactly_once(sweep_file, tmp_path, process_tools):
    out = tmp_path / "out"
    path = sweep_file({"methods": {"red_list": {}, "output_noise": {}}, "trials_per_method": 3, "max_concurrent": 2,
                       "save_students": "none"})
    ray_tmp = tempfile.mkdtemp(prefix="rk", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(_sweep_command(path, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600  # a ceiling: on a loaded CI machine the first trial can take minutes
        while time.monotonic() < deadline and driver.poll() is None:
            if (out / "trials").is_dir() and any((out / "trials").rglob("*.parquet")):
                break
            time.sleep(0.5)
        assert driver.poll() is None, f"the sweep ended before it could be killed: {driver.stderr.read()[-2000:]}"
        process_tools["kill_tree"](driver.pid)  # the driver and the Ray processes it started
        driver.wait(timeout=30)
    finally:
        process_tools["kill_tree"](driver.pid)
    partial = _trials(out)
    assert 1 <= len(partial) < 5

    # The rerun also reports what its driver imported: torch and transformers load only in the Ray workers
    # (the preparation task computes the methods' strength spaces), never in the driver (docs/architecture.md §2).
    code = ("import sys; from mia_kd.cli import main; code = main(); "
            "print('driver imported', sorted({'torch', 'transformers'} & set(sys.modules)), file=sys.stderr); sys.exit(code)")
    try:
        rerun = subprocess.run([sys.executable, "-c", code, *_sweep_command(path, out)[3:]], env=env,
                               capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stderr.strip().splitlines()[-1] == "driver imported []"
    trials = _trials(out)
    assert trials["trial_id"].is_unique
    assert (trials["status"] == "completed").sum() == 5  # the baseline once: red_list's, given to output_noise
    assert (trials["strength"] == 0.0).sum() == 1
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna" / "journal.log"))
    )
    for method in ("red_list", "output_noise"):
        study = optuna.load_study(study_name=f"ci.{method}", storage=storage)
        states = [t.state for t in study.trials]
        assert TrialState.RUNNING not in states, "trials left running by the killed driver are reconciled"
        given = [t for t in study.trials if "baseline_of" in t.user_attrs]  # the baseline, trained by another method
        complete = {t.number for t in study.trials if t.state == TrialState.COMPLETE and t not in given}
        stored = trials[trials["method"].astype(str) == method]
        assert set(stored["optuna_trial"].astype(int)) == complete
        trained = (stored["strength"] == 0.0).any()  # the baseline: trained by one method, given to the other
        assert len(given) == (not trained) and len(complete) + len(given) == 3


def test_a_url_out_keeps_results_students_and_journal_there(ray_session, sweep_file, tmp_path, monkeypatch):
    """``file://`` goes through the same code as ``s3://``: pyarrow filesystem writes, students uploaded, the
    journal kept beside the driver and copied to the store; a rerun fetches it back and runs nothing."""
    from mia_kd.sweep.runner import run_sweep
    from mia_kd.sweep.status import sweep_status

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the driver's journal work folder
    out = tmp_path / "bucket" / "sweep"
    url = f"file://{out}"
    path = sweep_file({"methods": {"temperature": {}}, "trials_per_method": 2, "max_concurrent": 2,
                       "save_students": "all"})
    outcome = run_sweep(path, out=url)
    assert outcome.out == url and outcome.completed == 2
    trials = read_table(url, "trials").to_pandas()
    assert len(trials) == 2 and (trials["status"] == "completed").all()
    for trial_id in trials["trial_id"]:
        assert (out / "students" / trial_id / "model.safetensors").is_file()
    assert (out / "sweep.json").is_file() and (out / "tune").is_dir()
    journal = out / "optuna" / "journal.log"
    assert journal.is_file() and journal.read_bytes() == outcome.journal.read_bytes()
    assert sweep_status(url).per_method.set_index("method").at["temperature", "completed"] == 2

    shutil.rmtree(tmp_path / "home")  # another machine: the journal comes back from the store
    again = run_sweep(path, out=url)
    assert again.ran == 0 and again.journal.read_bytes() == journal.read_bytes()


def test_the_baseline_is_given_once_and_counts_in_each_budget(sweep_file, tmp_path):
    """No Ray: ``none`` is the baseline; temperature (whose space holds 0) is given it once, even when its study
    is opened again (a rerun); red_list, narrowed away from its neutral strength, is not."""
    from mia_kd.config import load_sweep
    from mia_kd.objectives import PRIVACY, UTILITY
    from mia_kd.sweep.plan import SweepPlan
    from mia_kd.sweep.study import journal_storage, method_study, stored_baseline
    from mia_kd.validate import check_sweep

    plan = SweepPlan.build(check_sweep(load_sweep(sweep_file({
        "methods": {"temperature": {}, "none": {}, "red_list": {"strength": [0.2, 0.5]}}, "trials_per_method": 3,
    }))))
    assert plan.baseline == "none"
    assert [plan.shares_baseline(m) for m in ("temperature", "none", "red_list")] == [True, False, False]
    assert plan.total == 2 + 1 + 3
    journal = journal_storage(tmp_path / "journal.log")
    row = {"trial_id": "b", "tune_trial_id": "b", "method": "none", "status": "completed", "strength": 0.0,
           "optuna_trial": 0, PRIVACY.column: 0.7, UTILITY.column: 3.0}
    assert stored_baseline(plan, journal, [{**row, "method": "temperature"}]) is None
    baseline = stored_baseline(plan, journal, [row])
    for _ in range(2):
        study = method_study(plan.methods["temperature"], 0, plan.config.sweep, "ci", journal, [], baseline=baseline)
        assert study.remaining == 2 and not study.neutral_first
    given = optuna.load_study(study_name="ci.temperature", storage=journal).trials
    assert [(t.params, t.values, t.user_attrs["trial_id"]) for t in given] == [({"strength": 0.0}, [0.7, 3.0], "b")]
    red = method_study(plan.methods["red_list"], 2, plan.config.sweep, "ci", journal, [])
    assert red.remaining == 3 and not red.neutral_first
    first_path = sweep_file({"methods": {"red_list": {}, "temperature": {}}}, "first.yaml")
    first = SweepPlan.build(check_sweep(load_sweep(first_path)))
    assert first.baseline == "red_list" and first.shares_baseline("temperature")
    study = method_study(first.methods["red_list"], 0, first.config.sweep, "ci2", journal, [], trains_baseline=True)
    assert study.neutral_first and study.remaining == first.methods["red_list"].trials
