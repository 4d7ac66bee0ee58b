import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.models.scoring import score, task_loss
from tests._tolerance import float32_atol, forward_ops


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(GPT2Config(vocab_size=50, n_layer=2, n_embd=32, n_head=4, n_positions=64)).eval()


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    return [[0, *rng.integers(1, 50, size=int(n)).tolist()] for n in rng.integers(2, 30, size=37)]


def _score(model, rows, **kw):
    return score(model, rows, pad_id=0, device=torch.device("cpu"), **kw)


def _tolerances(model, rows) -> tuple[float, float]:
    """``(atol of log p and of μ, atol of σ²)`` between two float32 passes over ``rows`` in other batches.

    Both are bounded by the vocabulary's largest |log p| (μ is a p-weighted mean of log p; σ² of squared
    deviations from μ, each at most that large). σ is compared squared: a square root's error is unbounded
    near 0, σ²'s is not (and a σ² within ``t`` of the other with σ ≥ 0 is the same σ to within √t).
    """
    with torch.no_grad():
        scale = max(torch.log_softmax(model(torch.tensor([row])).logits, -1).abs().max().item() for row in rows)
    ops = forward_ops(model.config, max(map(len, rows)))
    return float32_atol(scale, ops=ops), float32_atol(scale**2, ops=2 * ops)


def test_scores_do_not_depend_on_batch_size_or_order(model, rows):
    one = _score(model, rows, batch_size=1, moments=True)
    many = _score(model, rows, batch_size=16, moments=True)
    perm = np.random.default_rng(1).permutation(len(rows))
    shuffled = _score(model, [rows[i] for i in perm], batch_size=16, moments=True)
    atol, var_atol = _tolerances(model, rows)
    for i, j in enumerate(perm):
        np.testing.assert_allclose(shuffled.logprobs[i], one.logprobs[j], atol=atol, rtol=0)
    for a, b in zip(one.logprobs, many.logprobs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
    for a, b in zip(one.mean, many.mean, strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
    for a, b in zip(one.std, many.std, strict=True):
        np.testing.assert_allclose(a**2, b**2, atol=var_atol, rtol=0)


def test_logprobs_match_a_plain_forward_pass(model, rows):
    stats = _score(model, rows[:5], batch_size=4, moments=True)
    atol, var_atol = _tolerances(model, rows[:5])
    for row, lp, mu, sd in zip(rows[:5], stats.logprobs, stats.mean, stats.std, strict=True):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([row])).logits[0, :-1], -1)
        expected = logp[torch.arange(len(row) - 1), torch.tensor(row[1:])].numpy()
        assert lp.dtype == np.float32 and lp.shape == (len(row) - 1,)
        np.testing.assert_allclose(lp, expected, atol=atol, rtol=0)
        p = logp.exp()
        np.testing.assert_allclose(mu, (p * logp).sum(-1).numpy(), atol=atol, rtol=0)
        variance = (p * (logp - (p * logp).sum(-1, keepdim=True)) ** 2).sum(-1).numpy()
        np.testing.assert_allclose(sd**2, variance, atol=var_atol, rtol=0)


def test_prefixed_pass_scores_only_the_records_own_tokens(model, rows):
    prefix = [0, 7, 8, 9]
    stats = _score(model, rows[:4], batch_size=2, prefix=prefix)
    atol, _ = _tolerances(model, [[*prefix, *row[1:]] for row in rows[:4]])
    for row, lp in zip(rows[:4], stats.logprobs, strict=True):
        with torch.no_grad():
            full = [*prefix, *row[1:]]
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0, :-1], -1)
        expected = logp[torch.arange(len(full) - 1), torch.tensor(full[1:])].numpy()[len(prefix) - 1 :]
        assert lp.shape == (len(row) - 1,)
        np.testing.assert_allclose(lp, expected, atol=atol, rtol=0)


def test_task_loss_is_token_weighted_negative_mean_logprob(model, rows):
    stats = _score(model, rows, batch_size=8)
    flat = np.concatenate(stats.logprobs).astype(np.float64)
    assert task_loss(stats) == pytest.approx(-flat.mean(), rel=1e-9)


@pytest.mark.parametrize("context", [2, 3, 8, 9, 16])
def test_windows_predict_every_token_once_within_the_context(context):
    from mia_kd.models.scoring import windows

    for n in range(1, 60):
        row = list(range(n))
        pieces = windows(row, context)
        predicted = [token for keep, piece in pieces for token in piece[keep + 1 :]]
        assert predicted == row[1:]
        assert all(len(piece) <= context for _, piece in pieces)
        assert all(piece == row[row.index(piece[0]) : row.index(piece[0]) + len(piece)] for _, piece in pieces)
        if n <= context:
            assert pieces == [(0, row)]


def test_long_rows_are_scored_with_a_sliding_window_not_cut(model, rows):
    long_rows = [row * 5 for row in rows[:6]]  # up to 150 tokens; the model has 64 positions
    stats = _score(model, long_rows, batch_size=4, moments=True, context=64)
    for row, lp, mu in zip(long_rows, stats.logprobs, stats.mean, strict=True):
        assert lp.shape == mu.shape == (len(row) - 1,)
        assert np.isfinite(lp).all()
    # The first window is the row's own beginning: those tokens score as they would alone.
    head = _score(model, [row[:64] for row in long_rows], batch_size=4, context=64)
    atol, _ = _tolerances(model, [row[:64] for row in long_rows])
    for lp, first in zip(stats.logprobs, head.logprobs, strict=True):
        np.testing.assert_allclose(lp[:63], first, atol=atol, rtol=0)
    # Rows that fit are unaffected by the context argument, and the result does not depend on batching.
    np.testing.assert_allclose(
        np.concatenate(_score(model, rows, batch_size=16, context=64).logprobs),
        np.concatenate(_score(model, rows, batch_size=16).logprobs),
        atol=atol, rtol=0,
    )
    single = _score(model, long_rows, batch_size=1, context=64)
    for a, b in zip(single.logprobs, stats.logprobs, strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
