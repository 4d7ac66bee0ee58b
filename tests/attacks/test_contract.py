"""What every registered attack promises (docs/architecture.md §4), tested on each one.

Parametrised over ``ATTACKS.names()``: a new attack file is tested here without editing this file. The
formula of each attack is tested against a brute-force version in ``test_attacks.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from types import SimpleNamespace
from typing import get_args

import numpy as np
import pytest

from mia_kd import metrics
from mia_kd.attacks import ATTACKS, AttackInputs, TokenStats, build_attack, required_passes
from mia_kd.attacks._base import Need, ShadowStats
from mia_kd.errors import ConfigError, MiaKdError

parametrize_attack = pytest.mark.parametrize("name", ATTACKS.names())

NEEDS: tuple[str, ...] = get_args(Need)


def labelled_inputs(seed: int = 0, n: int = 40) -> tuple[AttackInputs, np.ndarray]:
    """``n`` records with every pass, the first half members (labels ``(n,)``, 1 = member).

    Members' target log-probabilities are higher (uniform on [−2.5, −0.5] against [−4, −2]); everything
    else (texts, lowercased and reference passes, μ and σ over the vocabulary) is drawn from one
    distribution for both, and the prefixed pass is the target lowered by 0.5 nat for both. Eight shadow
    models, in pairs, each pair trained on complementary random halves of the records (labels unused): a
    shadow's mean log-probability is about −3, 1.5 nat higher where the record was in its training set, with
    one noise per pair, so IN and OUT spreads are equal. So every attack, read the right way round, sees
    members as more likely. Records have 1 to 29 predicted tokens.
    """
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(np.int8)
    lengths = rng.integers(1, 30, n)

    def draw(low: float, high: float) -> tuple[np.ndarray, ...]:
        return tuple(rng.uniform(low, high, k).astype(np.float32) for k in lengths)

    target = tuple(
        rng.uniform(-2.5, -0.5, k).astype(np.float32) if y else rng.uniform(-4.0, -2.0, k).astype(np.float32)
        for k, y in zip(lengths, labels, strict=True)
    )
    inputs = AttackInputs(
        texts=[f"Record {i:03d} Has Some Words In It." for i in range(n)],
        target=TokenStats(logprobs=target, mean=draw(-6.0, -4.5), std=draw(0.5, 1.5)),
        lowercase=TokenStats(logprobs=draw(-4.5, -4.0)),
        prefixed=TokenStats(logprobs=tuple(lp - np.float32(0.5) for lp in target)),
        reference=TokenStats(logprobs=draw(-3.5, -2.5)),
        shadows=paired_shadows(rng, np.full(n, -3.0), pairs=4, effect=1.5, noise=0.2),
    )
    return inputs, labels


def paired_shadows(rng, base: np.ndarray, *, pairs: int, effect: float, noise: float) -> ShadowStats:
    """``2 · pairs`` shadows on ``len(base)`` records: shadows 2j and 2j+1 hold complementary random halves,
    share one noise draw N(0, noise²) per record, and score a record ``base + effect`` where it was in."""
    first = rng.random((pairs, len(base))) < 0.5
    inside = np.repeat(first, 2, axis=0)
    inside[1::2] = ~first
    eps = np.repeat(rng.normal(0.0, noise, (pairs, len(base))), 2, axis=0)
    return ShadowStats(scores=base + effect * inside + eps, inside=inside)


INPUTS, LABELS = labelled_inputs()


def without(inputs: AttackInputs, need: str) -> AttackInputs:
    """``inputs`` lacking the pass ``need`` (moments: the target pass without ``mean`` and ``std``)."""
    if need == "moments":
        return dataclasses.replace(inputs, target=TokenStats(logprobs=inputs.target.logprobs))
    return dataclasses.replace(inputs, **{need: None})


def test_the_missing_pass_helper_knows_every_need():
    assert set(NEEDS) == {"moments", "lowercase", "prefixed", "reference", "shadows"}


@parametrize_attack
def test_registered_under_its_file_name(name):
    cls = ATTACKS.get(name)
    assert cls.name == name
    assert Path(inspect.getfile(cls)).stem == name
    assert inspect.getmodule(cls).__doc__  # cites its paper


@parametrize_attack
def test_is_a_frozen_dataclass(name):
    cls = ATTACKS.get(name)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    attack = build_attack(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.k = 0.5  # a field of some attacks, of none the others: refused either way


@parametrize_attack
def test_scores_are_one_finite_float64_per_record(name):
    scores = build_attack(name).score(INPUTS)
    assert scores.shape == (len(INPUTS),)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()


@parametrize_attack
def test_a_higher_score_means_member(name):
    assert metrics.auc(build_attack(name).score(INPUTS), LABELS) > 0.5


@parametrize_attack
def test_higher_logprobs_score_higher(name):
    # One record at a time, the others unchanged: an attack that ranks a record among the others (rmia) is,
    # rightly, unchanged when every record rises alike. The five lowest-scored records, each raised 0.5 nat.
    attack = build_attack(name)
    before = attack.score(INPUTS)
    for r in np.argsort(before, kind="stable")[:5]:
        raised = list(INPUTS.target.logprobs)
        raised[r] = raised[r] + np.float32(0.5)
        member_like = dataclasses.replace(INPUTS, target=dataclasses.replace(INPUTS.target, logprobs=tuple(raised)))
        assert attack.score(member_like)[r] > before[r], f"record {r}"


@parametrize_attack
def test_higher_logprobs_everywhere_never_lower_a_score(name):
    raised = tuple(lp + np.float32(0.5) for lp in INPUTS.target.logprobs)
    member_like = dataclasses.replace(INPUTS, target=dataclasses.replace(INPUTS.target, logprobs=raised))
    attack = build_attack(name)
    assert (attack.score(member_like) >= attack.score(INPUTS)).all()


@parametrize_attack
def test_reads_only_the_passes_it_declares(name):
    attack = build_attack(name)
    assert attack.needs <= set(NEEDS)
    bare = INPUTS
    for need in set(NEEDS) - attack.needs:
        bare = without(bare, need)
    np.testing.assert_array_equal(attack.score(bare), attack.score(INPUTS))


@pytest.mark.parametrize(
    ("name", "need"), [(name, need) for name in ATTACKS.names() for need in sorted(ATTACKS.get(name).needs)]
)
def test_a_missing_pass_is_an_error_naming_it(name, need):
    with pytest.raises(MiaKdError, match=need):
        build_attack(name).score(without(INPUTS, need))


@parametrize_attack
def test_required_passes_follow_needs(name):
    attack = build_attack(name)
    passes = required_passes([SimpleNamespace(name=name, params={})])
    assert (passes.moments, passes.lowercase, passes.reference, passes.shadows) == tuple(
        need in attack.needs for need in ("moments", "lowercase", "reference", "shadows")
    )
    assert (passes.prefix_records > 0) == ("prefixed" in attack.needs)
    if "prefixed" in attack.needs:
        assert passes.prefix_records == attack.prefix_records


@parametrize_attack
def test_an_unknown_option_is_refused_naming_the_allowed_ones(name):
    allowed = ", ".join(f.name for f in dataclasses.fields(ATTACKS.get(name))) or "(none)"
    with pytest.raises(ConfigError, match=rf"^attacks\.{name}: unknown option 'kk'.*; allowed: {re.escape(allowed)}$"):
        build_attack(name, kk=0.2)
