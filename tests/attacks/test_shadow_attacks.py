"""The shadow-model attacks (``lira``, ``rmia``) against hand-computed values and brute-force loops, their
known answer on records of different difficulty, and settings chosen on calib only. What every attack
promises is tested on them too in ``test_contract.py``."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import norm

from mia_kd import metrics
from mia_kd.attacks import (
    AttackInputs,
    Passes,
    TokenStats,
    build_attack,
    fit_attack,
    required_passes,
    run_attacks,
    subset,
)
from mia_kd.attacks._base import ShadowStats
from mia_kd.attacks.rmia import population_indices
from mia_kd.errors import ConfigError, MiaKdError


def inputs_of(s, scores, inside) -> AttackInputs:
    """Records whose target statistic is ``s`` (one predicted token each), with these shadows."""
    s = np.asarray(s, dtype=np.float64)
    return AttackInputs(
        texts=["t"] * len(s), target=TokenStats(logprobs=tuple(np.array([v]) for v in s)),
        shadows=ShadowStats(scores=np.asarray(scores, dtype=np.float64), inside=np.asarray(inside, dtype=bool)),
    )


def random_inputs(seed=0, n=7, k=10) -> AttackInputs:
    """``n`` records, ``k`` shadows; every record has at least 2 IN and 2 OUT shadows."""
    rng = np.random.default_rng(seed)
    inside = rng.random((k, n)) < 0.5
    inside[:2], inside[2:4] = True, False
    scores = rng.normal(-3.0, 0.4, (k, n)) + 0.8 * inside + rng.normal(0.0, 0.5, n)
    return inputs_of(rng.normal(-2.6, 0.6, n), scores, inside)


# ----------------------------------------------------------------------------------------------- lira


def test_lira_by_hand():
    # IN shadows score 0 and 2 (μ 1, σ 1), OUT −2 and 0 (μ −1, σ 1): log N(s; 1, 1) − log N(s; −1, 1) = 2s.
    inputs = inputs_of([1.0], [[0.0], [2.0], [-2.0], [0.0]], [[True], [True], [False], [False]])
    for global_variance in (True, False, None):
        assert build_attack("lira", global_variance=global_variance).score(inputs) == pytest.approx([2.0])
    # Offline: z = (1 − (−1)) / 1 = 2, score −log(1 − Φ(2)) = −log(½ erfc(2 / √2)).
    expected = -math.log(0.5 * math.erfc(2 / math.sqrt(2)))
    assert build_attack("lira", online=False).score(inputs) == pytest.approx([expected], rel=1e-12)


def brute_lira(inputs, online, global_variance):
    scores, inside = inputs.shadows.scores, inputs.shadows.inside
    k, n = scores.shape
    sides = {True: [], False: []}  # side -> per record (mean, std, values)
    for r in range(n):
        for side in (True, False):
            values = [float(scores[j, r]) for j in range(k) if bool(inside[j, r]) == side]
            mu = sum(values) / len(values)
            sides[side].append((mu, math.sqrt(sum((v - mu) ** 2 for v in values) / len(values)), values))
    pooled = {}
    for side in (True, False):
        squares = [(v - mu) ** 2 for mu, _, values in sides[side] for v in values]
        pooled[side] = math.sqrt(sum(squares) / len(squares))
    out = []
    for r in range(n):
        s = float(inputs.target.logprobs[r][0])
        (mu_in, sd_in, _), (mu_out, sd_out, _) = sides[True][r], sides[False][r]
        if global_variance:
            sd_in, sd_out = pooled[True], pooled[False]
        if online:
            out.append(norm.logpdf(s, mu_in, sd_in) - norm.logpdf(s, mu_out, sd_out))
        else:
            out.append(-norm.logsf(s, mu_out, sd_out))
    return out


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("global_variance", [True, False])
def test_lira_matches_brute_force(online, global_variance):
    inputs = random_inputs()
    scores = build_attack("lira", online=online, global_variance=global_variance).score(inputs)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, brute_lira(inputs, online, global_variance), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("k", "per_record"), [(10, False), (64, True)])
def test_lira_variance_is_global_below_32_shadows_a_side(k, per_record):
    rng = np.random.default_rng(3)
    inside = np.zeros((k, 5), dtype=bool)
    for r in range(5):
        inside[rng.permutation(k)[: k // 2], r] = True
    inputs = inputs_of(rng.normal(-2.5, 0.5, 5), rng.normal(-3.0, rng.uniform(0.1, 1.0, 5), (k, 5)) + inside, inside)
    auto = build_attack("lira").score(inputs)
    np.testing.assert_array_equal(auto, build_attack("lira", global_variance=not per_record).score(inputs))
    assert not np.allclose(auto, build_attack("lira", global_variance=per_record).score(inputs))


def test_lira_records_lacking_a_side_fall_back():
    inputs = random_inputs(seed=1, n=6, k=8)
    scores, inside = inputs.shadows.scores.copy(), inputs.shadows.inside.copy()
    inside[:, 0] = False  # record 0: no IN shadow
    inside[:, 1] = True  # record 1: no OUT shadow
    inputs = dataclasses.replace(inputs, shadows=ShadowStats(scores=scores, inside=inside))
    s = np.array([float(lp[0]) for lp in inputs.target.logprobs])
    both = [2, 3, 4, 5]
    mu_in = np.array([scores[inside[:, r], r].mean() if inside[:, r].any() else np.nan for r in range(6)])
    mu_out = np.array([scores[~inside[:, r], r].mean() if (~inside[:, r]).any() else np.nan for r in range(6)])
    gap = np.mean(mu_in[both] - mu_out[both])
    resid_in = np.concatenate([scores[inside[:, r], r] - mu_in[r] for r in range(1, 6)])
    resid_out = np.concatenate([scores[~inside[:, r], r] - mu_out[r] for r in [0, *both]])
    sd_in, sd_out = np.sqrt(np.mean(resid_in**2)), np.sqrt(np.mean(resid_out**2))
    got = build_attack("lira", global_variance=True).score(inputs)
    assert got[0] == pytest.approx(norm.logpdf(s[0], mu_out[0] + gap, sd_in) - norm.logpdf(s[0], mu_out[0], sd_out))
    assert got[1] == pytest.approx(norm.logpdf(s[1], mu_in[1], sd_in) - norm.logpdf(s[1], mu_in[1] - gap, sd_out))
    # offline: record 1 (no OUT shadow) takes the mean μ_out of the others
    offline = build_attack("lira", online=False, global_variance=True).score(inputs)
    assert offline[1] == pytest.approx(-norm.logsf(s[1], np.mean(mu_out[[0, *both]]), sd_out))
    # min_shadows: a record with fewer IN shadows falls back as if it had none; the gap and σ come from the rest
    m = int(inside[:, 2].sum()) + 1
    ok_in = np.array([inside[:, r].sum() >= m for r in range(6)])
    ok_out = np.array([(~inside[:, r]).sum() >= m for r in range(6)])
    assert not ok_in[2] and ok_in.any() and (ok_in & ok_out).any()
    gap = np.mean((mu_in - mu_out)[ok_in & ok_out])
    resid_in = np.concatenate([scores[inside[:, r], r] - mu_in[r] for r in np.flatnonzero(ok_in)])
    resid_out = np.concatenate([scores[~inside[:, r], r] - mu_out[r] for r in np.flatnonzero(ok_out)])
    sd_in, sd_out = np.sqrt(np.mean(resid_in**2)), np.sqrt(np.mean(resid_out**2))
    got = build_attack("lira", global_variance=True, min_shadows=m).score(inputs)
    for r in range(6):
        m_in = mu_in[r] if ok_in[r] else mu_out[r] + gap
        m_out = mu_out[r] if ok_out[r] else mu_in[r] - gap
        assert got[r] == pytest.approx(norm.logpdf(s[r], m_in, sd_in) - norm.logpdf(s[r], m_out, sd_out)), r


def test_lira_without_usable_shadows_is_an_error():
    inputs = random_inputs()
    everywhere = ShadowStats(scores=inputs.shadows.scores, inside=np.ones_like(inputs.shadows.inside))
    nowhere = ShadowStats(scores=inputs.shadows.scores, inside=np.zeros_like(inputs.shadows.inside))
    for online in (True, False):
        with pytest.raises(MiaKdError, match="without it"):
            build_attack("lira", online=online).score(dataclasses.replace(inputs, shadows=everywhere))
    with pytest.raises(MiaKdError, match="both with and without"):
        build_attack("lira").score(dataclasses.replace(inputs, shadows=nowhere))
    assert np.isfinite(build_attack("lira", online=False).score(dataclasses.replace(inputs, shadows=nowhere))).all()


def test_a_zero_spread_is_floored():
    inputs = inputs_of([-1.0, -2.0], [[-1.0, -2.0], [-1.0, -2.0], [-3.0, -4.0], [-3.0, -4.0]],
                       [[True, True], [True, True], [False, False], [False, False]])
    for online in (True, False):
        for global_variance in (True, False):
            assert np.isfinite(build_attack("lira", online=online, global_variance=global_variance).score(inputs)).all()


# ------------------------------------------------------------------------------- known answer: difficulty


def difficult_records(seed=0, n=400, k=16, effect=0.3, noise=0.1):
    """Records of very different difficulty d_r ~ N(−3, 1); membership adds ``effect`` to the statistic, for
    the target (first half members) and for each shadow (on random halves). Labels ``(n,)``."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(np.int8)
    d = rng.normal(-3.0, 1.0, n)
    inside = rng.random((k, n)) < 0.5
    shadows = d + effect * inside + rng.normal(0.0, noise, (k, n))
    return inputs_of(d + effect * labels + rng.normal(0.0, noise, n), shadows, inside), labels


