"""Hand-computed cases for mia_kd.metrics (docs/architecture.md §5)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mia_kd import metrics
from mia_kd.errors import MiaKdError
from mia_kd.metrics import (
    auc,
    bootstrap_ci,
    evaluate_attack,
    fit_threshold,
    oracle_accuracy,
    rates,
    roc_curve,
    tpr_at_fpr,
)
from mia_kd.metrics._roc import auc_batch


def split(members, nonmembers):
    """scores, labels with members first."""
    return np.array(list(members) + list(nonmembers), dtype=float), np.array(
        [1] * len(members) + [0] * len(nonmembers)
    )


# ------------------------------------------------------------------------------------------------ AUC


def test_auc_hand_case():
    # member 0.35 beats 0.1 but not 0.4; member 0.8 beats both: 3 of 4 pairs.
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auc_tie_across_classes_counts_half():
    # pairs: (0.5, 0.5) tie = 1/2, (0.5, 0.2) = 1, (0.9, 0.5) = 1, (0.9, 0.2) = 1 -> 3.5 / 4.
    assert auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == pytest.approx(0.875)
    assert auc([1.0, 1.0, 1.0], [1, 0, 1]) == pytest.approx(0.5)


def test_auc_perfect_and_inverse():
    assert auc([3.0, 4.0, 1.0, 2.0], [1, 1, 0, 0]) == 1.0
    assert auc([3.0, 4.0, 1.0, 2.0], [0, 0, 1, 1]) == 0.0


def test_auc_accepts_bool_labels():
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == pytest.approx(0.75)


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(4, 60))
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        scores = np.round(rng.normal(size=n), 1)  # many ties
        assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, 0.2], [1, 1], "both members and non-members"),
        ([0.1, 0.2], [0, 0], "both members and non-members"),
        ([0.1, 0.2, 0.3], [0, 1], "differ in length"),
        ([0.1, float("nan")], [0, 1], "finite"),
        ([0.1, float("inf")], [0, 1], "finite"),
        ([0.1, 0.2], [0, 2], "1 \\(member\\) or 0"),
    ],
)
def test_auc_rejects_bad_input(scores, labels, match):
    with pytest.raises(MiaKdError, match=match):
        auc(scores, labels)


def test_every_estimator_rejects_a_single_class():
    s, y = [0.1, 0.2, 0.3], [1, 1, 1]
    for call in (
        lambda: roc_curve(s, y),
        lambda: tpr_at_fpr(s, y, 0.01),
        lambda: fit_threshold(s, y),
        lambda: rates(s, y, 0.2),
        lambda: oracle_accuracy(s, y),
        lambda: bootstrap_ci(auc, s, y, seed=0),
        lambda: evaluate_attack(s, y, [0.1, 0.2], [0, 1], seed=0),
        lambda: evaluate_attack([0.1, 0.2], [0, 1], s, y, seed=0),
    ):
        with pytest.raises(MiaKdError, match="both members and non-members"):
            call()


# ------------------------------------------------------------------------------------------------ ROC


def test_roc_curve_exact_steps_with_ties():
    # thresholds: +inf; 0.9 -> tp 1 fp 0; 0.5 (one member, two non-members tied) -> tp 2 fp 2;
    # 0.2 -> tp 2 fp 3
    fpr, tpr, thresholds = roc_curve([0.9, 0.5, 0.5, 0.2, 0.5], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.5, 0.2])
    np.testing.assert_allclose(fpr, [0, 0, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])


def test_roc_curve_keeps_collinear_points():
    fpr, tpr, thresholds = roc_curve([4.0, 3.0, 2.0, 1.0], [1, 1, 0, 0])
    np.testing.assert_array_equal(thresholds, [np.inf, 4, 3, 2, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1, 1])


def test_tpr_at_fpr_boundary_included_just_above_excluded():
    # non-members 0..199; members 199.5, 197.5, 196.5: FPR reaches exactly 1% at threshold 197.5 (fp 2, tp 2).
    s, y = split([199.5, 197.5, 196.5], np.arange(200.0))
    assert tpr_at_fpr(s, y, 0.01) == pytest.approx(2 / 3)
    assert tpr_at_fpr(s, y, 0.0099) == pytest.approx(1 / 3)
    assert tpr_at_fpr(s, y, 0.005) == pytest.approx(1 / 3)
    assert tpr_at_fpr(s, y, 0.02) == pytest.approx(1.0)


def test_tpr_at_fpr_is_nan_where_the_nonmembers_cannot_resolve_alpha():
    # 200 non-members: one false positive is an FPR step of 0.5 %, so 0.1 % is TPR at zero false positives.
    s, y = split([199.5, 197.5, 196.5], np.arange(200.0))
    assert np.isnan(tpr_at_fpr(s, y, 0.001)) and np.isnan(tpr_at_fpr(s, y, 0.0))
    assert metrics.resolvable(200, 0.005) and not metrics.resolvable(200, 0.0049) and not metrics.resolvable(0, 1.0)
    m = evaluate_attack(s, y, s, y, n_bootstrap=100, seed=0)
    assert np.isnan(m.tpr_at_fpr_0_1pct) and m.fpr_step == 1 / 200 and m.tpr_at_fpr_1pct == pytest.approx(2 / 3)
    small = evaluate_attack([0.9, 0.1], [1, 0], [0.9, 0.8, 0.1], [1, 1, 0], n_bootstrap=100, seed=0)
    assert np.isnan(small.tpr_at_fpr_1pct) and np.isnan(small.tpr_at_fpr_1pct_low)


def test_tpr_at_fpr_batch_equals_the_roc_curve_and_has_a_ci():
    rng = np.random.default_rng(3)
    for _ in range(20):
        s, y = split(np.round(rng.normal(1, 1, 150), 1), np.round(rng.normal(0, 1, 250), 1))  # ties
        fpr, tpr, _ = roc_curve(s, y)
        for alpha in (0.01, 0.02, 0.1, 0.5):
            assert tpr_at_fpr(s, y, alpha) == tpr[fpr <= alpha + 1e-12].max()
    m = evaluate_attack(s, y, s, y, n_bootstrap=300, seed=1)
    assert m.tpr_at_fpr_1pct_low <= m.tpr_at_fpr_1pct <= m.tpr_at_fpr_1pct_high
    assert m.tpr_at_fpr_1pct_low < m.tpr_at_fpr_1pct_high


def test_tpr_at_fpr_is_zero_when_a_nonmember_tops_the_ranking():
    s, y = split([1.0, 2.0], [3.0, 0.0])
    assert np.isnan(tpr_at_fpr(s, y, 0.49))  # two non-members resolve only FPR steps of 50 %
    assert tpr_at_fpr(s, y, 0.5) == 1.0
    s, y = split([1.0, 2.0], [3.0, 2.5, *np.linspace(-2, 0, 98)])  # 1 % FPR allows one false positive
    assert tpr_at_fpr(s, y, 0.01) == 0.0


def test_tpr_at_fpr_rejects_bad_alpha():
    with pytest.raises(MiaKdError, match="alpha"):
        tpr_at_fpr([0.1, 0.2], [0, 1], 1.5)


# ------------------------------------------------------------------------- threshold, rates, oracle


def test_fit_threshold_and_rates_hand_case():
    # members 0.9 0.6 0.4, non-members 0.7 0.3 0.2 0.1. Balanced accuracy per threshold:
    # inf .5 | .9 (1/3+1)/2 | .7 (1/3+3/4)/2 | .6 (2/3+3/4)/2 | .4 (1+3/4)/2 = .875 | .3 .75 | ...
    s, y = split([0.9, 0.6, 0.4], [0.7, 0.3, 0.2, 0.1])
    threshold = fit_threshold(s, y)
    assert threshold == 0.4
    tpr, tnr = rates(s, y, threshold)
    assert (tpr, tnr) == (1.0, 0.75)
    assert (tpr + tnr) / 2 == 0.875


def test_fit_threshold_ties_go_to_the_middle_of_the_plateau():
    # members 9 6 3, non-members 8 5 2: thresholds 9, 6 and 3 all reach balanced accuracy 2/3; 6 is the middle.
    s, y = split([9.0, 6.0, 3.0], [8.0, 5.0, 2.0])
    assert fit_threshold(s, y) == 6.0
    # two tied (3 and 1, midpoint 2 equidistant): the larger, which flags fewer records
    s, y = split([3.0, 1.0], [2.0, 0.0])
    assert fit_threshold(s, y) == 3.0
    # the study's oracle keeps its own convention (the smallest)
    assert oracle_accuracy(*split([9.0, 6.0, 3.0], [8.0, 5.0, 2.0]), min_class_fraction=0.0)[1] == 3.0


def test_fit_threshold_ties_do_not_bias_tpr_on_symmetric_scores():
    # No signal, symmetric scores with ties (11 levels), balanced 300/300 folds: by symmetry the calib
    # threshold should flag half the eval records on average. The smallest-of-ties rule flagged more
    # (mean eval TPR 0.53, about 5 standard errors above 0.5).
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300, dtype=bool), np.zeros(300, dtype=bool)]
    tprs = []
    for _ in range(1500):
        calib, held_out = (np.round(rng.normal(size=(2, 600)) * 11 / 4) / 11)
        tprs.append(rates(held_out, labels, fit_threshold(calib, labels))[0])
    standard_error = np.std(tprs) / np.sqrt(len(tprs))
    assert abs(np.mean(tprs) - 0.5) < 3 * standard_error


def test_fit_threshold_uninformative_scores_is_finite():
    assert fit_threshold([1.0, 1.0, 1.0, 1.0], [1, 0, 1, 0]) == 1.0


def test_rates_is_inclusive_at_the_threshold():
    s, y = split([0.5, 0.4], [0.5, 0.1])
    assert rates(s, y, 0.5) == (0.5, 0.5)
    assert rates(s, y, np.inf) == (0.0, 1.0)
    with pytest.raises(MiaKdError, match="threshold"):
        rates(s, y, float("nan"))


def test_oracle_twenty_percent_rule_bites():
    # One member on top of nine non-members: threshold 10 is perfect but predicts 1 of 10 records member,
    # below 20 %; the oracle must take threshold 9 (2 predicted members): TPR 1, TNR 8/9.
    s, y = split([10.0], np.arange(9.0, 0.0, -1.0))
    assert fit_threshold(s, y) == 10.0
    accuracy, threshold = oracle_accuracy(s, y)
    assert threshold == 9.0
    assert accuracy == pytest.approx((1 + 8 / 9) / 2)
    assert oracle_accuracy(s, y, min_class_fraction=0.1) == (1.0, 10.0)


def test_oracle_upper_bound_of_the_rule():
    # predicted non-members must also be >= 20 %: with 5 records, at most 4 predicted members.
    s, y = split([5.0, 4.0, 3.0, 2.0], [1.0])
    # unconstrained best: threshold 2 (all members caught, the non-member rejected) predicts 4 of 5: allowed
    assert oracle_accuracy(s, y) == (1.0, 2.0)
    # with 30 %: at most 3 predicted members -> threshold 3, TPR 3/4, TNR 1
    assert oracle_accuracy(s, y, min_class_fraction=0.3) == (pytest.approx(0.875), 3.0)


def test_oracle_nan_when_no_threshold_qualifies():
    accuracy, threshold = oracle_accuracy([1.0, 1.0, 1.0, 1.0], [1, 0, 1, 0])
    assert math.isnan(accuracy) and math.isnan(threshold)


def test_oracle_rejects_bad_fraction():
    with pytest.raises(MiaKdError, match="min_class_fraction"):
        oracle_accuracy([0.1, 0.2], [0, 1], min_class_fraction=0.6)


# ------------------------------------------------------------------------------------------ bootstrap


def random_case(n=400, shift=0.5, seed=1, decimals=None):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, dtype=int), np.zeros(n - n // 2, dtype=int)]
    scores = rng.normal(size=n) + shift * labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    return scores, labels


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    s, y = random_case()
    low, high = bootstrap_ci(auc, s, y, n_bootstrap=500, seed=7)
    assert low < auc(s, y) < high
    assert 0.5 < low and high < 1.0
    assert bootstrap_ci(auc, s, y, n_bootstrap=500, seed=7) == (low, high)
    assert bootstrap_ci(auc, s, y, n_bootstrap=500, seed=8) != (low, high)


def test_bootstrap_level_widens_interval():
    s, y = random_case()
    low90, high90 = bootstrap_ci(auc, s, y, level=0.9, seed=0)
    low99, high99 = bootstrap_ci(auc, s, y, level=0.99, seed=0)
    assert low99 < low90 and high90 < high99


def test_bootstrap_vectorised_auc_equals_plain_loop():
    s, y = random_case(n=101, decimals=1)  # ties, and unequal classes
    fast = bootstrap_ci(auc, s, y, n_bootstrap=300, seed=4)
    slow = bootstrap_ci(lambda a, b: auc(a, b), s, y, n_bootstrap=300, seed=4)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_auc_batch_matches_sklearn_row_by_row():
    rng = np.random.default_rng(5)
    members = np.round(rng.normal(0.3, 1, (50, 13)), 1)
    nonmembers = np.round(rng.normal(0, 1, (50, 29)), 1)
    got = auc_batch(members, nonmembers)
    labels = np.r_[np.ones(13), np.zeros(29)]
    want = [roc_auc_score(labels, np.r_[m, o]) for m, o in zip(members, nonmembers)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_bootstrap_is_stratified():
    s, y = random_case(n=12)
    seen = []

    def count_members(scores, labels):
        seen.append((len(scores), int(np.sum(labels))))
        return float(np.mean(scores))

    bootstrap_ci(count_members, s, y, n_bootstrap=50, seed=0)
    assert seen == [(12, 6)] * 50


def test_bootstrap_auc_is_fast():
    s, y = random_case(n=400)
    bootstrap_ci(auc, s, y, seed=0)  # warm-up
    best = min(_timed(lambda: bootstrap_ci(auc, s, y, n_bootstrap=1000, seed=0)) for _ in range(3))
    assert best < 0.2


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_bootstrap_rejects_bad_arguments():
    s, y = random_case(n=10)
    with pytest.raises(MiaKdError, match="n_bootstrap"):
        bootstrap_ci(auc, s, y, n_bootstrap=0, seed=0)
    with pytest.raises(MiaKdError, match="level"):
        bootstrap_ci(auc, s, y, level=1.0, seed=0)


def test_bootstrap_values_is_the_stratified_bootstrap_and_takes_a_seed_or_a_generator():
    s, y = random_case(n=30)
    members, nonmembers = s[y == 1], s[y == 0]

    def mean_gap(m, o):
        return members[m].mean(axis=1) - nonmembers[o].mean(axis=1)

    by_seed = metrics.bootstrap_values(mean_gap, (len(members), len(nonmembers)), n_bootstrap=200, rng=3)
    by_generator = metrics.bootstrap_values(
        mean_gap, (len(members), len(nonmembers)), n_bootstrap=200, rng=np.random.default_rng(3)
    )
    np.testing.assert_array_equal(by_seed, by_generator)
    # bootstrap_ci is this bootstrap with a percentile interval on top.
    low, high = bootstrap_ci(lambda a, b: float(a[b == 1].mean() - a[b == 0].mean()), s, y, n_bootstrap=200, seed=3)
    assert (low, high) == pytest.approx(tuple(metrics.percentile_interval(by_seed, 0.95)), rel=1e-12)  # sums' order


def test_bootstrap_values_do_not_depend_on_the_chunk_size(monkeypatch):
    import mia_kd.metrics._bootstrap as bootstrap

    def draws(rows):
        return rows.astype(np.float64)  # the drawn indices themselves: (b, n)

    whole = metrics.bootstrap_values(draws, (7,), n_bootstrap=50, rng=1)
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 20)  # chunks of 2 resamples
    assert whole.shape == (50, 7)
    np.testing.assert_array_equal(metrics.bootstrap_values(draws, (7,), n_bootstrap=50, rng=1), whole)


# ------------------------------------------------------------------------------------------- mixture


def test_mixture_logprobs_hand_case():
    half = np.log([0.5, 0.25])
    quarter = np.log([0.25, 0.25])
    got = metrics.mixture_logprobs([half, quarter], [0.5, 0.5])
    np.testing.assert_allclose(got, np.log([0.375, 0.25]), atol=1e-15)
    np.testing.assert_array_equal(metrics.mixture_logprobs([half], [1.0]), half)  # a mixture of one is itself


def test_mixture_weights_must_be_positive_and_sum_to_one():
    np.testing.assert_array_equal(metrics.check_weights([0.25, 0.75], 2), [0.25, 0.75])
    for bad in ([0.5, 0.6], [1.0, 0.0], [1.0]):
        with pytest.raises(ValueError, match="weights"):
            metrics.check_weights(bad, 2)


# ---------------------------------------------------------------------------------- evaluate_attack


def test_evaluate_attack_uses_the_calib_threshold():
    # calib: members .6 .7, non-members .4 .3 -> threshold .6 (balanced accuracy 1 on calib).
    calib_s, calib_y = split([0.6, 0.7], [0.4, 0.3])
    # eval alone would pick .55 (balanced accuracy 1); at .6 the member .55 is missed: TPR 3/4, TNR 1.
    eval_s, eval_y = split([0.55, 0.65, 0.8, 0.9], [0.1, 0.2, 0.3, 0.5])
    assert fit_threshold(eval_s, eval_y) == 0.55
    m = evaluate_attack(calib_s, calib_y, eval_s, eval_y, n_bootstrap=200, seed=1)
    assert m.threshold == 0.6
    assert (m.tpr, m.tnr) == (0.75, 1.0)
    assert m.balanced_accuracy == 0.875
    assert m.oracle_accuracy == 1.0 and m.oracle_threshold == 0.55
    assert m.auc == 1.0
    assert (m.n_members, m.n_nonmembers) == (4, 4)
    assert np.isnan(m.tpr_at_fpr_1pct) and np.isnan(m.tpr_at_fpr_0_1pct)  # 4 non-members: FPR steps of 25 %
    assert (m.calib_auc, m.calib_balanced_accuracy) == (1.0, 1.0) and np.isnan(m.calib_tpr_at_fpr_1pct)
    assert m.tpr_low <= m.tpr <= m.tpr_high
    assert m.tnr_low <= m.tnr <= m.tnr_high
    assert m.balanced_accuracy_low <= m.balanced_accuracy <= m.balanced_accuracy_high


def test_evaluate_attack_intervals_match_bootstrap_ci():
    calib_s, calib_y = random_case(n=200, seed=2)
    eval_s, eval_y = random_case(n=300, seed=3)
    m = evaluate_attack(calib_s, calib_y, eval_s, eval_y, n_bootstrap=400, seed=9)
    threshold = fit_threshold(calib_s, calib_y)
    assert m.threshold == threshold
    expected_auc = bootstrap_ci(auc, eval_s, eval_y, n_bootstrap=400, seed=9)
    assert (m.auc_low, m.auc_high) == pytest.approx(expected_auc)
    expected_tpr = bootstrap_ci(
        lambda s, y: rates(s, y, threshold)[0], eval_s, eval_y, n_bootstrap=400, seed=9
    )
    expected_ba = bootstrap_ci(
        lambda s, y: sum(rates(s, y, threshold)) / 2, eval_s, eval_y, n_bootstrap=400, seed=9
    )
    assert (m.tpr_low, m.tpr_high) == pytest.approx(expected_tpr)
    assert (m.balanced_accuracy_low, m.balanced_accuracy_high) == pytest.approx(expected_ba)
    assert m.auc_low < m.auc < m.auc_high
    assert m.tpr_at_fpr_1pct == tpr_at_fpr(eval_s, eval_y, 0.01)
    assert m.oracle_accuracy == oracle_accuracy(eval_s, eval_y)[0]


def test_attack_metrics_to_dict():
    s, y = random_case(n=40)
    d = evaluate_attack(s, y, s, y, n_bootstrap=20, seed=0).to_dict()
    assert list(d) == [
        "auc", "auc_low", "auc_high", "tpr_at_fpr_1pct", "tpr_at_fpr_1pct_low", "tpr_at_fpr_1pct_high",
        "tpr_at_fpr_0_1pct", "fpr_step", "balanced_accuracy", "balanced_accuracy_low", "balanced_accuracy_high",
        "tpr", "tpr_low", "tpr_high", "tnr", "tnr_low", "tnr_high",
        "threshold", "oracle_accuracy", "oracle_threshold", "n_members", "n_nonmembers",
        "calib_auc", "calib_balanced_accuracy", "calib_tpr_at_fpr_1pct",
    ]  # fmt: skip
    assert d["n_members"] == 20 and isinstance(d["n_members"], int)
    assert all(isinstance(d[k], float) for k in d if not k.startswith("n_"))


# ---- leakage transfer ratio (student TPR@1% FPR / teacher's, paired bootstrap over eval records)


def _brute_force_ratio(t, s, y, n_bootstrap, seed):
    """Each replicate drawn as bootstrap_values draws it (members then non-members, one chunk), both models'
    TPR@1% FPR from the exact ROC on that same resample, replicates with teacher TPR 0 dropped."""
    rng = np.random.default_rng(seed)
    members, others = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    mi = rng.integers(0, len(members), (n_bootstrap, len(members)))
    oi = rng.integers(0, len(others), (n_bootstrap, len(others)))
    ratios, skipped = [], 0
    labels = np.r_[np.ones(len(members)), np.zeros(len(others))]
    for a, b in zip(mi, oi):
        idx = np.r_[members[a], others[b]]
        teacher, student = tpr_at_fpr(t[idx], labels, 0.01), tpr_at_fpr(s[idx], labels, 0.01)
        if teacher == 0:
            skipped += 1
            continue
        ratios.append(student / teacher)
    return np.quantile(ratios, [0.025, 0.975]), skipped


def test_leakage_transfer_ratio_against_brute_force():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(60, int), np.zeros(200, int)]
    t = rng.normal(size=260) + 1.5 * y  # the teacher leaks more than the student
    s = 0.6 * t + rng.normal(size=260) * 0.8
    got = metrics.leakage_transfer_ratio(t, s, y, n_bootstrap=300, seed=11)
    assert got.teacher_tpr == tpr_at_fpr(t, y, 0.01) > 0 and got.student_tpr == tpr_at_fpr(s, y, 0.01)
    assert got.ratio == pytest.approx(got.student_tpr / got.teacher_tpr)
    (low, high), skipped = _brute_force_ratio(t, s, y, 300, 11)
    assert (got.low, got.high, got.n_skipped) == (pytest.approx(low), pytest.approx(high), skipped)
    assert got.low <= got.ratio <= got.high and got.low < got.high
    again = metrics.leakage_transfer_ratio(t, s, y, n_bootstrap=300, seed=11)
    assert again == got and metrics.leakage_transfer_ratio(t, s, y, n_bootstrap=300, seed=12).low != got.low


def test_leakage_transfer_ratio_skips_replicates_where_the_teacher_finds_nothing():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(40, int), np.zeros(200, int)]
    t = rng.normal(size=240)
    t[np.argmax(t * y)] += 10  # one member far above every non-member: teacher TPR is 1/40, 0 without it
    s = rng.normal(size=240) + 2 * y
    got = metrics.leakage_transfer_ratio(t, s, y, n_bootstrap=400, seed=1)
    (low, high), skipped = _brute_force_ratio(t, s, y, 400, 1)
    assert 0 < got.n_skipped == skipped < 400  # ~ (39/40)^40 of the resamples miss that member
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    assert np.isfinite(got.ratio) and got.ratio == got.student_tpr / got.teacher_tpr


def test_leakage_transfer_ratio_nan_where_undefined():
    y = np.r_[np.ones(20, int), np.zeros(200, int)]
    t = np.r_[np.zeros(20), np.ones(200)]  # every non-member above every member: teacher TPR 0 everywhere
    got = metrics.leakage_transfer_ratio(t, -t, y, n_bootstrap=100, seed=0)
    assert got.teacher_tpr == 0 and math.isnan(got.ratio) and math.isnan(got.low) and got.n_skipped == 100
    small = metrics.leakage_transfer_ratio(np.arange(60.0), np.arange(60.0), np.r_[np.ones(10), np.zeros(50)],
                                           n_bootstrap=100, seed=0)  # 50 non-members cannot resolve 1% FPR
    assert math.isnan(small.ratio) and math.isnan(small.high)


def test_strongest_attack_first_highest_and_ignores_nan():
    assert metrics.strongest_attack({"loss": 0.2, "zlib": 0.5, "min_k": 0.5}) == "zlib"
    assert metrics.strongest_attack({"loss": float("nan"), "zlib": 0.1}) == "zlib"
    assert metrics.strongest_attack({"loss": 0.0, "zlib": 0.0}) == "loss"
    assert metrics.strongest_attack({"loss": float("nan")}) is None
