"""Each attack against a brute-force formula (plain loops and ``math``), the passes each one needs, and
fitting on calib. What every attack promises is tested on each one in ``test_contract.py``."""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from types import SimpleNamespace

import numpy as np
import pytest

from mia_kd.attacks import (
    AttackInputs,
    Passes,
    TokenStats,
    build_attack,
    fit_attack,
    privacy_objective,
    required_passes,
    run_attacks,
)
from mia_kd import metrics
from mia_kd.attacks._util import n_lowest
from mia_kd.errors import ConfigError, MiaKdError

LENGTHS = [1, 2, 3, 5, 7, 10, 13, 20, 31, 4]


def ragged(rng, low, high):
    return tuple(rng.uniform(low, high, n).astype(np.float32) for n in LENGTHS)


def make_inputs(seed=0) -> AttackInputs:
    rng = np.random.default_rng(seed)
    texts = [f"Record {i}: " + "Some Words " * (i + 1) + "x" * (3 * i) for i in range(len(LENGTHS))]
    std = list(ragged(rng, 0.1, 2.0))
    std[3] = std[3].copy()
    std[3][1] = 0.0  # a degenerate position: min_k_pp floors sigma
    target = TokenStats(logprobs=ragged(rng, -8, -0.01), mean=ragged(rng, -5, -1), std=tuple(std))
    return AttackInputs(
        texts=texts,
        target=target,
        lowercase=TokenStats(logprobs=ragged(rng, -8, -0.01)),
        prefixed=TokenStats(logprobs=ragged(rng, -8, -0.01)),
        reference=TokenStats(logprobs=ragged(rng, -8, -0.01)),
    )


INPUTS = make_inputs()


def mean(values):
    return sum(float(v) for v in values) / len(values)


def lowest_k_mean(values, k):
    kept = sorted(float(v) for v in values)[: max(1, math.ceil(k * len(values)))]
    return sum(kept) / len(kept)


def brute_force(name, params, inputs):
    out = []
    for r, text in enumerate(inputs.texts):
        lp = inputs.target.logprobs[r]
        if name == "loss":
            out.append(mean(lp))
        elif name == "zlib":
            out.append(mean(lp) / len(zlib.compress(text.encode("utf-8"))))
        elif name == "lowercase":
            out.append(-(mean(lp) / mean(inputs.lowercase.logprobs[r])))
        elif name == "min_k":
            out.append(lowest_k_mean(lp, params.get("k", 0.2)))
        elif name == "min_k_pp":
            mu, sigma = inputs.target.mean[r], inputs.target.std[r]
            z = [(float(lp[i]) - float(mu[i])) / max(float(sigma[i]), 1e-6) for i in range(len(lp))]
            out.append(lowest_k_mean(z, params.get("k", 0.2)))
        elif name == "recall":
            out.append(mean(inputs.prefixed.logprobs[r]) / mean(lp))
        elif name == "reference":
            out.append(mean(lp) - mean(inputs.reference.logprobs[r]))
        else:
            raise AssertionError(name)
    return out