@pytest.mark.parametrize(("name", "params"), [("lira", {}), ("lira", {"online": False}), ("rmia", {"a": 1.0}),
                                              ("rmia", {"online": True})])
def test_shadows_see_through_record_difficulty(name, params):
    # LOSS ranks records by difficulty (AUC ~0.6); calibrating each record by its shadows recovers the 0.3 nat
    # membership effect against 0.1 nat noise.
    inputs, labels = difficult_records()
    loss = metrics.auc(build_attack("loss").score(inputs), labels)
    shadow = metrics.auc(build_attack(name, **params).score(inputs), labels)
    assert loss < 0.7
    assert shadow > 0.85 and shadow > loss + 0.2


def test_offline_rmia_with_a_below_one_ranks_like_loss_on_low_likelihoods():
    # Pr(x | θ) = exp(mean log-prob) is about e^−3 here: the constant (1 − a) / 2 of the offline approximation
    # (made for confidences near 1) swamps ½ (1 + a) Pr_OUT(x), so the ratio barely calibrates. Pinned so a
    # change of formula shows; the config's grid over a should include 1.
    inputs, labels = difficult_records()
    loss = metrics.auc(build_attack("loss").score(inputs), labels)
    assert abs(metrics.auc(build_attack("rmia", a=0.3).score(inputs), labels) - loss) < 0.05
    assert metrics.auc(build_attack("rmia", a=1.0).score(inputs), labels) > loss + 0.2


