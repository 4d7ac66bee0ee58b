"""End to end on the CI-sized config: a real teacher, student, seven attacks, Parquet tables."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mia_kd.attacks import ALL_ATTACKS
from mia_kd.config import validate_config
from mia_kd.errors import ShiftedSplitError
from mia_kd.store import read_table, write_result
from mia_kd.trial import prepare_split, run_trial

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trial(tmp_path_factory, ci_raw_factory):
    root = tmp_path_factory.mktemp("trial")
    config = validate_config(ci_raw_factory(root / "cache"))
    result = run_trial(config)
    write_result(str(root / "results"), result)
    return config, result, root


def test_teacher_memorises_and_every_attack_has_metrics(trial):
    _, result, _ = trial
    metrics = pd.DataFrame(result.metrics)
    assert len(metrics) == 2 * len(ALL_ATTACKS)
    assert set(metrics["attack"]) == set(ALL_ATTACKS)
    assert set(metrics["model_role"]) == {"teacher", "student"}
    teacher_loss = metrics.query("model_role == 'teacher' and attack == 'loss'").iloc[0]
    assert teacher_loss["auc"] > 0.9
    assert teacher_loss["auc_low"] <= teacher_loss["auc"] <= teacher_loss["auc_high"]
    assert metrics[["auc", "tpr", "tnr", "balanced_accuracy"]].notna().all().all()
    assert (metrics["n_members"] == 100).all() and (metrics["n_nonmembers"] == 100).all()
    row = result.trial
    assert row["status"] == "completed" and row["objective_privacy_attack"] in ALL_ATTACKS
    assert row["objective_privacy"] == pytest.approx(metrics.query("model_role == 'student'")["auc"].max())
    assert 0 < row["student_task_loss"] < 10 and not row["split_shifted"]


def test_tables_load_with_pandas_and_duckdb(trial):
    duckdb = pytest.importorskip("duckdb")  # a test dependency: installed by .ci/run
    _, result, root = trial
    results = root / "results"
    trials = pd.read_parquet(results / "trials")
    assert trials["trial_id"].tolist() == [result.trial_id]
    assert (trials["sweep_id"].astype(str) == "ci").all() and (trials["method"].astype(str) == "none").all()
    metrics = duckdb.sql(
        f"select model_role, count(*) n from read_parquet('{results}/metrics/**/*.parquet', hive_partitioning=true)"
        " group by model_role order by model_role"
    ).fetchall()
    assert metrics == [("student", 7), ("teacher", 7)]
    records = duckdb.sql(
        f"select model_role, fold, count(*) n, sum(case when len(token_logprobs) = n_tokens and n_tokens > 0 "
        f"then 1 else 0 end) ok from read_parquet('{results}/records/**/*.parquet', hive_partitioning=true) "
        "group by all order by all"
    ).fetchall()
    expected = [
        ("reference", "calib", 200, 200), ("reference", "eval", 200, 200),
        ("student", "calib", 200, 200), ("student", "eval", 200, 200), ("student", "utility", 100, 100),
        ("teacher", "calib", 200, 200), ("teacher", "eval", 200, 200), ("teacher", "utility", 100, 100),
    ]
    assert records == expected
    table = read_table(str(results), "records").to_pandas()
    scored = table[table["fold"] != "utility"]
    for attack in ALL_ATTACKS:
        assert scored.loc[scored["model_role"] != "reference", f"score_{attack}"].notna().all()


def test_stored_scores_reproduce_the_loss_attack(trial):
    _, result, root = trial
    table = read_table(str(root / "results"), "records").to_pandas()
    teacher = table[(table["model_role"] == "teacher") & (table["fold"] != "utility")]
    means = np.array([np.mean(lp) for lp in teacher["token_logprobs"]])
    np.testing.assert_allclose(teacher["score_loss"].to_numpy(), means, rtol=1e-5)


def test_second_trial_reuses_the_cached_teacher(trial, caplog):
    config, first, _ = trial
    with caplog.at_level(logging.INFO, logger="mia_kd"):
        second = run_trial(config)
    assert second.trial["teacher_cache_hit"] is True and second.trial["reference_cache_hit"] is True
    assert "teacher: reusing the cached model" in caplog.text
    assert second.trial["teacher_key"] == first.trial["teacher_key"]
    # Same teacher, same seeds: the same teacher metrics and the same student.
    t1 = [m["auc"] for m in first.metrics if m["model_role"] == "teacher"]
    t2 = [m["auc"] for m in second.metrics if m["model_role"] == "teacher"]
    assert t1 == pytest.approx(t2, abs=1e-9)
    assert second.trial["student_task_loss"] == pytest.approx(first.trial["student_task_loss"], rel=1e-6)


def _shifted_source(tmp_path) -> dict:
    rng = np.random.default_rng(0)
    words = ["basil", "oven", "simmer", "garlic", "rain", "cloudy", "breeze", "onion", "pepper", "storm"]
    lines = {" ".join(rng.choice(words, size=8)).capitalize() + "." for _ in range(800)}
    path = tmp_path / "other.txt"
    path.write_text("\n".join(sorted(lines)))
    return {"name": "files", "path": str(path)}


def test_blind_check_refuses_a_split_of_two_sources_unless_allowed(tmp_path, ci_raw):
    ci_raw["data"]["nonmember_source"] = _shifted_source(tmp_path)
    with pytest.raises(ShiftedSplitError, match="blind check failed"):
        prepare_split(validate_config(ci_raw))
    ci_raw["data"]["allow_shifted_split"] = True
    split, blind, shifted = prepare_split(validate_config(ci_raw))
    assert shifted and not blind.passed and blind.auc_low > 0.5
    assert len(split.nonmembers) == 200
