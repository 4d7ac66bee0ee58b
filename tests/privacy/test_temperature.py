import pytest
import torch

from mia_kd.errors import ConfigError, MiaKdError
from mia_kd.privacy import MethodContext, build_method
from mia_kd.privacy._methods import check_method, method_class

NAME = "temperature"


def make(strength, vulnerability):
    context = MethodContext(vulnerability=vulnerability, vocab_size=vulnerability.token_mask.shape[0], seed=0)
    return build_method(NAME, strength, {}, context)



def test_class_variables():
    cls = method_class(NAME)
    assert (cls.hook, cls.low, cls.high, cls.neutral) == ("targets", 0.0, 0.95, 0.0)
    assert cls.stages == {"train", "serve"} and cls.needs_vulnerability


def test_neutral_transform_is_identity(vulnerability, logits):
    assert torch.equal(make(0.0, vulnerability).transform_logits(logits, None, None), logits)



@pytest.mark.parametrize("strength", [0.5, 0.95])
def test_scales_vulnerable_columns_only(vulnerability, logits, strength):
    vulnerable = torch.as_tensor(vulnerability.token_mask)
    assert 0 < int(vulnerable.sum()) < vulnerable.numel()
    before = logits.clone()
    out = make(strength, vulnerability).transform_logits(logits, None, None)
    assert torch.equal(logits, before)  # input untouched
    assert out.dtype == logits.dtype and out.device == logits.device and out.shape == logits.shape
    assert torch.equal(out[..., ~vulnerable], logits[..., ~vulnerable])
    assert torch.equal(out[..., vulnerable], logits[..., vulnerable] * (1 - strength))
    assert not torch.equal(out, logits)


def test_study_point_halves_vulnerable_logits(vulnerability, logits):
    vulnerable = torch.as_tensor(vulnerability.token_mask)
    out = make(0.5, vulnerability).transform_logits(logits, None, None)
    torch.testing.assert_close(out[..., vulnerable] * 2, logits[..., vulnerable], rtol=0, atol=0)


def test_missing_vulnerability_fails_at_construction():
    context = MethodContext(vulnerability=None, vocab_size=64, seed=0)
    with pytest.raises(MiaKdError, match="needs the teacher's vulnerability"):
        build_method(NAME, 0.5, {}, context)


def test_distillation_neutral_is_plain_and_non_neutral_changes_the_student_not_its_shape(distil, weight_diff):
    plain, _ = distil("none", 0.0)
    neutral, _ = distil(NAME, 0.0)
    assert weight_diff(neutral.student, plain.student) <= 1e-6
    a, _ = distil(NAME, 0.5)
    assert a.n_transfer == plain.n_transfer == 40
    assert [n for n, _ in a.student.named_parameters()] == [n for n, _ in plain.student.named_parameters()]
    assert weight_diff(a.student, plain.student) > 1e-4


def test_out_of_range_strength_names_the_range():
    with pytest.raises(ConfigError, match=r"allows \[0, 0\.95\]"):
        check_method(NAME, 0.95 + 0.1, {}, "train")
    check_method(NAME, 0.95, {}, "serve")