CASES = [
    ("loss", {}),
    ("zlib", {}),
    ("lowercase", {}),
    ("min_k", {}),
    ("min_k", {"k": 0.1}),
    ("min_k", {"k": 0.5}),
    ("min_k", {"k": 1.0}),
    ("min_k_pp", {}),
    ("min_k_pp", {"k": 0.5}),
    ("recall", {}),
    ("reference", {}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_attack_matches_brute_force(name, params):
    scores = build_attack(name, **params).score(INPUTS)
    assert scores.shape == (len(LENGTHS),)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, brute_force(name, params, INPUTS), rtol=1e-6, atol=1e-9)


def test_min_k_pp_floors_a_zero_sigma():
    scores = build_attack("min_k_pp", k=1.0).score(INPUTS)
    assert np.isfinite(scores).all()


def test_min_k_with_k_one_is_loss():
    np.testing.assert_allclose(build_attack("min_k", k=1.0).score(INPUTS), build_attack("loss").score(INPUTS))


def test_n_lowest_rounds_up_and_keeps_at_least_one():
    assert n_lowest(10, 0.2) == 2
    assert n_lowest(10, 0.21) == 3
    assert n_lowest(3, 0.2) == 1
    assert n_lowest(1, 0.01) == 1
    assert n_lowest(100, 0.07) == 7  # 0.07 * 100 == 7.000000000000001 in floating point
    assert n_lowest(31, 1.0) == 31


def test_mismatched_record_counts_are_an_error():
    inputs = dataclasses.replace(INPUTS, reference=TokenStats(logprobs=INPUTS.reference.logprobs[:-1]))
    with pytest.raises(MiaKdError, match="reference"):
        build_attack("reference").score(inputs)


def test_empty_record_is_an_error():
    inputs = dataclasses.replace(INPUTS, target=TokenStats(logprobs=(np.zeros(0),) * len(LENGTHS)))
    with pytest.raises(MiaKdError, match="no predicted tokens"):
        build_attack("loss").score(inputs)


# ---------------------------------------------------------------------------------------- registry


def test_unknown_attack_suggests_a_name():
    with pytest.raises(ConfigError, match="unknown attack 'min_kk'.*did you mean 'min_k'"):
        build_attack("min_kk")


@pytest.mark.parametrize("name", ["min_k", "min_k_pp"])
@pytest.mark.parametrize("k", [0, -0.1, 1.5, float("nan"), True, "0.2"])
def test_out_of_range_k_is_rejected(name, k):
    with pytest.raises(ConfigError, match=rf"{name}\.k: got .*must be in \(0, 1\]"):
        build_attack(name, k=k)


@pytest.mark.parametrize("shots", [0, -1, 2.5, True])
def test_bad_shots_are_rejected(shots):
    with pytest.raises(ConfigError, match="recall.shots"):
        build_attack("recall", shots=shots)


# ------------------------------------------------------------------------------------- required_passes


def spec(name, **params):
    return SimpleNamespace(name=name, params=params)


@pytest.mark.parametrize(
    ("name", "passes"),
    [
        ("loss", Passes(moments=False, lowercase=False, reference=False, prefix_records=0)),
        ("zlib", Passes(moments=False, lowercase=False, reference=False, prefix_records=0)),
        ("min_k", Passes(moments=False, lowercase=False, reference=False, prefix_records=0)),
        ("lowercase", Passes(moments=False, lowercase=True, reference=False, prefix_records=0)),
        ("min_k_pp", Passes(moments=True, lowercase=False, reference=False, prefix_records=0)),
        ("reference", Passes(moments=False, lowercase=False, reference=True, prefix_records=0)),
        ("recall", Passes(moments=False, lowercase=False, reference=False, prefix_records=4)),
    ],
)
def test_the_passes_each_attack_needs(name, passes):
    assert required_passes([spec(name)]) == passes


def recall_shots_before(specs):
    """The trial's rule before attacks declared their passes (``trial._recall_shots``), kept as the oracle."""
    for s in specs:
        if s.name == "recall":
            return int(s.params.get("shots", 4))
    return 0


@pytest.mark.parametrize(
    "specs",
    [
        [],
        [spec("loss"), spec("zlib")],
        [spec("recall")],
        [spec("loss"), spec("recall", shots=8)],
        [spec("min_k", k=[0.1, 0.2]), spec("recall", shots=1), spec("reference")],
    ],
)
def test_prefix_records_are_the_recall_shots_as_before(specs):
    assert required_passes(specs).prefix_records == recall_shots_before(specs)


def test_passes_are_the_union_over_attacks():
    specs = [spec("loss"), spec("min_k_pp", k=[0.1, 0.5]), spec("lowercase"), spec("recall", shots=[2])]
    assert required_passes(specs) == Passes(moments=True, lowercase=True, reference=False, prefix_records=2)


def test_two_prefixes_are_refused():
    with pytest.raises(ConfigError, match="prefixed pass is computed once"):
        required_passes([spec("recall", shots=2), spec("recall", shots=4)])


def test_required_passes_checks_names_and_options():
    with pytest.raises(ConfigError, match="unknown attack 'recal'"):
        required_passes([spec("recal")])
    with pytest.raises(ConfigError, match="recall.shots"):
        required_passes([spec("recall", shots=0)])


# -------------------------------------------------------------------------------------- fit_attack


def k_sensitive_inputs(seed=0):
    """Members: all tokens near -2. Non-members: one token near -3, nine near -0.1.

    The lowest token (k = 0.1) separates perfectly; the mean (k = 1) ranks the other way round.
    """
    rng = np.random.default_rng(seed)
    members = [np.full(10, -2.0) + rng.uniform(-0.05, 0.05, 10) for _ in range(6)]
    nonmembers = [np.r_[-3.0, np.full(9, -0.1)] + rng.uniform(-0.05, 0.05, 10) for _ in range(6)]
    logprobs = tuple(a.astype(np.float32) for a in members + nonmembers)
    inputs = AttackInputs(texts=["t"] * 12, target=TokenStats(logprobs=logprobs))
    return inputs, np.r_[np.ones(6, dtype=int), np.zeros(6, dtype=int)]


def test_fit_attack_picks_the_best_calib_auc():
    inputs, labels = k_sensitive_inputs()
    fitted = fit_attack("min_k", {"k": [0.1, 1.0]}, inputs, labels)
    assert fitted.attack == build_attack("min_k", k=0.1)
    assert fitted.params == {"k": 0.1} and fitted.orientation == 1
    # k = 1 ranks every member low (calib AUC 0): oriented, it is as strong as k = 0.1, and first in the grid
    fitted = fit_attack("min_k", {"k": [1.0, 0.1]}, inputs, labels)
    assert fitted.params == {"k": 1.0} and fitted.orientation == -1


def test_fit_attack_orients_an_inverted_attack_on_calib():
    # With the labels flipped, k = 0.1 ranks every member below every non-member: calib AUC 0, which is a
    # perfect attack read the wrong way round: oriented (-1), it is reported as the perfect attack it is.
    inputs, labels = k_sensitive_inputs()
    fitted = fit_attack("min_k", {"k": [0.1]}, inputs, 1 - labels)
    assert fitted.params == {"k": 0.1} and fitted.orientation == -1
    np.testing.assert_array_equal(fitted.score(inputs), -fitted.attack.score(inputs))
    assert metrics.auc(fitted.score(inputs), 1 - labels) == 1.0
    # run_attacks reports the oriented attack, and stores the orientation with the chosen settings
    idx = np.arange(12)
    calib, held_out = idx[idx % 2 == 0], idx[idx % 2 == 1]
    attacked = run_attacks(inputs, (1 - labels).astype(np.int8), calib, held_out,
                           [SimpleNamespace(name="min_k", params={"k": [0.1]})], n_bootstrap=100, seed=0)
    row = attacked.rows[0]
    assert row["orientation"] == -1 and row["auc"] == 1.0 and row["calib_auc"] == 1.0
    assert json.loads(row["attack_params"]) == {"k": 0.1}


def test_orientation_is_chosen_on_calib_never_on_eval():
    # Calib says the attack works as is; eval is poisoned (its labels flipped): orientation stays +1 and
    # the eval AUC is reported as it is (0), not flipped to look strong or weak.
    inputs, labels = k_sensitive_inputs()
    y = labels.astype(np.int8).copy()
    idx = np.arange(12)
    calib, held_out = idx[idx % 2 == 0], idx[idx % 2 == 1]
    y[held_out] = 1 - y[held_out]
    attacked = run_attacks(inputs, y, calib, held_out, [SimpleNamespace(name="min_k", params={"k": 0.1})],
                           n_bootstrap=100, seed=0)
    assert attacked.rows[0]["orientation"] == 1 and attacked.rows[0]["auc"] == 0.0


def test_fit_attack_ties_go_to_the_first_grid_value():
    rng = np.random.default_rng(1)
    logprobs = tuple(np.full(10, v, dtype=np.float32) + rng.uniform(0, 0.1, 10).astype(np.float32)
                     for v in [-1.0] * 4 + [-3.0] * 4)  # fmt: skip
    inputs = AttackInputs(texts=["t"] * 8, target=TokenStats(logprobs=logprobs))
    labels = np.r_[np.ones(4, dtype=int), np.zeros(4, dtype=int)]
    assert fit_attack("min_k", {"k": [0.3, 0.1, 1.0]}, inputs, labels).params == {"k": 0.3}


def test_fit_attack_fixed_params_and_defaults():
    inputs, labels = k_sensitive_inputs()
    fitted = fit_attack("min_k", {"k": 0.5}, inputs, labels)
    assert fitted.params == {"k": 0.5} and fitted.attack.k == 0.5
    assert fit_attack("min_k", {}, inputs, labels).params == {"k": 0.2}
    fitted = fit_attack("loss", {}, inputs, labels)
    assert fitted.params == {} and fitted.attack == build_attack("loss")


def test_fit_attack_rejects_grids_over_scorer_params():
    inputs = INPUTS
    labels = np.r_[np.ones(5, dtype=int), np.zeros(5, dtype=int)]
    with pytest.raises(ConfigError, match=r"attacks\.recall\.shots: got a grid \[2, 4\]"):
        fit_attack("recall", {"shots": [2, 4]}, inputs, labels)
    assert fit_attack("recall", {"shots": [8]}, inputs, labels).params == {"shots": 8}


def test_fit_attack_rejects_bad_grids():
    inputs, labels = k_sensitive_inputs()
    with pytest.raises(ConfigError, match="empty grid"):
        fit_attack("min_k", {"k": []}, inputs, labels)
    with pytest.raises(ConfigError, match=r"min_k\.k: got 2"):
        fit_attack("min_k", {"k": [0.1, 2]}, inputs, labels)
    with pytest.raises(ConfigError, match="unknown option"):
        fit_attack("min_k", {"kk": [0.1]}, inputs, labels)
    with pytest.raises(ConfigError, match="did you mean"):
        fit_attack("los", {}, inputs, labels)


def test_selection_objective_does_not_read_eval():
    # Settings, orientation, thresholds and the worst attack come from calib: replacing every eval record's
    # statistics with noise (and flipping eval labels) leaves the selection objective unchanged, while the
    # reported (eval) numbers move.
    rng = np.random.default_rng(7)
    n = 80
    labels = np.r_[np.ones(n // 2, dtype=np.int8), np.zeros(n // 2, dtype=np.int8)]
    logprobs = [rng.normal(-2.0 + 0.5 * y, 1.0, 12).astype(np.float32) for y in labels]
    idx = np.arange(n)
    calib, held_out = idx[idx % 2 == 0], idx[idx % 2 == 1]
    specs = [SimpleNamespace(name="loss", params={}), SimpleNamespace(name="min_k", params={"k": [0.1, 0.5, 1.0]})]

    def objectives(stats, y):
        inputs = AttackInputs(texts=["t"] * n, target=TokenStats(logprobs=tuple(stats)))
        attacked = run_attacks(inputs, y, calib, held_out, specs, n_bootstrap=100, seed=0)
        return attacked, privacy_objective(attacked.rows, "auc")

    clean, clean_objective = objectives(logprobs, labels)
    poisoned = [rng.normal(-5, 3, 12).astype(np.float32) if i in set(held_out) else lp for i, lp in enumerate(logprobs)]
    flipped = labels.copy()
    flipped[held_out] = 1 - flipped[held_out]
    dirty, dirty_objective = objectives(poisoned, flipped)
    for key in ("selection_privacy", "selection_privacy_attack", "objective_privacy_attack"):
        assert clean_objective[key] == dirty_objective[key]
    for a, b in zip(clean.rows, dirty.rows, strict=True):
        assert (a["attack_params"], a["orientation"], a["threshold"], a["calib_auc"]) == (
            b["attack_params"], b["orientation"], b["threshold"], b["calib_auc"])
    assert clean_objective["objective_privacy"] != dirty_objective["objective_privacy"]
