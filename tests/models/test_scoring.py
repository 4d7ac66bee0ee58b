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


def test_prefixed_pass_equals_the_prefixed_rows_scored_whole_with_long_prefixes_and_windows(model, rows):
    # The prefixed pass skips the model's head on the prefix's predictions (logits_to_keep) where a batch
    # holds only first pieces; a 50-token prefix pushes most rows past the 64-position context, so batches
    # also mix first windows with later ones, which take every position.
    prefix = [0, *range(1, 50)]
    skip = len(prefix) - 1
    prefixed = _score(model, rows, batch_size=4, prefix=prefix, moments=True, context=64)
    whole = _score(model, [[*prefix, *row[1:]] for row in rows], batch_size=4, moments=True, context=64)
    atol, var_atol = _tolerances(model, [[*prefix, *row[1:]][:64] for row in rows])  # windows: at most 64
    for row, got_lp, got_mu, got_sd, lp, mu, sd in zip(
        rows, prefixed.logprobs, prefixed.mean, prefixed.std, whole.logprobs, whole.mean, whole.std, strict=True
    ):
        assert got_lp.shape == (len(row) - 1,)
        np.testing.assert_allclose(got_lp, lp[skip:], atol=atol, rtol=0)
        np.testing.assert_allclose(got_mu, mu[skip:], atol=atol, rtol=0)
        np.testing.assert_allclose(got_sd**2, sd[skip:] ** 2, atol=var_atol, rtol=0)


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


@pytest.mark.parametrize("block", [1, 50 * 3, 50 * 5, 50 * 5 * 2, 10**9])
def test_token_stats_in_blocks_are_one_pass_over_the_batch(block):
    """Blocks of one position, of 3 of a row's 5 positions, of one row, of two of the 3 rows, the whole batch."""
    from mia_kd.models.scoring import token_stats

    gen = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(3, 5, 50, generator=gen)  # (batch, seq, vocab)
    targets = torch.randint(0, 50, (3, 5), generator=gen)
    stats = token_stats(logits, targets, moments=True, block=block)
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    expected = torch.stack([logp.gather(-1, targets[..., None]).squeeze(-1), mu,
                            (p * (logp - mu[..., None]) ** 2).sum(-1).sqrt()])
    assert stats.shape == (3, 3, 5) and stats.dtype == torch.float32
    torch.testing.assert_close(stats, expected, atol=float32_atol(logp, ops=50), rtol=0)
    torch.testing.assert_close(token_stats(logits, targets, moments=False, block=block), expected[:1], atol=0, rtol=0)


def test_no_batchs_results_outlive_it(model, rows, monkeypatch):
    """Each batch's logits and statistics are freed before the next batch's forward pass.

    What the scorer keeps between batches sits between one batch's large temporaries and the next: kept per
    batch (as views of each batch's results were), it fragmented glibc's heap and peak RSS grew with the
    number of records scored (benchmarks/memory.py).
    """
    import weakref

    import mia_kd.models.scoring as scoring

    alive: list[weakref.ref] = []
    forwards = 0

    def before_forward(module, args, kwargs):
        nonlocal forwards
        forwards += 1
        assert all(ref() is None for ref in alive), "a previous batch's tensors are still alive"

    def after_forward(module, args, kwargs, output):
        alive.append(weakref.ref(output.logits))

    def tracked(*args, **kwargs):
        result = original(*args, **kwargs)
        alive.append(weakref.ref(result))
        return result

    original = scoring.token_stats
    monkeypatch.setattr(scoring, "token_stats", tracked)
    handles = [model.register_forward_pre_hook(before_forward, with_kwargs=True),
               model.register_forward_hook(after_forward, with_kwargs=True)]
    try:
        stats = _score(model, rows, batch_size=4, moments=True)
    finally:
        for handle in handles:
            handle.remove()
    assert forwards == -(-len(rows) // 4) and len(alive) == 2 * forwards
    # The pass's statistics are views of one array allocated before the first batch.
    arrays = [a for column in (stats.logprobs, stats.mean, stats.std) for a in column]
    assert all(a.base is not None for a in arrays) and len({id(a.base) for a in arrays}) == 1


def test_small_blocks_score_as_large_ones(model, rows, monkeypatch):
    import functools

    import mia_kd.models.scoring as scoring

    whole = _score(model, rows, batch_size=16, moments=True)
    monkeypatch.setattr(scoring, "token_stats", functools.partial(scoring.token_stats, block=30))
    blocked = _score(model, rows, batch_size=16, moments=True)
    for column in ("logprobs", "mean", "std"):
        for a, b in zip(getattr(whole, column), getattr(blocked, column), strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=float32_atol(a, ops=2 * 50), rtol=0)


def test_one_token_rows_have_no_predictions(model):
    stats = _score(model, [[0], [0], [0, 5, 6]], batch_size=2, moments=True)
    assert [len(lp) for lp in stats.logprobs] == [0, 0, 2] and [len(sd) for sd in stats.std] == [0, 0, 2]
