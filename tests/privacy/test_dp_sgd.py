import math

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.errors import ConfigError
from mia_kd.privacy import MethodContext, build_method
from mia_kd.privacy._methods import check_method
from mia_kd.privacy.dp_sgd import per_sample_gradients


def small_gpt2() -> torch.nn.Module:
    torch.manual_seed(11)
    config = GPT2Config(vocab_size=64, n_layer=1, n_embd=16, n_head=2, n_positions=32, bos_token_id=0, eos_token_id=0)
    return AutoModelForCausalLM.from_config(config).eval()  # eval: no dropout, so losses are deterministic


def token_mean_ce(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Next-token cross entropy averaged over real target tokens; ``logits`` (batch, seq, vocab)."""
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=-100)


def test_neutral_strength_is_plain_distillation(distil, weight_diff):
    base, _ = distil("none", 0.0)
    result, method = distil("dp_sgd", 0.0)
    assert weight_diff(result.student, base.student) < 1e-6
    assert method.report() == {}  # no DP, no ε


def test_per_sample_gradients_are_the_gradients_of_each_records_own_loss():
    model = small_gpt2()
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(0)
    ids = torch.randint(1, 64, (4, 9))
    mask = torch.ones_like(ids)

    losses, grads = per_sample_gradients(model, token_mean_ce, ids, mask, params)
    assert losses.shape == (4,)
    assert all(g.shape == (4, *p.shape) for g, p in zip(grads, params))
    # Equal lengths, token-mean loss: the batch gradient is the mean of the records' gradients, for every
    # parameter, the tied input/output embedding (one parameter, two uses) included.
    model.zero_grad()
    token_mean_ce(model(input_ids=ids, attention_mask=mask).logits, ids, mask).backward()
    for p, g in zip(params, grads):
        torch.testing.assert_close(g.mean(0), p.grad, atol=1e-6, rtol=1e-4)
    assert model.transformer.wte.weight is model.lm_head.weight

    # A right-padded record's gradient is that of the record alone, unpadded (one parameter checked).
    mask[1, 5:] = 0
    _, padded = per_sample_gradients(model, token_mean_ce, ids, mask, params)
    wte = next(i for i, p in enumerate(params) if p is model.transformer.wte.weight)
    unpadded = ids[1:2, :5]
    loss = token_mean_ce(model(input_ids=unpadded).logits, unpadded, torch.ones_like(unpadded))
    (alone,) = torch.autograd.grad(loss, [params[wte]])
    torch.testing.assert_close(padded[wte][1], alone, atol=1e-6, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:Optimal order is the smallest alpha")  # σ = 1e-6: ε is astronomical
def test_step_applies_the_mean_of_clipped_per_sample_gradients_and_keeps_the_lr_schedule():
    model = small_gpt2()
    inner = torch.optim.SGD(model.parameters(), lr=1.0)
    # built on the inner optimiser before wrapping, as fit does
    scheduler = torch.optim.lr_scheduler.LambdaLR(inner, lambda step: 0.5 ** (step + 1))
    clip = 1e-2
    context = MethodContext(vulnerability=None, vocab_size=64, seed=0)
    method = build_method("dp_sgd", 1e-6, {"max_grad_norm": clip}, context)
    model, optimizer = method.wrap_training(model, inner, batch_size=4, n_records=40, epochs=1)
    torch.manual_seed(0)
    ids = torch.randint(1, 64, (4, 9))
    mask = torch.ones_like(ids)

    optimizer.zero_grad(set_to_none=True)
    method.backward(model, token_mean_ce, ids, mask)
    params = [p for p in model.parameters()]
    per_sample = [p.grad_sample.clone() for p in params]
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in per_sample], dim=1).norm(dim=1)  # (batch,)
    assert bool((norms > 10 * clip).all())  # so clipping really acts on every record
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)
    expected = [torch.einsum("b,b...->...", factor, g) / 4 for g in per_sample]
    before = [p.detach().clone() for p in params]

    optimizer.step()
    scheduler.step()

    for p, p0, e in zip(params, before, expected):
        torch.testing.assert_close(p0 - p.detach(), 0.5 * e, atol=1e-7, rtol=1e-4)  # lr 1 · 0.5 at step 0
    clipped_norm = torch.stack([e.flatten().norm() for e in expected]).norm()
    assert clipped_norm <= clip + 1e-6
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)  # the scheduler still drives the LR
    assert method.report()["dp_steps"] == 1


def test_noisy_training_differs_from_plain_and_is_reproducible(distil, weight_diff):
    base, _ = distil("none", 0.0, epochs=1)
    first, first_method = distil("dp_sgd", 5.0, epochs=1, max_grad_norm=0.01)
    second, second_method = distil("dp_sgd", 5.0, epochs=1, max_grad_norm=0.01)
    assert weight_diff(first.student, base.student) > 1e-3
    assert weight_diff(first.student, second.student) == 0.0
    assert first_method.report() == second_method.report()


def test_epsilon_is_finite_and_falls_as_the_noise_grows(distil):
    _, low_noise = distil("dp_sgd", 1.0, epochs=1)
    _, high_noise = distil("dp_sgd", 4.0, epochs=1)
    low, high = low_noise.report(), high_noise.report()
    assert low["dp_steps"] == high["dp_steps"] == 5  # 40 records in batches of 8, one epoch
    assert low["delta"] == high["delta"] == pytest.approx(1 / 40)
    assert (low["noise_multiplier"], low["max_grad_norm"]) == (1.0, 1.0)
    assert math.isfinite(low["epsilon"]) and 0 < high["epsilon"] < low["epsilon"]


def test_strength_and_params_ranges_are_checked():
    with pytest.raises(ConfigError, match=r"privacy.strength: got 10.1, dp_sgd allows \[0, 10\]"):
        check_method("dp_sgd", 10.1, {}, "train")
    with pytest.raises(ConfigError, match="privacy.params.max_grad_norm"):
        check_method("dp_sgd", 1.0, {"max_grad_norm": 0.0}, "train")
    with pytest.raises(ConfigError, match="privacy.params.delta"):
        check_method("dp_sgd", 1.0, {"delta": 1.5}, "train")
    with pytest.raises(ConfigError, match="unknown parameter 'noise'"):
        check_method("dp_sgd", 1.0, {"noise": 1.0}, "train")
    check_method("dp_sgd", 1.0, {"max_grad_norm": 0.5, "delta": 1e-5}, "train")