# ----------------------------------------------------------------------------------------------- rmia


def brute_rmia(inputs, online, gamma, a, pool):
    scores, inside = inputs.shadows.scores, inputs.shadows.inside
    k, n = scores.shape
    p_out = {}
    for r in range(n):
        out = [math.exp(scores[j, r]) for j in range(k) if not inside[j, r]]
        if out:
            p_out[r] = sum(out) / len(out)
    ratio = []
    for r in range(n):
        if online:
            marginal = sum(math.exp(scores[j, r]) for j in range(k)) / k
        else:
            p = p_out.get(r, sum(p_out.values()) / len(p_out))
            marginal = 0.5 * ((1 + a) * p + (1 - a))
        ratio.append(math.exp(float(inputs.target.logprobs[r][0])) / marginal)
    out = []
    for x in range(n):
        zs = [z for z in pool if z != x]
        out.append(sum(ratio[x] / ratio[z] > gamma for z in zs) / len(zs))
    return out


@pytest.mark.parametrize(
    ("online", "gamma", "a", "size"),
    [(False, 1.0, 0.3, 0), (False, 2.0, 0.6, 0), (False, 0.5, 0.0, 0), (False, 1.0, 1.0, 0), (True, 1.0, 0.3, 0),
     (True, 1.5, 0.3, 0), (False, 1.0, 0.3, 5), (True, 0.8, 0.3, 4)],
)
def test_rmia_matches_brute_force(online, gamma, a, size):
    inputs = random_inputs(seed=2, n=9, k=6)
    scores, inside = inputs.shadows.scores, inputs.shadows.inside.copy()
    inside[:, 4] = True  # record 4 has no OUT shadow: offline, it takes the mean Pr_OUT of the others
    inputs = dataclasses.replace(inputs, shadows=ShadowStats(scores=scores, inside=inside))
    got = build_attack("rmia", online=online, gamma=gamma, a=a, population=size).score(inputs)
    pool = list(range(9)) if size == 0 else [int(i) for i in population_indices(9, size)]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, brute_rmia(inputs, online, gamma, a, pool), rtol=0, atol=1e-12)


