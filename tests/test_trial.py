"""End to end on the CI-sized config: a real teacher, student, seven attacks, Parquet tables."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mia_kd.config import TrialConfig, validate_config
from mia_kd.errors import ShiftedSplitError
from mia_kd.store import read_table
from mia_kd.attacks.zlib import zlib_bytes
from mia_kd.data import prepare_split
from mia_kd.models.tokenizer import encode
from mia_kd.trial import prepare, run_trial
from tests._tolerance import float32_atol, forward_ops

pytestmark = pytest.mark.slow

ATTACKS = [spec.name for spec in TrialConfig().attacks]  # the CI config runs the default attacks


@pytest.fixture(scope="module")
def trial(tmp_path_factory, ci_raw_factory):
    root = tmp_path_factory.mktemp("trial")
    config = validate_config(ci_raw_factory(root / "cache"))
    result = run_trial(config)
    result.write(str(root / "results"))
    return config, result, root


def test_teacher_memorises_and_every_attack_has_metrics(trial):
    _, result, _ = trial
    metrics = pd.DataFrame(result.metrics)
    assert len(metrics) == 2 * len(ATTACKS)
    assert set(metrics["attack"]) == set(ATTACKS)
    assert set(metrics["model_role"]) == {"teacher", "student"}
    teacher_loss = metrics.query("model_role == 'teacher' and attack == 'loss'").iloc[0]
    assert teacher_loss["auc"] > 0.9
    assert teacher_loss["auc_low"] <= teacher_loss["auc"] <= teacher_loss["auc_high"]
    assert metrics[["auc", "tpr", "tnr", "balanced_accuracy"]].notna().all().all()
    assert (metrics["n_members"] == 100).all() and (metrics["n_nonmembers"] == 100).all()
    row = result.trial
    assert row["status"] == "completed" and row["objective_privacy_attack"] in ATTACKS
    assert 0 < row["student_task_loss"] < 10 and not row["split_shifted"]
    assert set(metrics["orientation"]) <= {1, -1}


def test_selection_objective_is_chosen_on_calib_and_reported_on_eval(trial):
    _, result, _ = trial
    row = result.trial
    student = pd.DataFrame(result.metrics).query("model_role == 'student'").set_index("attack")
    chosen = student["calib_auc"].idxmax()
    assert row["selection_privacy_attack"] == row["objective_privacy_attack"] == chosen
    assert row["selection_privacy"] == student.at[chosen, "calib_auc"]
    # the reported number is the eval AUC of the attack chosen on calib, with its CI
    assert row["objective_privacy"] == student.at[chosen, "auc"]
    assert (row["objective_privacy_low"], row["objective_privacy_high"]) == (
        student.at[chosen, "auc_low"], student.at[chosen, "auc_high"])


def test_zlib_and_lowercase_describe_the_scored_span(ci_raw):
    # tokenizer.max_length 24 cuts most records: zlib divides by the compressed length of the kept tokens'
    # text, and the lowercase pass scores the lowercased kept span (not the lowercased whole text).
    ci_raw["tokenizer"]["max_length"] = 24
    ci_raw["teacher"]["train"]["epochs"] = 1
    ci_raw["attacks"] = ["loss", "zlib", "lowercase"]
    config = validate_config(ci_raw)
    prepared = prepare(config)
    tokenizer, inputs = prepared.tokenizer, prepared.teacher_scored.attack
    zlib_scores = prepared.teacher_attacked.scores["zlib"]
    n_cut = 0
    for i, record in enumerate(prepared.split.attack_records):
        row = encode(tokenizer, [record.text], max_length=24)[0][0]
        full = encode(tokenizer, [record.text], max_length=None)[0][0]
        span = tokenizer.decode(row[1:]) if len(full) > 24 else record.text
        n_cut += len(full) > 24
        assert inputs.texts[i] == span
        mean = np.mean(inputs.target.logprobs[i].astype(np.float64))
        assert zlib_scores[i] * prepared.teacher_attacked.rows[1]["orientation"] == pytest.approx(
            mean / zlib_bytes(span), rel=1e-12)
        assert len(inputs.lowercase.logprobs[i]) == len(encode(tokenizer, [span.lower()], max_length=None)[0][0]) - 1
    assert n_cut >= 50, "max_length 24 should cut many records"


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
    for attack in ATTACKS:
        assert scored.loc[scored["model_role"] != "reference", f"score_{attack}"].notna().all()


def test_stored_scores_reproduce_the_loss_attack(trial):
    _, result, root = trial
    table = read_table(str(root / "results"), "records").to_pandas()
    teacher = table[(table["model_role"] == "teacher") & (table["fold"] != "utility")]
    means = np.array([np.mean(lp) for lp in teacher["token_logprobs"]])
    # score_loss sums in float64, np.mean of float32 in float32: one rounding per token at most.
    atol = float32_atol(*teacher["token_logprobs"], ops=max(map(len, teacher["token_logprobs"])))
    np.testing.assert_allclose(teacher["score_loss"].to_numpy(), means, atol=atol, rtol=0)


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
    ops = forward_ops(first.student.config, config.tokenizer.max_length)
    loss_atol = float32_atol(first.trial["student_task_loss"], ops=ops)
    assert second.trial["student_task_loss"] == pytest.approx(first.trial["student_task_loss"], abs=loss_atol)


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


def test_the_vulnerable_subset_cache_is_keyed_by_what_it_depends_on(tmp_path):
    # Two settings of the same attack (min_k at k 0.05 and 1.0) score the members differently; the old key
    # (attack and token rule only) reused the first subset for the second.
    from mia_kd.data import make_records
    from mia_kd.privacy import compute_vulnerability, vulnerable_subset

    rng = np.random.default_rng(0)
    members = make_records([f"member record {i}" for i in range(20)], "test")
    member_ids = [r.record_id for r in members]
    rows = [[0, 1 + i % 7, 2 + i % 5] for i in range(20)]

    def subset(scores):
        return vulnerable_subset(
            tmp_path, attack="min_k", tokens_rule="all", member_ids=member_ids, member_scores=scores[:20],
            threshold=float(np.median(scores[:20])), member_rows=rows, vocab_size=16,
        )

    first, second = rng.normal(size=40), rng.normal(size=40)
    a, b = subset(first), subset(second)
    expected = compute_vulnerability(
        attack="min_k", member_ids=member_ids, member_scores=second[:20], threshold=float(np.median(second[:20])),
        member_rows=rows, vocab_size=16, tokens_rule="all",
    )
    assert b.member_ids == expected.member_ids and b.n_vulnerable == expected.n_vulnerable
    assert a.member_ids != b.member_ids
    assert len(list(tmp_path.glob("vulnerability-min_k-all-*.json"))) == 2
    # the same inputs hit the cache
    assert subset(second).member_ids == b.member_ids


def test_n_windowed_counts_every_pass_including_recall_prefixed_rows():
    # A row that fits the context on its own but not behind ReCaLL's prefix is windowed in the prefixed pass.
    from types import SimpleNamespace

    from mia_kd.models.scoring import ScoringPlan

    model = SimpleNamespace(config=SimpleNamespace(n_positions=10))
    rows = [[0] * 8, [0] * 12]  # the second is windowed in the plain pass
    scoring = ScoringPlan(texts=["a", "b"], rows=rows, utility_texts=["u"], utility_rows=[[0] * 5],
                          lowercase_rows=[[0] * 11, [0] * 9], prefix=[0] * 4, moments=False, pad_id=0, batch_size=1,
                          device=None)
    # plain: 1 (12); lowercase: 1 (11); prefixed (4 + row[1:]): 11 and 15 -> 2; utility: 0
    assert scoring.n_windowed(model) == 4


def test_disjoint_transfer_distils_on_the_pool_and_attacks_the_teacher_members(tmp_path, ci_raw, monkeypatch):
    import mia_kd.trial as trial_module
    from mia_kd.errors import ConfigError
    from mia_kd.trial import run_student

    ci_raw["data"]["transfer"] = 150
    ci_raw["distill"].update(transfer="disjoint", epochs=1)
    ci_raw["teacher"]["train"]["epochs"] = 1
    ci_raw["data"].update(members=100, public=200)
    ci_raw["attacks"] = ["loss", "zlib"]
    config = validate_config(ci_raw)
    seen = {}

    def spy(student, teacher, rows, cfg, **kwargs):
        seen.update(rows=list(rows), record_ids=list(kwargs["record_ids"]))
        return real(student, teacher, rows, cfg, **kwargs)

    real = trial_module.distill
    monkeypatch.setattr(trial_module, "distill", spy)
    prepared = prepare(config)
    result = run_student(prepared, config)
    split = prepared.split
    pool_ids = [r.record_id for r in split.transfer]
    assert seen["record_ids"] == pool_ids and len(seen["rows"]) == 150
    assert not set(pool_ids) & {r.record_id for r in split.members + split.nonmembers + split.utility + split.public}
    # The attacked records and their labels are those of a split without the pool: the teacher's membership.
    plain, _, _ = prepare_split(validate_config({**ci_raw, "data": {**ci_raw["data"], "transfer": 0},
                                                 "distill": {**ci_raw["distill"], "transfer": "members"}}))
    assert split.without_transfer() == plain
    row = result.trial
    assert (row["distill_transfer"], row["n_transfer"], row["n_transfer_pool"]) == ("disjoint", 150, 150)
    assert row["n_members"] == 100 and row["leakage_transfer_attack"] in ("loss", "zlib")
    metrics = pd.DataFrame(result.metrics).set_index(["model_role", "attack"])
    attack = row["leakage_transfer_attack"]
    teacher_tpr, student_tpr = (metrics.at[(role, attack), "tpr_at_fpr_1pct"] for role in ("teacher", "student"))
    if teacher_tpr > 0:  # the point estimate is the ratio of the metrics table's own numbers
        assert row["leakage_transfer_ratio"] == pytest.approx(student_tpr / teacher_tpr)
        assert row["leakage_transfer_ratio_low"] <= row["leakage_transfer_ratio_high"]
    else:
        assert np.isnan(row["leakage_transfer_ratio"])
    # The same prepared state serves a members trial: the student is then distilled on the members.
    members = run_student(prepared, validate_config({**ci_raw, "distill": {**ci_raw["distill"], "transfer": "members"}}))
    assert seen["record_ids"] == [r.record_id for r in split.members] and members.trial["distill_transfer"] == "members"
    assert members.trial["config_hash"] != row["config_hash"] and members.trial["prepared_key"] == row["prepared_key"]
    # A method that leaves vulnerable members out of the transfer set has none to leave out of the pool.
    with pytest.raises(ConfigError, match="vulnerable_filter selects members"):
        run_student(prepared, config.for_trial(method="vulnerable_filter", strength=0.5))
