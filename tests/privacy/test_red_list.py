import pytest
import torch

from mia_kd.errors import MiaKdError
from mia_kd.privacy import MethodContext, build_method, method_class

NAME = "red_list"


def make(strength, vulnerability):
    context = MethodContext(vulnerability=vulnerability, vocab_size=vulnerability.token_mask.shape[0], seed=0)
    return build_method(NAME, strength, {}, context)


def test_class_variables():
    cls = method_class(NAME)
    assert (cls.hook, cls.low, cls.high, cls.neutral) == ("targets", 0.0, 8.0, 0.0)
    assert cls.stages == {"train", "serve"} and cls.needs_vulnerability


def test_subtracts_strength_on_vulnerable_columns_only(vulnerability, logits):
    vulnerable = torch.as_tensor(vulnerability.token_mask)
    assert 0 < int(vulnerable.sum()) < vulnerable.numel()  # the fixture has both kinds of token
    before = logits.clone()
    out = make(3.0, vulnerability).transform_logits(logits, None, None)
    assert torch.equal(logits, before)  # input untouched
    assert out.dtype == logits.dtype and out.device == logits.device and out.shape == logits.shape
    assert torch.equal(out[..., ~vulnerable], logits[..., ~vulnerable])
    assert torch.equal(out[..., vulnerable], logits[..., vulnerable] - 3.0)


def test_keeps_half_precision_dtype(vulnerability, logits):
    half = logits.to(torch.bfloat16)
    assert make(1.0, vulnerability).transform_logits(half, None, None).dtype == torch.bfloat16


def test_wider_logits_than_vocabulary_leave_padding_columns_alone(vulnerability):
    wide = torch.randn(1, 3, vulnerability.token_mask.shape[0] + 6)
    out = make(2.0, vulnerability).transform_logits(wide, None, None)
    assert torch.equal(out[..., -6:], wide[..., -6:])


def test_missing_vulnerability_fails_at_construction():
    context = MethodContext(vulnerability=None, vocab_size=64, seed=0)
    with pytest.raises(MiaKdError, match="needs the teacher's vulnerability"):
        build_method(NAME, 1.0, {}, context)


def test_distillation_changes_the_student_not_its_shape(distil, plain, weight_diff):
    # Neutral strength is plain distillation: tests/privacy/test_contract.py.
    a, _ = distil(NAME, 4.0)
    assert a.n_transfer == plain.n_transfer == 40
    assert [n for n, _ in a.student.named_parameters()] == [n for n, _ in plain.student.named_parameters()]
    assert weight_diff(a.student, plain.student) > 1e-4
