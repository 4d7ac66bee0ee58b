"""Ensembles from stored log-probs: exact for one member, calib-only selection, the constraint holds."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mia_kd.analysis import ensemble as ens
from mia_kd.analysis.results import load_results
from mia_kd.errors import UserError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(trial_store):
    return load_results(str(trial_store[0]))


@pytest.fixture(scope="module")
def pool(results):
    return ens.build_pool(results)


def test_one_member_ensemble_reproduces_its_trial_exactly(results, pool):
    assert pool.unavailable == ["min_k_pp"]  # needs the full distribution's moments
    stored = results.metric("student").set_index(["trial_id", "attack"])
    for trial in pool.candidates:
        evaluation = ens.evaluate(pool, [trial], np.ones(1))
        for attack, row in evaluation["attack_metrics"].items():
            for stat in ("auc", "auc_low", "auc_high", "threshold", "tpr", "tnr", "balanced_accuracy"):
                assert row[stat] == stored.at[(trial, attack), stat], (trial, attack, stat)
        # The task loss is reported on the utility records' report half; with the selection half it makes up
        # the trial's own task loss on all of them.
        assert evaluation["objective_utility"] == pool.utility_report.task_loss([trial], np.ones(1))
        halves = [pool.utility.stats("target", [trial], np.ones(1)), pool.utility_report.stats("target", [trial], np.ones(1))]
        tokens = np.concatenate([lp for half in halves for lp in half.logprobs]).astype(np.float64)
        utility = results.completed.set_index("trial_id").at[trial, "objective_utility"]
        assert -tokens.sum() / len(tokens) == pytest.approx(utility, rel=1e-12)


def test_utility_halves_are_disjoint_fixed_and_cover_the_utility_records(results):
    ids = results.records(roles=("student",), columns=["record_id", "fold"]).query("fold == 'utility'")["record_id"]
    select, report = ens.utility_halves(ids.unique())
    assert not set(select) & set(report) and set(select) | set(report) == set(ids)
    assert abs(len(select) - len(report)) <= 1
    assert ens.utility_halves(list(reversed(ids.unique()))) == (select, report)


def test_mixture_of_a_student_with_itself_is_that_student(pool):
    trial = pool.candidates[0]
    one = ens.evaluate(pool, [trial], np.ones(1))
    stats = pool.calib.stats("target", [trial, trial], np.array([0.5, 0.5]))
    same = pool.calib.stats("target", [trial], np.ones(1))
    for a, b in zip(stats.logprobs, same.logprobs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    assert one["objective_utility"] == pytest.approx(pool.utility_report.task_loss([trial, trial], np.array([0.5, 0.5])))


@pytest.mark.parametrize("with_replacement", [True, False])
def test_selection_respects_constraint_size_and_improves_on_calib(pool, with_replacement):
    limit, _ = ens.resolve_limit(pool, max_task_loss=None, max_utility_drop=0.5)
    choice = ens.select(pool, max_task_loss=limit, max_size=3, with_replacement=with_replacement)
    assert 1 <= len(choice.steps) <= 3 and sum(choice.weights) == pytest.approx(1.0)
    assert pool.utility.task_loss(choice.members, np.array(choice.weights)) <= limit
    if not with_replacement:
        assert len(set(choice.members)) == len(choice.members) == len(choice.steps)
    singles = [ens.calib_objective(pool, [c], np.ones(1)) for c in pool.candidates
               if pool.utility.task_loss([c], np.ones(1)) <= limit]
    assert choice.steps[0]["calib_privacy"] == min(singles)
    assert choice.selection_privacy <= min(singles)
    values = [s["calib_privacy"] for s in choice.steps]
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)  # each step improves


def test_selection_never_reads_the_eval_fold(trial_store, results, tmp_path):
    limit, _ = ens.resolve_limit(ens.build_pool(results), max_task_loss=None, max_utility_drop=0.5)
    before = ens.select(ens.build_pool(results), max_task_loss=limit, max_size=3)

    poisoned = tmp_path / "poisoned"
    shutil.copytree(trial_store[0], poisoned, ignore=shutil.ignore_patterns("students"))
    rng = np.random.default_rng(0)
    _, report_ids = ens.utility_halves(
        results.records(roles=("student",), columns=["record_id", "fold"]).query("fold == 'utility'")["record_id"].unique())
    for path in (poisoned / "records").rglob("*.parquet"):
        table = pq.read_table(path)
        report_half = pc.is_in(table["record_id"], value_set=pa.array(report_ids)).to_numpy(zero_copy_only=False)
        # eval records, and the utility records whose task loss is reported (not the half the limit reads)
        on_eval = pc.equal(table["fold"], "eval").to_numpy(zero_copy_only=False) | report_half
        for column in ("token_logprobs", "lowercase_token_logprobs", "prefixed_token_logprobs"):
            values = table[column].to_pylist()
            values = [(-rng.random(len(v)) * 20).tolist() if v is not None and bad else v
                      for v, bad in zip(values, on_eval, strict=True)]
            table = table.set_column(table.schema.get_field_index(column), column,
                                     pa.array(values, type=table.schema.field(column).type))
        labels = table["label"].to_numpy(zero_copy_only=False)
        flipped = [None if lab is None or lab != lab else (1 - int(lab) if bad else int(lab))
                   for lab, bad in zip(labels, on_eval, strict=True)]
        table = table.set_column(table.schema.get_field_index("label"), "label",
                                 pa.array(flipped, type=table.schema.field("label").type))
        pq.write_table(table, path)
    bad_results = load_results(str(poisoned))
    bad_pool = ens.build_pool(bad_results)
    after = ens.select(bad_pool, max_task_loss=limit, max_size=3)
    assert (after.members, after.weights, after.selection_privacy) == (before.members, before.weights, before.selection_privacy)
    # The poison did reach what is reported from eval.
    good = ens.evaluate(ens.build_pool(results), before.members, np.array(before.weights))
    bad = ens.evaluate(bad_pool, after.members, np.array(after.weights))
    assert bad["objective_privacy"] != good["objective_privacy"]
    assert bad["objective_utility"] != good["objective_utility"]


def test_impossible_constraint_is_a_user_error(pool):
    with pytest.raises(UserError, match="no student meets the task-loss limit"):
        ens.select(pool, max_task_loss=0.01)
    with pytest.raises(UserError, match="not both"):
        ens.resolve_limit(pool, max_task_loss=5.0, max_utility_drop=0.1)


def test_majority_vote_of_one_member_is_its_thresholded_prediction(results):
    trial = results.completed["trial_id"].iloc[0]
    vote = ens.majority_vote(results, [trial], [1.0], n_bootstrap=300, seed=4)
    stored = results.metric("student").set_index(["trial_id", "attack"])
    for attack, row in vote.items():
        assert row["tpr"] == stored.at[(trial, attack), "tpr"]
        assert row["tnr"] == stored.at[(trial, attack), "tnr"]
    # the configured bootstrap settings reach the vote's CIs (they used to be 200 draws with seed 0)
    other = ens.majority_vote(results, [trial], [1.0], n_bootstrap=300, seed=5)
    assert any(other[a]["balanced_accuracy_low"] != vote[a]["balanced_accuracy_low"] for a in vote)
