import json
import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.errors import ConfigError
from mia_kd.privacy import MethodContext, build_method, check_method
from mia_kd.distill.loss import distill_loss
from mia_kd.privacy.dp_sgd import per_sample_gradients, token_weighted_mean, vectorised_per_sample_gradients
from tests._tolerance import float32_atol, forward_ops


def small_gpt2() -> torch.nn.Module:
    torch.manual_seed(11)
    config = GPT2Config(vocab_size=64, n_layer=1, n_embd=16, n_head=2, n_positions=32, bos_token_id=0, eos_token_id=0)
    return AutoModelForCausalLM.from_config(config).eval()  # eval: no dropout, so losses are deterministic


def token_mean_ce(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Next-token cross entropy averaged over real target tokens; ``logits`` (batch, seq, vocab)."""
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=-100)


@pytest.fixture(scope="module")
def plain_one_epoch(distil):
    base, _ = distil("none", 0.0, epochs=1)
    return base


def test_neutral_strength_reports_no_guarantee(distil):
    # Plain distillation at σ = 0 (tests/privacy/test_contract.py): the trainer never wraps the optimiser.
    _, method = distil("dp_sgd", 0.0, epochs=1, n_records=8)
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


def right_padded_batch(lengths: list[int], seq: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ids = torch.randint(1, 64, (len(lengths), seq))
    mask = (torch.arange(seq) < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask  # pad id 0


def teacher_loss(seed: int = 5):
    """The trainer's loss: a teacher called with the mask inside, then ``distill_loss`` (token means)."""
    teacher = _seeded_gpt2(seed)

    def loss_fn(logits, ids, mask):
        with torch.no_grad():
            teacher_logits = teacher(input_ids=ids, attention_mask=mask).logits
        return distill_loss(logits, teacher_logits, ids, mask, temperature=2.0, alpha=0.5)

    return loss_fn


def _seeded_gpt2(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=64, n_layer=1, n_embd=16, n_head=2, n_positions=32, bos_token_id=0, eos_token_id=0)
    return AutoModelForCausalLM.from_config(config).eval()


def test_vectorised_per_sample_gradients_equal_the_per_record_loops():
    model = small_gpt2()
    params = [p for p in model.parameters() if p.requires_grad]
    ids, mask = right_padded_batch([9, 5, 1, 7, 3])  # mixed lengths; a record of one token has no target
    loss_fn = teacher_loss()

    losses, slow = per_sample_gradients(model, loss_fn, ids, mask, params)
    loss, fast = vectorised_per_sample_gradients(model, loss_fn, ids, mask, params)
    # Each gradient passes forward and back through the same roundings: twice a forward pass's count.
    ops = 2 * forward_ops(model.config, ids.shape[1])
    for p, f, s in zip(params, fast, slow):
        assert f.shape == s.shape == (5, *p.shape)
        torch.testing.assert_close(f, s, atol=float32_atol(s, ops=ops), rtol=0)
    assert bool((fast[0][2] == 0).all())  # the one-token record: no target, no gradient
    # The batch loss is the token mean, i.e. the records' losses weighted by their target tokens.
    assert float(loss) == pytest.approx(float(token_weighted_mean(losses, mask)), rel=1e-6)
    with torch.no_grad():
        batch_loss = loss_fn(model(input_ids=ids, attention_mask=mask).logits, ids, mask)
    assert float(loss) == pytest.approx(float(batch_loss), rel=1e-6)


def test_dp_sgd_takes_one_vectorised_pass_per_batch_on_gpt2():
    model = no_dropout(small_gpt2()).train()  # training mode, without dropout's randomness in the loss
    method = build_method("dp_sgd", 1.0, {}, MethodContext(vulnerability=None, vocab_size=64, seed=0))
    ids, mask = right_padded_batch([9, 5, 7, 3])
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    method.backward(model, token_mean_ce, ids, mask)  # the first batch also checks the path against the loop
    calls.clear()
    loss = method.backward(model, token_mean_ce, ids, mask)
    assert len(calls) == 1  # one forward for the batch, not one per record
    assert all(p.grad_sample.shape == (4, *p.shape) for p in model.parameters())
    # the running loss is the batch's token mean, as plain distillation reports it
    with torch.no_grad():
        expected = token_mean_ce(model(input_ids=ids, attention_mask=mask).logits, ids, mask)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


class DataDependent(torch.nn.Module):
    """A GPT-2 behind a branch on its input's values: vmap cannot run it, the per-record loop can."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = small_gpt2()

    def forward(self, input_ids, attention_mask=None):
        if bool((input_ids > 0).any()):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)
        return self.inner(input_ids=input_ids + 1, attention_mask=attention_mask)


def per_record_mean_ce(logits, ids, mask):
    """Not a token mean: each record's mean, then the mean over records (gives short records more weight)."""
    targets, m = ids[:, 1:], mask[:, 1:].float()
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
    return ((nll * m).sum(1) / m.sum(1).clamp_min(1)).mean()


@pytest.mark.parametrize("case", ["vmap fails", "not a token mean"])
def test_the_per_record_loop_runs_where_the_vectorised_path_fails_or_differs(case, caplog):
    if case == "vmap fails":
        model, loss_fn = DataDependent().eval(), token_mean_ce
    else:
        model, loss_fn = small_gpt2(), per_record_mean_ce
    params = [p for p in model.parameters() if p.requires_grad]
    method = build_method("dp_sgd", 1.0, {}, MethodContext(vulnerability=None, vocab_size=64, seed=0))
    ids, mask = right_padded_batch([9, 5, 7, 3])
    with caplog.at_level("WARNING", logger="mia_kd.privacy.dp_sgd"):
        method.backward(model, loss_fn, ids, mask)
    assert ("vmap cannot run this model" if case == "vmap fails" else "differ from the per-record loop") in caplog.text
    _, expected = per_sample_gradients(model, loss_fn, ids, mask, params)
    for p, e in zip(params, expected):
        assert torch.equal(p.grad_sample, e)  # the loop's gradients, exactly


def no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


@pytest.mark.parametrize("dropout", [False, True])
def test_vectorised_dp_sgd_trains_the_loops_student_with_the_same_epsilon(
    dropout, rows, record_ids, teacher, tiny_student, weight_diff, monkeypatch
):
    from mia_kd.config import DistillConfig
    from mia_kd.distill.trainer import distill
    from mia_kd.privacy.dp_sgd import DpSgd

    def run(path: str | None):
        if path == "loop":
            monkeypatch.setattr(DpSgd, "_choose_path", staticmethod(lambda *args: "loop"))
        else:
            monkeypatch.undo()
        method = build_method("dp_sgd", 1.0, {}, MethodContext(vulnerability=None, vocab_size=64, seed=0, n_records=40))
        student = tiny_student(7) if dropout else no_dropout(tiny_student(7))
        result = distill(student, teacher, rows, DistillConfig(epochs=2, batch_size=8, lr=1e-3), seed=0, pad_id=0,
                         device=torch.device("cpu"), method=method, record_ids=record_ids)
        return result, method.report()

    loop, loop_report = run("loop")
    fast, fast_report = run(None)
    assert (loop_report["per_sample_gradients"], fast_report["per_sample_gradients"]) == ("loop", "vectorised")
    # Same Poisson batches and noise, same accountant: the same ε, bit for bit.
    assert {k: v for k, v in fast_report.items() if k != "per_sample_gradients"} == {
        k: v for k, v in loop_report.items() if k != "per_sample_gradients"}
    if not dropout:
        # The same computation up to float rounding: the students agree far below one step's size (lr 1e-3).
        assert weight_diff(fast.student, loop.student) < 1e-5
    else:
        # Each path draws its own dropout masks: the students differ as two draws of the same run would.
        assert 0 < weight_diff(fast.student, loop.student) < 1e-2


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
    assert method.report()["steps"] == 1


def test_noisy_training_differs_from_plain_and_is_reproducible(distil, plain_one_epoch, weight_diff):
    base = plain_one_epoch
    first, first_method = distil("dp_sgd", 5.0, epochs=1, max_grad_norm=0.01)
    second, second_method = distil("dp_sgd", 5.0, epochs=1, max_grad_norm=0.01)
    assert weight_diff(first.student, base.student) > 1e-3
    assert weight_diff(first.student, second.student) == 0.0
    assert first_method.report() == second_method.report()


def test_epsilon_is_finite_and_falls_as_the_noise_grows(distil):
    _, low_noise = distil("dp_sgd", 1.0, epochs=1)
    _, high_noise = distil("dp_sgd", 4.0, epochs=1)
    low, high = low_noise.report(), high_noise.report()
    assert low["steps"] == high["steps"] == 5  # 40 records in expected batches of 8, one epoch
    assert low["delta"] == high["delta"] == pytest.approx(1 / 400)
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


# ---- Poisson sampling and honest accounting


def rdp_sampled_gaussian(q: float, sigma: float, alpha: float) -> float:
    """RDP of order ``alpha`` of one step of the Poisson-sampled Gaussian mechanism (L2 sensitivity 1, noise σ).

    Mironov, Talwar and Zhang 2019, *Rényi Differential Privacy of the Sampled Gaussian Mechanism*: the
    RDP is ``log A_α / (α − 1)`` with ``A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α]``, μ0 = N(0, σ²) and
    μ = (1 − q)·μ0 + q·N(1, σ²). Computed here by integrating that definition numerically on a fine grid
    in log space, for any order, fractional ones included; no code shared with Opacus. (They show this
    direction dominates D_α(μ0 ‖ μ), so it is the mechanism's RDP.)
    """
    if q == 1.0:
        return alpha / (2 * sigma**2)
    # The integrand is μ0's bell near 0 plus a bump of width σ near z = α: the grid covers both ±20σ, and
    # σ/2000 spacing makes the Riemann sum of this smooth, fast-decaying function exact to float rounding.
    dz = sigma / 2000
    z = np.arange(-20 * sigma - 1, alpha + 20 * sigma + 1, dz)
    log_mu0 = -(z**2) / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi))
    log_ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma**2))
    log_a = logsumexp(log_mu0 + alpha * log_ratio) + math.log(dz)
    return log_a / (alpha - 1)


