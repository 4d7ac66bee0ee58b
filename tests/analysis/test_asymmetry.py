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