def test_rmia_population_is_a_fixed_label_free_draw():
    np.testing.assert_array_equal(population_indices(10, 0), np.arange(10))
    np.testing.assert_array_equal(population_indices(10, 12), np.arange(10))
    pool = population_indices(100, 7)
    assert len(set(pool.tolist())) == 7 and (np.diff(pool) > 0).all() and pool.max() < 100
    np.testing.assert_array_equal(pool, population_indices(100, 7))


def test_rmia_scores_are_fractions_that_fall_with_gamma():
    inputs = random_inputs(seed=4, n=12, k=6)
    low, high = (build_attack("rmia", gamma=g).score(inputs) for g in (1.0, 3.0))
    assert ((low >= 0) & (low <= 1)).all()
    assert (high <= low).all() and (high < low).any()
    # γ = 1: a rank among the 11 others, every value 0/11 … 10/11 once (the ratios are distinct)
    np.testing.assert_allclose(np.sort(low), np.arange(12) / 11)


def test_rmia_errors():
    inputs = random_inputs()
    everywhere = ShadowStats(scores=inputs.shadows.scores, inside=np.ones_like(inputs.shadows.inside))
    with pytest.raises(MiaKdError, match="without it"):
        build_attack("rmia").score(dataclasses.replace(inputs, shadows=everywhere))
    assert np.isfinite(build_attack("rmia", online=True).score(dataclasses.replace(inputs, shadows=everywhere))).all()
    with pytest.raises(MiaKdError, match="at least 2 population records"):
        build_attack("rmia").score(subset(inputs, np.array([0])))


# ------------------------------------------------------------------------------------- options, passes


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [("lira", "online", 1), ("lira", "global_variance", "yes"), ("lira", "min_shadows", 0),
     ("lira", "min_shadows", 1.5), ("lira", "min_shadows", True), ("rmia", "gamma", 0), ("rmia", "gamma", -1.0),
     ("rmia", "gamma", float("nan")), ("rmia", "gamma", True), ("rmia", "gamma", "1"), ("rmia", "a", -0.1),
     ("rmia", "a", 1.5), ("rmia", "online", "no"), ("rmia", "population", -1), ("rmia", "population", 2.0)],
)
def test_bad_options_are_refused(name, option, value):
    with pytest.raises(ConfigError, match=rf"^{name}\.{option}: got "):
        build_attack(name, **{option: value})


@pytest.mark.parametrize("name", ["lira", "rmia"])
def test_shadow_attacks_need_the_shadows_pass(name):
    assert required_passes([SimpleNamespace(name=name, params={})]) == Passes(
        moments=False, lowercase=False, reference=False, prefix_records=0, shadows=True)
    assert not required_passes([SimpleNamespace(name="loss", params={})]).shadows
    inputs = random_inputs()
    with pytest.raises(MiaKdError, match="needs the 'shadows' pass"):
        build_attack(name).score(dataclasses.replace(inputs, shadows=None))
    narrow = ShadowStats(scores=inputs.shadows.scores[:, :-1], inside=inputs.shadows.inside[:, :-1])
    with pytest.raises(MiaKdError, match="AttackInputs.shadows has 6 records"):
        build_attack(name).score(dataclasses.replace(inputs, shadows=narrow))