def rdp_sampled_gaussian_integer(q: float, sigma: float, alpha: int) -> float:
    """The same for an integer order, in closed form (Mironov et al. 2019, eq. for integer α):
    ``log Σ_k C(α, k) (1 − q)^(α−k) q^k exp((k² − k) / (2σ²)) / (α − 1)``."""
    terms = [
        math.log(math.comb(alpha, k)) + (alpha - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * sigma**2)
        for k in range(alpha + 1)
    ]
    return logsumexp(np.array(terms)) / (alpha - 1)


def logsumexp(x: np.ndarray) -> float:
    top = float(np.max(x))
    return top + math.log(float(np.sum(np.exp(x - top))))


ORDERS = [1 + x / 10 for x in range(1, 100)] + list(range(12, 64))  # the accountant's grid of orders


def epsilon_from_rdp(rdp: np.ndarray, orders: list[float], delta: float) -> float:
    """(ε, δ) from RDP over ``orders`` (Balle et al. 2020, *Hypothesis Testing Interpretations and Rényi DP*,
    Theorem 21): ε = min_α RDP(α) + log((α − 1)/α) − (log δ + log α)/(α − 1)."""
    a = np.asarray(orders, dtype=float)
    return float(np.min(rdp + np.log((a - 1) / a) - (math.log(delta) + np.log(a)) / (a - 1)))


