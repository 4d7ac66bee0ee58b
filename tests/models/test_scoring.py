import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.models.scoring import score, task_loss


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


def test_scores_do_not_depend_on_batch_size_or_order(model, rows):
    one = _score(model, rows, batch_size=1, moments=True)
    many = _score(model, rows, batch_size=16, moments=True)
    perm = np.random.default_rng(1).permutation(len(rows))
    shuffled = _score(model, [rows[i] for i in perm], batch_size=16, moments=True)
    for i, j in enumerate(perm):
        np.testing.assert_allclose(shuffled.logprobs[i], one.logprobs[j], atol=1e-5)
    for a, b in zip(one.logprobs, many.logprobs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(one.mean, many.mean, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(one.std, many.std, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_logprobs_match_a_plain_forward_pass(model, rows):
    stats = _score(model, rows[:5], batch_size=4, moments=True)
    for row, lp, mu, sd in zip(rows[:5], stats.logprobs, stats.mean, stats.std, strict=True):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([row])).logits[0, :-1], -1)
        expected = logp[torch.arange(len(row) - 1), torch.tensor(row[1:])].numpy()
        assert lp.dtype == np.float32 and lp.shape == (len(row) - 1,)
        np.testing.assert_allclose(lp, expected, atol=1e-5)
        p = logp.exp()
        np.testing.assert_allclose(mu, (p * logp).sum(-1).numpy(), atol=1e-5)
        np.testing.assert_allclose(sd, (p * (logp - (p * logp).sum(-1, keepdim=True)) ** 2).sum(-1).sqrt().numpy(), atol=1e-4)


def test_prefixed_pass_scores_only_the_records_own_tokens(model, rows):
    prefix = [0, 7, 8, 9]
    stats = _score(model, rows[:4], batch_size=2, prefix=prefix)
    for row, lp in zip(rows[:4], stats.logprobs, strict=True):
        with torch.no_grad():
            full = [*prefix, *row[1:]]
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0, :-1], -1)
        expected = logp[torch.arange(len(full) - 1), torch.tensor(full[1:])].numpy()[len(prefix) - 1 :]
        assert lp.shape == (len(row) - 1,)
        np.testing.assert_allclose(lp, expected, atol=1e-5)


def test_task_loss_is_token_weighted_negative_mean_logprob(model, rows):
    stats = _score(model, rows, batch_size=8)
    flat = np.concatenate(stats.logprobs).astype(np.float64)
    assert task_loss(stats) == pytest.approx(-flat.mean(), rel=1e-9)
