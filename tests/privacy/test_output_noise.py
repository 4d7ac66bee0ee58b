import pytest
import torch

from mia_kd.errors import ConfigError
from mia_kd.privacy import MethodContext, build_method
from mia_kd.privacy._methods import check_method, method_class

NAME = "output_noise"


def make(strength, seed=0):
    return build_method(NAME, strength, {}, MethodContext(vulnerability=None, vocab_size=64, seed=seed))



def test_class_variables():
    cls = method_class(NAME)
    assert (cls.hook, cls.low, cls.high, cls.neutral) == ("targets", 0.0, 5.0, 0.0)
    assert cls.stages == {"train", "serve"} and not cls.needs_vulnerability


def test_neutral_transform_is_identity(logits):
    assert torch.equal(make(0.0).transform_logits(logits, None, None), logits)



def test_changes_every_column_and_not_the_input(logits):
    before = logits.clone()
    out = make(1.0).transform_logits(logits, None, None)
    assert torch.equal(logits, before)
    assert out.dtype == logits.dtype and out.device == logits.device and out.shape == logits.shape
    assert bool((out != logits).all())


@pytest.mark.parametrize("strength", [0.3, 2.0, 5.0])
def test_noise_has_the_strength_as_standard_deviation(strength):
    logits = torch.zeros(4, 50, 1000)
    noise = make(strength).transform_logits(logits, None, None) - logits
    assert abs(float(noise.mean())) < 0.01 * strength
    assert abs(float(noise.std()) / strength - 1) < 0.01


def test_keeps_half_precision_dtype(logits):
    assert make(1.0).transform_logits(logits.to(torch.bfloat16), None, None).dtype == torch.bfloat16


def test_reproducible_for_a_seed_different_for_another_and_fresh_per_batch(logits):
    a, b, other = make(1.0, seed=3), make(1.0, seed=3), make(1.0, seed=4)
    first_a, first_b = a.transform_logits(logits, None, None), b.transform_logits(logits, None, None)
    assert torch.equal(first_a, first_b)
    assert not torch.allclose(first_a, other.transform_logits(logits, None, None))
    # the generator is a stream: the next batch gets new noise, identically for both instances
    second_a, second_b = a.transform_logits(logits, None, None), b.transform_logits(logits, None, None)
    assert torch.equal(second_a, second_b)
    assert not torch.allclose(first_a, second_a)


def test_distillation_neutral_is_plain_and_non_neutral_changes_the_student_not_its_shape(distil, weight_diff):
    plain, _ = distil("none", 0.0)
    neutral, _ = distil(NAME, 0.0)
    assert weight_diff(neutral.student, plain.student) <= 1e-6
    a, _ = distil(NAME, 2.0)
    assert a.n_transfer == plain.n_transfer == 40
    assert [n for n, _ in a.student.named_parameters()] == [n for n, _ in plain.student.named_parameters()]
    assert weight_diff(a.student, plain.student) > 1e-4
    again, _ = distil(NAME, 2.0)
    assert weight_diff(a.student, again.student) == 0.0  # the seeded noise makes the run reproducible



def test_out_of_range_strength_names_the_range():
    with pytest.raises(ConfigError, match=r"allows \[0, 5\]"):
        check_method(NAME, 5.1, {}, "train")
    check_method(NAME, 5.0, {}, "serve")