def test_the_independent_rdp_integration_matches_the_closed_form_at_integer_orders():
    for q, sigma in [(0.2, 2.0), (0.01, 0.7), (0.5, 5.0)]:
        for alpha in (2, 3, 8, 20):
            assert rdp_sampled_gaussian(q, sigma, alpha) == pytest.approx(
                rdp_sampled_gaussian_integer(q, sigma, alpha), rel=1e-6
            )


def test_dp_batches_are_poisson_sampled_and_seeded():
    context = MethodContext(vulnerability=None, vocab_size=64, seed=0, n_records=40)
    method = build_method("dp_sgd", 2.0, {}, context)
    lengths = list(np.random.default_rng(1).integers(4, 16, size=40))
    epochs = 2000
    rng = np.random.default_rng(3)
    batches = [b for _ in range(epochs) for b in method.batches(lengths, 8, rng)]
    assert len(batches) == epochs * 5  # ceil(40 / 8) steps per epoch, as the schedule counts
    q = 8 / 40
    included = np.zeros((len(batches), 40), dtype=bool)
    for step, batch in enumerate(batches):
        assert len(set(batch.tolist())) == len(batch)  # a record enters a batch at most once
        included[step, batch] = True
    freq = included.mean(axis=0)
    sd = math.sqrt(q * (1 - q) / len(batches))
    assert np.all(np.abs(freq - q) < 5 * sd)  # every record enters each step with probability q
    sizes = included.sum(axis=1)
    assert abs(sizes.mean() - 8) < 0.1 and abs(sizes.var() - 40 * q * (1 - q)) < 0.3  # Binomial(40, q) sizes
    assert (sizes == 0).any()  # an empty batch is a step too (P = 0.8⁴⁰ ≈ 1.3e-4 per step)
    # independent of each other: two records are in the same batch with probability q²
    assert abs((included[:, 0] & included[:, 1]).mean() - q * q) < 5 * math.sqrt(q * q / len(batches))
    rerun = np.random.default_rng(3)
    again = [b for _ in range(3) for b in method.batches(lengths, 8, rerun)]
    assert all(np.array_equal(a, b) for a, b in zip(again, batches[:15]))


