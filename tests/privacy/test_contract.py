"""The contract every privacy method keeps, checked on every registered method (docs/architecture.md §6).

One parametrisation over the registry (``parametrize_method``, as optuna's ``parametrize_sampler``): a new
file in ``mia_kd/privacy/`` is tested here without a line added. What is particular to one method lives in
its own ``test_<method>.py``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from mia_kd.config import TrialConfig
from mia_kd.errors import ConfigError
from mia_kd.models.batching import pad
from mia_kd.privacy import METHODS, MethodContext, PrivacyMethod, build_method, check_method, method_class

STAGES = ("train", "serve")
QUICK = {"epochs": 1, "n_records": 16}  # two optimiser steps: enough to tell a changed step from the plain one

parametrize_method = pytest.mark.parametrize("name", METHODS.names())


@pytest.fixture(scope="module")
def quick_plain(distil):
    """Plain distillation (``none``) on the quick run every method's neutral strength must reproduce."""
    result, _ = distil("none", 0.0, **QUICK)
    return result


def neutral_method(name: str, vulnerability) -> PrivacyMethod:
    cls = method_class(name)
    return build_method(name, cls.neutral, {}, MethodContext(vulnerability=vulnerability, vocab_size=64, seed=0))


def outside(cls: type[PrivacyMethod]) -> tuple[float, float]:
    """A strength just below the range and one just above it."""
    step = 0.1 * max(1.0, cls.high - cls.low)
    return cls.low - step, cls.high + step


def test_every_method_file_is_registered():
    package = Path(sys.modules["mia_kd.privacy"].__file__).parent
    files = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")}
    assert set(METHODS.names()) == files and "none" in files


@parametrize_method
def test_the_registered_name_is_the_module_file_name(name):
    cls = METHODS.get(name)
    assert cls.name == name == Path(sys.modules[cls.__module__].__file__).stem
    assert cls.low <= cls.neutral <= cls.high and cls.stages and set(cls.stages) <= set(STAGES)


@parametrize_method
def test_neutral_strength_is_plain_distillation_at_every_stage(name, distil, quick_plain, vulnerability, rows):
    cls = method_class(name)
    plain = quick_plain
    ids, mask = pad(rows[:8], pad_id=0)
    with torch.no_grad():
        plain_logits = plain.student(input_ids=ids, attention_mask=mask).logits
    assert plain.n_transfer == QUICK["n_records"]
    if "train" in cls.stages:
        result, method = distil(name, cls.neutral, **QUICK)
        assert method.is_neutral and result.n_transfer == plain.n_transfer
        got, want = dict(result.student.named_parameters()), dict(plain.student.named_parameters())
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), name
        with torch.no_grad():
            assert torch.equal(result.student(input_ids=ids, attention_mask=mask).logits, plain_logits)
        json.dumps(method.report())
    if "serve" in cls.stages:
        # Served: the plain student's logits pass through the method's serve hook unchanged.
        method = neutral_method(name, vulnerability)
        assert torch.equal(method.serve_logits(plain_logits.clone(), ids, mask), plain_logits)


@parametrize_method
def test_every_hook_is_the_identity_at_neutral_strength(name, vulnerability, rows, record_ids, tiny_student):
    # The trainer and the scorer skip a neutral method's hooks; called anyway, they change nothing.
    method = neutral_method(name, vulnerability)
    ids, mask = pad(rows[:4], pad_id=0)
    logits = torch.randn(*ids.shape, 64, generator=torch.Generator().manual_seed(3))
    assert torch.equal(method.transform_logits(logits.clone(), ids, mask), logits)
    assert method.select_records(record_ids) == list(range(len(record_ids)))
    student = tiny_student(7)
    before = {k: v.detach().clone() for k, v in student.named_parameters()}
    after = dict(method.modify_student(student).named_parameters())
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


@parametrize_method
def test_report_after_distilling_is_json(name, distil):
    # At a strength the sweep searches (the middle of its space), on the quick run.
    cls = method_class(name)
    space = cls.strength_space(TrialConfig())
    strength = (space.low + space.high) / 2
    strength = float(round(strength)) if space.integer else strength
    _, method = distil(name, strength, **QUICK)
    report = method.report()
    assert isinstance(report, dict) and all(isinstance(k, str) for k in report)
    json.dumps(report)


@parametrize_method
def test_the_searched_space_lies_in_the_accepted_range(name):
    cls = method_class(name)
    space = cls.strength_space(TrialConfig())
    assert cls.low <= space.low <= space.high <= cls.high
    assert space.integer == cls.integer_strength


@parametrize_method
def test_an_out_of_range_strength_is_refused_naming_the_range(name):
    cls = method_class(name)
    allowed = f"{name} allows [{cls.low:g}, {cls.high:g}]"
    for bad in outside(cls):
        with pytest.raises(ConfigError, match=rf"privacy.strength: got {re.escape(repr(bad))}, {re.escape(allowed)}"):
            check_method(name, bad, {}, "train")
    for stage in cls.stages:  # the ends of the range are in it
        check_method(name, cls.low, {}, stage)
        check_method(name, cls.high, {}, stage)


@parametrize_method
def test_an_unsupported_stage_is_refused(name):
    cls = method_class(name)
    for stage in STAGES:
        if stage in cls.stages:
            check_method(name, cls.neutral, {}, stage)
        else:
            with pytest.raises(ConfigError, match=rf"privacy.stage: got '{stage}', {name} supports "):
                check_method(name, cls.neutral, {}, stage)


@parametrize_method
def test_integer_strength_methods_take_whole_numbers_only(name):
    cls = method_class(name)
    if not cls.integer_strength:
        check_method(name, (cls.low + cls.high) / 2, {}, "train")  # any point of the range
        return
    fraction = cls.low + 0.5
    assert fraction < cls.high
    with pytest.raises(ConfigError, match=rf"{name} takes a whole number in \[{cls.low:g}, {cls.high:g}\]"):
        check_method(name, fraction, {}, "train")
    check_method(name, cls.low + 1.0, {}, "train")


@parametrize_method
def test_an_unknown_parameter_is_refused(name):
    message = rf"privacy\.params: unknown parameter 'no_such_parameter' for {name}; allowed: "
    with pytest.raises(ConfigError, match=message):
        check_method(name, method_class(name).neutral, {"no_such_parameter": 1}, "train")
