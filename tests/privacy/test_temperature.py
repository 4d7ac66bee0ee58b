import pytest
import torch

from mia_kd.errors import MiaKdError
from mia_kd.privacy import MethodContext, build_method, method_class

NAME = "temperature"


def make(strength, vulnerability):
    context = MethodContext(vulnerability=vulnerability, vocab_size=vulnerability.token_mask.shape[0], seed=0)
    return build_method(NAME, strength, {}, context)


def test_class_variables():
    cls = method_class(NAME)
    assert (cls.hook, cls.low, cls.high, cls.neutral) == ("targets", 0.0, 0.95, 0.0)
    assert cls.stages == {"train", "serve"} and cls.needs_vulnerability


@pytest.mark.parametrize("strength", [0.5, 0.95])
def test_tempers_the_vulnerable_log_probabilities_only(vulnerability, logits, strength):
    vulnerable = torch.as_tensor(vulnerability.token_mask)
    assert 0 < int(vulnerable.sum()) < vulnerable.numel()
    before = logits.clone()
    out = make(strength, vulnerability).transform_logits(logits, None, None)
    assert torch.equal(logits, before)  # input untouched
    assert out.dtype == logits.dtype and out.device == logits.device and out.shape == logits.shape
    logp = torch.log_softmax(logits, dim=-1)
    # log p on the other columns, (1 − strength)·log p on the vulnerable ones: p_v → p_v^(1 − strength)
    torch.testing.assert_close(out[..., ~vulnerable], logp[..., ~vulnerable], rtol=0, atol=0)
    torch.testing.assert_close(out[..., vulnerable], logp[..., vulnerable] * (1 - strength), rtol=0, atol=0)
    # the other columns keep their odds against each other exactly as the teacher gave them
    other = out[..., ~vulnerable]
    torch.testing.assert_close(other - other[..., :1], logits[..., ~vulnerable] - logits[..., ~vulnerable][..., :1])


@pytest.mark.parametrize("strength", [0.3, 0.5, 0.95])
def test_flattens_the_distribution_over_vulnerable_tokens(vulnerability, logits, strength):
    # Among the vulnerable tokens the target is the teacher's at temperature 1 / (1 − strength): flatter,
    # so the teacher's sharp confidence on them is not copied.
    vulnerable = torch.as_tensor(vulnerability.token_mask)
    out = make(strength, vulnerability).transform_logits(logits, None, None)

    def entropy(z: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(z[..., vulnerable], dim=-1)
        return -(logp.exp() * logp).sum(-1)

    assert bool((entropy(out) > entropy(logits)).all())
    torch.testing.assert_close(
        torch.softmax(out[..., vulnerable], dim=-1), torch.softmax(logits[..., vulnerable] * (1 - strength), dim=-1)
    )


def test_the_same_distribution_shifted_gives_the_same_targets(vulnerability, logits):
    # The example: scaling raw logits turned one teacher distribution into different targets.
    method = make(0.5, vulnerability)
    for c in (-20.0, 20.0):
        torch.testing.assert_close(
            torch.softmax(method.transform_logits(logits + c, None, None), -1),
            torch.softmax(method.transform_logits(logits, None, None), -1), rtol=0, atol=1e-5,
        )


def test_missing_vulnerability_fails_at_construction():
    context = MethodContext(vulnerability=None, vocab_size=64, seed=0)
    with pytest.raises(MiaKdError, match="needs the teacher's vulnerability"):
        build_method(NAME, 0.5, {}, context)


def test_distillation_changes_the_student_not_its_shape(distil, plain, weight_diff):
    # Neutral strength is plain distillation: tests/privacy/test_contract.py.
    a, _ = distil(NAME, 0.5)
    assert a.n_transfer == plain.n_transfer == 40
    assert [n for n, _ in a.student.named_parameters()] == [n for n, _ in plain.student.named_parameters()]
    assert weight_diff(a.student, plain.student) > 1e-4