@pytest.mark.parametrize("sigma", [0.8, 3.0])
def test_epsilon_equals_an_independent_rdp_computation_for_the_sampler_used(distil, sigma, monkeypatch):
    from mia_kd.privacy.dp_sgd import DpSgd

    sizes: list[int] = []
    backward = DpSgd.backward

    def recording(self, model, loss_fn, ids, mask):
        sizes.append(ids.shape[0])
        return backward(self, model, loss_fn, ids, mask)

    monkeypatch.setattr(DpSgd, "backward", recording)
    _, method = distil("dp_sgd", sigma, epochs=3)
    report = method.report()
    n, batch_size = 40, 8  # conftest: N_RECORDS records, batches of 8
    assert report["sampling"] == "poisson"
    assert report["sample_rate"] == batch_size / n
    assert report["steps"] == len(sizes) == 3 * 5  # every step, an empty one included, is accounted
    assert len(set(sizes)) > 1  # batch sizes vary: Poisson, not a fixed-size partition
    assert report["noise_multiplier"] == sigma
    assert report["delta"] <= 1 / (10 * n)
    assert "rdp" in report["accountant"].lower()

    rdp = report["steps"] * np.array([rdp_sampled_gaussian(report["sample_rate"], sigma, a) for a in ORDERS])
    assert report["epsilon"] == pytest.approx(epsilon_from_rdp(rdp, ORDERS, report["delta"]), rel=1e-6)


def test_delta_defaults_to_a_tenth_of_one_over_n_and_is_configurable(distil):
    _, default = distil("dp_sgd", 2.0, epochs=1)
    assert default.report()["delta"] == pytest.approx(1 / (10 * 40))
    _, configured = distil("dp_sgd", 2.0, epochs=1, delta=1e-5)
    assert configured.report()["delta"] == 1e-5
    assert configured.report()["epsilon"] > default.report()["epsilon"]  # a smaller δ costs ε


