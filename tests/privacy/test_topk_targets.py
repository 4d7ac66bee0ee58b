import pytest
import torch
import torch.nn.functional as F

import mia_kd.privacy.topk_targets as topk_module
from mia_kd.distill.loss import distill_loss, kd_loss
from mia_kd.models.scoring import score
from mia_kd.privacy import MethodContext, build_method, method_class
from mia_kd.privacy.topk_targets import top_k

NAME = "topk_targets"


def make(strength):
    return build_method(NAME, strength, {}, MethodContext(vulnerability=None, vocab_size=64, seed=0))


@pytest.fixture
def teacher_logits(teacher, rows):
    ids = torch.tensor([rows[0][:8], rows[1][:8]])
    with torch.no_grad():
        return teacher(input_ids=ids).logits, ids


def test_class_variables():
    cls = method_class(NAME)
    assert (cls.hook, cls.low, cls.high, cls.neutral) == ("targets", 0.0, 1.0, 0.0)
    assert cls.stages == {"train", "serve"} and not cls.needs_vulnerability


@pytest.mark.parametrize(
    ("vocab", "strength", "k"),
    [(64, 0.0, 64), (64, 0.5, 8), (64, 1.0, 1), (50257, 0.0, 50257), (50257, 0.5, 224), (50257, 1.0, 1), (2, 0.9, 1)],
)
def test_k_follows_the_documented_map(vocab, strength, k):
    assert top_k(vocab, strength) == k


@pytest.mark.parametrize(("strength", "k"), [(0.5, 8), (0.75, 3), (1.0, 1)])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_softened_target_is_the_renormalised_top_k(teacher_logits, strength, k, temperature):
    logits, ids = teacher_logits
    before = logits.clone()
    out = make(strength).transform_logits(logits, ids, torch.ones_like(ids))
    assert torch.equal(logits, before)
    assert out.dtype == logits.dtype and out.shape == logits.shape and bool(torch.isfinite(out).all())

    p = F.softmax(out / temperature, dim=-1)
    assert bool(((p > 0).sum(dim=-1) == k).all())  # exactly k entries with probability; exact zeros elsewhere
    full = F.softmax(logits / temperature, dim=-1)
    top_p, top_i = full.topk(k, dim=-1)
    torch.testing.assert_close(p.gather(-1, top_i), top_p / top_p.sum(dim=-1, keepdim=True))
    torch.testing.assert_close(out.gather(-1, top_i), logits.gather(-1, top_i), rtol=0, atol=0)


def test_ties_still_keep_exactly_k():
    logits = torch.zeros(1, 2, 64)
    out = make(0.5).transform_logits(logits, None, None)
    assert bool(((F.softmax(out, dim=-1) > 0).sum(dim=-1) == 8).all())


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_kd_loss_and_its_gradient_stay_finite(teacher_logits, strength):
    logits, ids = teacher_logits
    mask = torch.ones_like(ids)
    targets = make(strength).transform_logits(logits, ids, mask)
    student = torch.randn(logits.shape, requires_grad=True)
    for temperature in (0.5, 1.0, 2.0, 10.0):
        loss = kd_loss(student, targets, mask, temperature=temperature)
        assert bool(torch.isfinite(loss)) and float(loss) >= 0
        total = distill_loss(student, targets, ids, mask, temperature=temperature, alpha=0.5)
        (grad,) = torch.autograd.grad(total, student)
        assert bool(torch.isfinite(grad).all())
    # the KD term against its own targets is zero: the dropped tail contributes nothing, not NaN
    assert float(kd_loss(targets, targets, mask, temperature=2.0)) == 0.0


def test_extreme_logits_stay_finite_in_half_precision():
    logits = torch.full((1, 2, 64), -65000.0, dtype=torch.float16)
    logits[..., 0] = 100.0
    out = make(0.5).transform_logits(logits, None, None)
    assert out.dtype == torch.float16 and bool(torch.isfinite(out).all())


# ---- serve stage: the released distribution is the top k probabilities plus an even spread of the rest


@pytest.mark.parametrize(("strength", "k"), [(0.5, 8), (0.75, 3), (1.0, 1)])
def test_serve_keeps_top_k_probabilities_and_spreads_the_rest_evenly(teacher_logits, strength, k):
    logits, ids = teacher_logits
    out = make(strength).serve_logits(logits, ids, torch.ones_like(ids))
    assert out.shape == logits.shape and out.dtype == logits.dtype
    logp = F.log_softmax(out, dim=-1)
    assert bool(torch.isfinite(logp).all())
    full = F.log_softmax(logits, dim=-1)
    top_logp, top_i = full.topk(k, dim=-1)
    # the top k keep their own probabilities (not renormalised)
    torch.testing.assert_close(logp.gather(-1, top_i), top_logp)
    # every dropped token gets log((1 − Σ top-k p) / (V − k)), by hand
    vocab = logits.shape[-1]
    mass = top_logp.exp().sum(-1, keepdim=True).double()
    expected = torch.log((1 - mass) / (vocab - k)).float()
    dropped = torch.ones_like(logp, dtype=torch.bool).scatter(-1, top_i, False)
    assert int(dropped.sum(-1).min()) == vocab - k
    torch.testing.assert_close(logp[dropped], expected.expand_as(logp)[dropped], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(logp.shape[:-1]))


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_serve_scores_do_not_depend_on_the_drop_margin(teacher, rows, monkeypatch, strength):
    # The train-stage margin is an arbitrary constant: a served student's task loss and attack scores must
    # not scale with it.
    def served(margin: float) -> list:
        monkeypatch.setattr(topk_module, "DROP_MARGIN", margin)
        method = make(strength)
        stats = score(teacher, rows[:6], pad_id=0, batch_size=4, device=torch.device("cpu"), moments=True,
                      transform=method.serve_logits)
        return [*stats.logprobs, *stats.mean, *stats.std]

    a, b = served(1e4), served(1e2)
    for x, y in zip(a, b, strict=True):
        assert bool(torch.isfinite(torch.as_tensor(x)).all())
        torch.testing.assert_close(torch.as_tensor(x), torch.as_tensor(y), rtol=0, atol=0)
    assert min(float(x.min()) for x in a[:6]) > -50  # no token's log-probability is near −DROP_MARGIN


def test_distillation_changes_the_student_not_its_shape(distil, plain, weight_diff):
    # Neutral strength is plain distillation: tests/privacy/test_contract.py.
    a, _ = distil(NAME, 0.5)
    assert a.n_transfer == plain.n_transfer == 40
    assert [n for n, _ in a.student.named_parameters()] == [n for n, _ in plain.student.named_parameters()]
    assert weight_diff(a.student, plain.student) > 1e-4
