"""The trial's leakage transfer ratio: the attack is chosen on the teacher's calib fold, the ratio read on eval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mia_kd.attacks import Attacked
from mia_kd.config import validate_config
from mia_kd.data import SplitSizes, make_records, split_records
from mia_kd.metrics import leakage_transfer_ratio, tpr_at_fpr
from mia_kd.prepared import leakage_transfer

SPLIT = split_records(make_records([f"record {i}" for i in range(900)], "toy"),
                      SplitSizes(members=200, nonmembers=400, utility=10, public=10), seed=0)
CONFIG = validate_config({"attacks": ["loss", "zlib", "min_k"], "metrics": {"n_bootstrap": 200}, "seed": 4})
N_CALIB = SPLIT.n_calib
LABELS = SPLIT.attack_labels.astype(bool)


def _attacked(scores: dict[str, np.ndarray]) -> Attacked:
    """Attacked with each attack's calib TPR@1% FPR computed from its scores, as run_attacks reports it."""
    calib = slice(None, N_CALIB)
    rows = [{"attack": name, "calib_tpr_at_fpr_1pct": tpr_at_fpr(s[calib], LABELS[calib], 0.01)}
            for name, s in scores.items()]
    return Attacked(rows=rows, scores=scores, thresholds=dict.fromkeys(scores, 0.0))


def _scores(rng: np.random.Generator, strength: float) -> np.ndarray:
    return rng.normal(size=len(LABELS)) + strength * LABELS


def test_strongest_on_calib_and_ratio_on_eval():
    rng = np.random.default_rng(0)
    teacher = {"loss": _scores(rng, 1.0), "zlib": _scores(rng, 3.0), "min_k": _scores(rng, 0.5)}
    student = {name: _scores(rng, 1.0) for name in teacher}
    got = leakage_transfer(_attacked(teacher), _attacked(student), SPLIT, CONFIG)
    assert got["leakage_transfer_attack"] == "zlib"
    ev = slice(N_CALIB, None)
    expected = leakage_transfer_ratio(teacher["zlib"][ev], student["zlib"][ev], LABELS[ev], n_bootstrap=200, seed=4)
    assert got["leakage_transfer_ratio"] == expected.ratio == pytest.approx(
        tpr_at_fpr(student["zlib"][ev], LABELS[ev], 0.01) / tpr_at_fpr(teacher["zlib"][ev], LABELS[ev], 0.01))
    assert (got["leakage_transfer_ratio_low"], got["leakage_transfer_ratio_high"]) == (expected.low, expected.high)

    # Make loss the strongest attack on eval only: the choice (made on calib) must not move.
    perturbed = {name: s.copy() for name, s in teacher.items()}
    perturbed["loss"][ev] += 10 * LABELS[ev]
    perturbed["zlib"][ev] = rng.normal(size=len(LABELS) - N_CALIB)
    assert tpr_at_fpr(perturbed["loss"][ev], LABELS[ev], 0.01) > tpr_at_fpr(perturbed["zlib"][ev], LABELS[ev], 0.01)
    attacked = _attacked(perturbed)
    assert leakage_transfer(attacked, _attacked(student), SPLIT, CONFIG)["leakage_transfer_attack"] == "zlib"


def test_ties_go_to_the_first_attack_in_config_order_and_nan_when_calib_resolves_none():
    same = _scores(np.random.default_rng(1), 2.0)
    teacher = {"min_k": same, "zlib": same, "loss": same}  # rows in another order than config.attacks
    student = {name: same * 0.5 for name in teacher}
    assert leakage_transfer(_attacked(teacher), _attacked(student), SPLIT, CONFIG)["leakage_transfer_attack"] == "loss"
    unresolved = Attacked(rows=[{"attack": n, "calib_tpr_at_fpr_1pct": float("nan")} for n in teacher],
                          scores=teacher, thresholds=dict.fromkeys(teacher, 0.0))
    got = leakage_transfer(unresolved, _attacked(student), SPLIT, CONFIG)
    assert got["leakage_transfer_attack"] is None and math.isnan(got["leakage_transfer_ratio"])