def test_a_delta_above_one_over_n_is_refused_and_one_above_a_tenth_of_it_warned_about(distil, caplog):
    with pytest.raises(ConfigError, match=r"privacy.params.delta: got 0.05.*1 / 40"):
        distil("dp_sgd", 2.0, epochs=1, delta=0.05)
    with caplog.at_level("WARNING", logger="mia_kd.privacy.dp_sgd"):
        _, method = distil("dp_sgd", 2.0, epochs=1, delta=0.01)
    assert method.report()["delta"] == 0.01
    assert "delta 0.01 is above 1 / (10 · 40)" in caplog.text


def test_report_has_every_fact_the_guarantee_depends_on(distil):
    _, method = distil("dp_sgd", 2.0, epochs=1)
    report = method.report()
    assert set(report) >= {
        "epsilon", "delta", "sampling", "sample_rate", "noise_multiplier", "max_grad_norm", "steps", "accountant",
    }
    assert json.loads(json.dumps(report, default=float)) == report  # it goes into the trial row as JSON


def test_clip_only_clips_per_record_without_noise_and_claims_no_guarantee(distil, plain_one_epoch, weight_diff):
    base = plain_one_epoch
    clipped, method = distil("dp_sgd", 0.0, epochs=1, clip_only=True, max_grad_norm=0.01)
    again, _ = distil("dp_sgd", 0.0, epochs=1, clip_only=True, max_grad_norm=0.01)
    assert not method.is_neutral
    assert weight_diff(clipped.student, base.student) > 1e-4  # it acts (clipping, Poisson batches)
    assert weight_diff(clipped.student, again.student) == 0.0
    report = method.report()
    assert report["epsilon"] == math.inf and report["noise_multiplier"] == 0.0
    assert report["sampling"] == "poisson" and report["steps"] == 5 and report["clip_only"] is True
    with pytest.raises(ConfigError, match="privacy.params.clip_only"):
        build_method("dp_sgd", 1.0, {"clip_only": True}, MethodContext(vulnerability=None, vocab_size=64, seed=0))


def test_the_search_starts_where_noise_acts_and_the_class_range_keeps_the_neutral_point():
    from mia_kd.config import TrialConfig
    from mia_kd.privacy import StrengthSpace, method_class

    cls = method_class("dp_sgd")
    assert (cls.low, cls.neutral) == (0.0, 0.0)
    assert cls.strength_space(TrialConfig()) == StrengthSpace(0.5, cls.high, False)
    assert "formal bound on every record" not in cls.trades + cls.summary
    assert "fixed teacher" in cls.trades + cls.summary


def test_fit_takes_noise_only_steps_on_empty_poisson_batches():
    from mia_kd.config import TrainConfig
    from mia_kd.models.train import fit

    model = small_gpt2().train()
    rows = [[0, 5, 6, 7], [0, 8, 9], [0, 3, 4, 5, 6], [0, 1, 2], [0, 9, 9, 9]]
    method = build_method("dp_sgd", 1.0, {}, MethodContext(vulnerability=None, vocab_size=64, seed=0))
    sizes: list[int] = []
    backward = method.backward

    def recording(model, loss_fn, ids, mask):
        sizes.append(ids.shape[0])
        return backward(model, loss_fn, ids, mask)

    method.backward = recording
    before = [p.detach().clone() for p in model.parameters()]
    # batch size 1 of 5 records: q = 0.2, so about a third of the 20 steps draw no record at all
    report = fit(
        model, rows, TrainConfig(epochs=4, batch_size=1, lr=1e-3), token_mean_ce, seed=0, pad_id=0,
        device=torch.device("cpu"), desc="test", hooks=method,
    )
    assert report.steps == method.report()["steps"] == len(sizes) == 20
    assert 0 in sizes and math.isfinite(report.final_loss)
    assert any(not torch.equal(p0, p.detach()) for p0, p in zip(before, model.parameters()))
