"""Every target transform, at every strength and stage, is invariant to adding a constant to all logits.

A teacher's (or a served student's) logits are defined only up to a per-position constant: softmax cannot
tell ``z`` from ``z + c``. A transform that reads raw logit values (scaling them, say) would turn the same
distribution into different targets; here the softened targets must not move.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mia_kd.privacy import MethodContext, build_method, method_classes

VOCAB = 64
SHIFTS = (-100.0, -3.0, 5.0, 100.0)
TARGET_METHODS = [cls for cls in method_classes() if cls.hook == "targets"]


def test_every_target_method_is_covered():
    assert {cls.name for cls in TARGET_METHODS} >= {"red_list", "temperature", "output_noise", "topk_targets"}


def cases(stage: str):
    for cls in TARGET_METHODS:
        if stage not in cls.stages:
            continue
        for fraction in (0.0, 0.3, 0.6, 1.0):
            strength = cls.low + fraction * (cls.high - cls.low)
            yield pytest.param(cls.name, strength, id=f"{cls.name}-{strength:g}")


def logits_ids_mask() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    logits = 3 * torch.randn(3, 7, VOCAB, generator=g)
    ids = torch.randint(0, VOCAB, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # one right-padded row, as the scorer and the trainer make them
    return logits, ids, mask


def assert_same_targets(shifted: torch.Tensor, plain: torch.Tensor, c: float, x: torch.Tensor) -> None:
    # x + c is rounded to float32: an error of up to half an ulp of |c| + |x| per logit, which no
    # transform can undo; softmax turns it into at most about that much probability.
    atol = 16 * torch.finfo(torch.float32).eps * (abs(c) + float(x.abs().max()))
    assert bool(torch.isfinite(shifted).all()) and bool(torch.isfinite(plain).all())
    for temperature in (1.0, 2.0):
        torch.testing.assert_close(
            F.softmax(shifted / temperature, dim=-1), F.softmax(plain / temperature, dim=-1), rtol=0, atol=atol
        )


def make(name: str, strength: float, vulnerability):
    return build_method(name, strength, {}, MethodContext(vulnerability=vulnerability, vocab_size=VOCAB, seed=5))


@pytest.mark.parametrize("c", SHIFTS)
@pytest.mark.parametrize(("name", "strength"), list(cases("train")))
def test_teacher_targets_do_not_move_when_all_logits_shift(vulnerability, name, strength, c):
    logits, ids, mask = logits_ids_mask()
    # A fresh instance per call: a method with a noise stream then draws the same noise for both.
    plain = make(name, strength, vulnerability).transform_logits(logits, ids, mask)
    shifted = make(name, strength, vulnerability).transform_logits(logits + c, ids, mask)
    assert_same_targets(shifted, plain, c, logits)


@pytest.mark.parametrize("c", SHIFTS)
@pytest.mark.parametrize(("name", "strength"), list(cases("serve")))
def test_served_distributions_do_not_move_when_all_logits_shift(vulnerability, name, strength, c):
    logits, ids, mask = logits_ids_mask()
    method = make(name, strength, vulnerability)
    # One instance for both calls: serving the same record twice must give the same distribution.
    assert_same_targets(method.serve_logits(logits + c, ids, mask), method.serve_logits(logits, ids, mask), c, logits)
