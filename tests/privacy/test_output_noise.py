import pytest
import torch

from mia_kd.models.batching import pad
from mia_kd.models.scoring import score
from mia_kd.privacy import MethodContext, build_method, method_class

NAME = "output_noise"


def make(strength, seed=0):
    return build_method(NAME, strength, {}, MethodContext(vulnerability=None, vocab_size=64, seed=seed))


def test_class_variables():
    cls = method_class(NAME)
    assert (cls.hook, cls.low, cls.high, cls.neutral) == ("targets", 0.0, 5.0, 0.0)
    assert cls.stages == {"train", "serve"} and not cls.needs_vulnerability


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


# ---- serve stage: the noise is a function of (seed, record, position), never of the batch


def test_serve_noise_of_a_record_does_not_depend_on_its_batch():
    short, long = [0, 5, 9, 9, 3, 17], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    method = make(1.0, seed=3)
    ids, mask = pad([short], pad_id=0)
    alone = method.serve_logits(torch.zeros(1, len(short), 64), ids, mask)[0]
    for batch in ([short, long], [long, short], [long, short, short]):
        ids, mask = pad(batch, pad_id=0)
        out = method.serve_logits(torch.zeros(*ids.shape, 64), ids, mask)
        j = batch.index(short)
        assert torch.equal(out[j, : len(short)], alone)
    # the same record again gives the same noise (not a stream); another record or seed other noise
    def served(m, row):
        return m.serve_logits(torch.zeros(1, len(row), 64), *pad([row], pad_id=0))[0]

    assert torch.equal(served(method, short), alone)
    assert not torch.allclose(served(make(1.0, seed=4), short), alone)
    assert not torch.allclose(served(method, [0, 5, 9, 9, 3, 18]), alone)
    noise_std = float(alone.std())
    assert 0.9 < noise_std < 1.1


def test_served_scores_do_not_depend_on_batch_size(teacher, rows):
    def served(batch_size: int, seed: int = 0):
        method = make(2.0, seed=seed)
        stats = score(teacher, rows[:12], pad_id=0, batch_size=batch_size, device=torch.device("cpu"),
                      moments=True, transform=method.serve_logits)
        return [*stats.logprobs, *stats.mean, *stats.std]

    one, many = served(1), served(8)
    for x, y in zip(one, many, strict=True):
        torch.testing.assert_close(torch.as_tensor(x), torch.as_tensor(y), rtol=1e-5, atol=1e-5)
    other = served(8, seed=1)
    assert not all(torch.allclose(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(many, other, strict=True))


def test_distillation_changes_the_student_not_its_shape(distil, plain, weight_diff):
    # Neutral strength is plain distillation: tests/privacy/test_contract.py.
    a, _ = distil(NAME, 2.0)
    assert a.n_transfer == plain.n_transfer == 40
    assert [n for n, _ in a.student.named_parameters()] == [n for n, _ in plain.student.named_parameters()]
    assert weight_diff(a.student, plain.student) > 1e-4
    again, _ = distil(NAME, 2.0)
    assert weight_diff(a.student, again.student) == 0.0  # the seeded noise makes the run reproducible
