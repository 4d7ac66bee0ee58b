"""Teacher vs student on a real (CI-sized) store: the 2x2 agreement is consistent with the stored rates."""

from __future__ import annotations

import pytest

from mia_kd.analysis import asymmetry as asym
from mia_kd.analysis.results import load_results
from mia_kd.errors import UserError

pytestmark = pytest.mark.slow


def test_agreement_counts_reproduce_each_models_tpr_and_tnr(trial_store):
    results = load_results(str(trial_store[0]))
    result = asym.compute_asymmetry(results, ["loss", "min_k"])
    rates = result.rates.set_index(["trial_id", "attack", "role"])
    agreement = result.agreement.set_index(["trial_id", "attack", "label"])
    assert len(agreement) == len(results.completed) * 2 * 2
    for trial in results.completed["trial_id"]:
        for attack in ("loss", "min_k"):
            m, n = agreement.loc[(trial, attack, "member")], agreement.loc[(trial, attack, "nonmember")]
            n_members, n_nonmembers = m[list(asym.CELLS)].sum(), n[list(asym.CELLS)].sum()
            assert n_members == n_nonmembers == 100  # the CI config's eval fold: half of 200 each
            assert (m.both + m.teacher_only) / n_members == pytest.approx(rates.at[(trial, attack, "teacher"), "tpr"])
            assert (m.both + m.student_only) / n_members == pytest.approx(rates.at[(trial, attack, "student"), "tpr"])
            assert (n.neither + n.student_only) / n_nonmembers == pytest.approx(rates.at[(trial, attack, "teacher"), "tnr"])
            assert (n.neither + n.teacher_only) / n_nonmembers == pytest.approx(rates.at[(trial, attack, "student"), "tnr"])
    text = asym.format_asymmetry(result, "loss")
    assert all(t in text for t in results.completed["trial_id"])


def test_unknown_attack_is_refused(trial_store):
    results = load_results(str(trial_store[0]))
    assert asym.check_attack(results, None) == "loss"
    with pytest.raises(UserError, match="the sweep ran"):
        asym.check_attack(results, "nope")


def _synthetic(completed):
    import pandas as pd

    rates = pd.DataFrame([
        {"trial_id": t, "method": "none", "strength": 0.0, "attack": "loss", "role": role, "tpr": 0.5, "tpr_low": 0.4,
         "tpr_high": 0.6, "tnr": 0.5, "tnr_low": 0.4, "tnr_high": 0.6}
        for t in completed["trial_id"] for role in ("teacher", "student")
    ])
    agreement = pd.DataFrame([
        {"trial_id": t, "method": "none", "strength": 0.0, "attack": "loss", "label": label, "both": 1,
         "teacher_only": 2, "student_only": 3, "neither": 4}
        for t in completed["trial_id"] for label in ("member", "nonmember")
    ])
    return asym.Asymmetry(rates=rates, agreement=agreement, leakage=asym.leakage_table(completed))


def test_leakage_transfer_ratio_is_shown_per_trial_and_old_stores_read_as_members(tmp_path):
    import pandas as pd

    new = pd.DataFrame({
        "trial_id": ["a", "b"], "method": ["none", "none"], "strength": [0.0, 0.0],
        "distill_transfer": ["members", "disjoint"], "n_transfer": [200, 150],
        "leakage_transfer_attack": ["zlib", None], "leakage_transfer_ratio": [0.25, float("nan")],
        "leakage_transfer_ratio_low": [0.125, float("nan")], "leakage_transfer_ratio_high": [0.5, float("nan")],
    })
    text = asym.format_asymmetry(_synthetic(new), "loss")
    line_a = next(line for line in text.splitlines() if line.startswith("a ") and "zlib" in line)
    assert "members" in line_a and "0.250 [0.125, 0.500]" in line_a
    line_b = next(line for line in text.splitlines() if line.startswith("b ") and "disjoint" in line)
    assert "n/a" in line_b and "highest teacher TPR@1% FPR on calib" in text
    # A store written before the columns existed: every trial distilled on the members, no ratio.
    old = asym.leakage_table(new[["trial_id", "method", "strength"]])
    assert list(old["distill_transfer"]) == ["members", "members"] and old["leakage_transfer_ratio"].isna().all()
    written = pd.read_parquet(asym.write_asymmetry(_synthetic(new), "loss", tmp_path)[0])
    leakage = written[written["kind"] == "leakage"].set_index("trial_id")
    assert leakage.at["a", "leakage_transfer_ratio"] == 0.25 and leakage.at["b", "distill_transfer"] == "disjoint"


def test_the_store_carries_each_trials_leakage_transfer_ratio(trial_store):
    results = load_results(str(trial_store[0]))
    result = asym.compute_asymmetry(results, ["loss"])
    leakage = result.leakage.set_index("trial_id")
    for trial_id, trial in trial_store[1].items():
        row = trial.trial
        assert leakage.at[trial_id, "distill_transfer"] == "members" == row["distill_transfer"]
        assert leakage.at[trial_id, "leakage_transfer_attack"] == row["leakage_transfer_attack"] is not None
        assert leakage.at[trial_id, "leakage_transfer_ratio"] == pytest.approx(row["leakage_transfer_ratio"], nan_ok=True)
    assert "leakage transfer ratio" in asym.format_asymmetry(result, "loss")