def test_shadow_stats_are_checked_on_construction():
    scores, inside = np.zeros((3, 4)), np.zeros((3, 4), dtype=bool)
    assert len(ShadowStats(scores=scores, inside=inside)) == 4
    with pytest.raises(MiaKdError, match="shape"):
        ShadowStats(scores=np.zeros(4), inside=np.zeros(4, dtype=bool))
    with pytest.raises(MiaKdError, match="shape"):
        ShadowStats(scores=np.zeros((0, 4)), inside=np.zeros((0, 4), dtype=bool))
    with pytest.raises(MiaKdError, match="inside must be a bool array"):
        ShadowStats(scores=scores, inside=np.zeros((3, 4), dtype=np.int8))
    with pytest.raises(MiaKdError, match="inside must be a bool array"):
        ShadowStats(scores=scores, inside=inside[:, :3])
    with pytest.raises(MiaKdError, match="non-finite"):
        ShadowStats(scores=np.full((3, 4), np.nan), inside=inside)


def test_subset_slices_the_shadows_columns():
    inputs = random_inputs()
    idx = np.array([5, 0, 3])
    picked = subset(inputs, idx)
    np.testing.assert_array_equal(picked.shadows.scores, inputs.shadows.scores[:, idx])
    np.testing.assert_array_equal(picked.shadows.inside, inputs.shadows.inside[:, idx])
    assert len(picked.shadows) == len(picked) == 3
    assert subset(dataclasses.replace(inputs, shadows=None), idx).shadows is None


# ------------------------------------------------------------------------------------------- calib only


SPECS = [
    SimpleNamespace(name="lira", params={"online": [True, False], "global_variance": [True, False]}),
    SimpleNamespace(name="rmia", params={"gamma": [2, 1], "a": [0.3, 1.0]}),
]


def test_grids_over_gamma_and_a_are_fit():
    # γ = 2 is far above the 0.3 nat (×1.35) membership effect, and a = 0.3 barely calibrates (see above).
    inputs, labels = difficult_records(n=200)
    fitted = fit_attack("rmia", SPECS[1].params, inputs, labels)
    assert fitted.params == {"gamma": 1, "a": 1.0, "online": False, "population": 0} and fitted.orientation == 1


def test_settings_and_orientation_come_from_calib_only():
    # Eval records' statistics (target and shadows) replaced by noise and their labels flipped: the settings
    # and orientation chosen on calib stay, and so do the threshold and every calib number: what the attacks
    # pool or rank against across records is the calib population only.
    inputs, labels = difficult_records(n=120)
    idx = np.arange(len(labels))
    calib, held_out = idx[idx % 2 == 0], idx[idx % 2 == 1]

    def run(inputs, y):
        attacked = run_attacks(inputs, y, calib, held_out, SPECS, n_bootstrap=50, seed=0)
        return {row["attack"]: row for row in attacked.rows}

    clean = run(inputs, labels)
    rng = np.random.default_rng(9)
    s = np.array([float(lp[0]) for lp in inputs.target.logprobs])
    s[held_out] = rng.normal(-5.0, 3.0, len(held_out))
    y = labels.copy()
    y[held_out] = 1 - y[held_out]
    noisy_target = dataclasses.replace(inputs, target=TokenStats(logprobs=tuple(np.array([v]) for v in s)))
    scores = inputs.shadows.scores.copy()
    scores[:, held_out] = rng.normal(-1.0, 2.0, (scores.shape[0], len(held_out)))
    noisy_all = dataclasses.replace(noisy_target, shadows=ShadowStats(scores=scores, inside=inputs.shadows.inside))
    for dirty in (run(noisy_target, y), run(noisy_all, y)):
        for name in ("lira", "rmia"):
            assert (clean[name]["attack_params"], clean[name]["orientation"]) == (
                dirty[name]["attack_params"], dirty[name]["orientation"])
            assert clean[name]["auc"] != dirty[name]["auc"]
        for name in ("lira", "rmia"):
            calib_numbers = ("threshold", "calib_auc", "calib_balanced_accuracy")
            assert [clean[name][k] for k in calib_numbers] == [dirty[name][k] for k in calib_numbers]
    assert json.loads(clean["rmia"]["attack_params"])["a"] == 1.0
