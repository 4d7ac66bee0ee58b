"""The scoring plan encodes a trial's scoring inputs as the trial always has, pass by pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.attacks import Passes
from mia_kd.models.scoring import Scored, ScoringPlan, score, task_loss
from mia_kd.models.tokenizer import encode, scored_texts, train_bpe

CPU = torch.device("cpu")
MAX_LENGTH = 12
PUBLIC = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):\n    return a + b", "Import OS.", "x"]
ATTACK = ["Membership Inference asks whether a record was in the TRAINING set, token by token.", "Short.", "", "y = 1"]
UTILITY = ["The Lazy Dog sleeps all afternoon under the old oak tree by the river.", "ok"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(PUBLIC * 5, vocab_size=300)


def _build(tokenizer, passes: Passes) -> ScoringPlan:
    return ScoringPlan.build(
        tokenizer, ATTACK, UTILITY, PUBLIC, passes, max_length=MAX_LENGTH, batch_size=2, device=CPU
    )


def test_build_encodes_every_pass_as_the_trial_did(tokenizer):
    plan = _build(tokenizer, Passes(moments=True, lowercase=True, reference=True, prefix_records=2))
    # The trial's own encoding, written out: rows cut at max_length, texts the spans they cover, the
    # lowercased spans not cut again, the prefix of the first public records never cut.
    rows, cut = encode(tokenizer, ATTACK, max_length=MAX_LENGTH)
    utility_rows, utility_cut = encode(tokenizer, UTILITY, max_length=MAX_LENGTH)
    texts = scored_texts(tokenizer, ATTACK, rows, max_length=MAX_LENGTH)
    assert plan.rows == rows and plan.utility_rows == utility_rows
    assert plan.texts == texts
    assert plan.utility_texts == scored_texts(tokenizer, UTILITY, utility_rows, max_length=MAX_LENGTH)
    assert plan.lowercase_rows == encode(tokenizer, [t.lower() for t in texts], max_length=None)[0]
    assert plan.prefix == encode(tokenizer, [" ".join(PUBLIC[:2])], max_length=10**9)[0][0]
    assert plan.n_truncated == cut + utility_cut >= 2
    assert plan.texts[0] != ATTACK[0]  # the long record was cut, and so was its text
    assert plan.moments and plan.pad_id == tokenizer.pad_token_id and plan.batch_size == 2


def test_build_skips_the_passes_no_attack_needs(tokenizer):
    plan = _build(tokenizer, Passes(moments=False, lowercase=False, reference=False, prefix_records=0))
    assert plan.lowercase_rows is None and plan.prefix is None and not plan.moments


def test_model_scores_each_pass_with_the_plans_batching(tokenizer):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=16, n_head=2, n_positions=64)
    ).eval()
    plan = _build(tokenizer, Passes(moments=True, lowercase=True, reference=False, prefix_records=1))
    reference, reference_loss = plan.reference(model)
    scored = plan.model(model, reference)

    def expected(rows, **kw):
        return score(model, rows, pad_id=tokenizer.pad_token_id, batch_size=2, device=CPU, context=64, **kw)

    assert isinstance(scored, Scored) and scored.attack.texts == plan.texts and scored.attack.reference is reference
    pairs = [
        (scored.attack.target.logprobs, expected(plan.rows, moments=True).logprobs),
        (scored.attack.target.std, expected(plan.rows, moments=True).std),
        (scored.attack.lowercase.logprobs, expected(plan.lowercase_rows).logprobs),
        (scored.attack.prefixed.logprobs, expected(plan.rows, prefix=plan.prefix).logprobs),
        (scored.utility.logprobs, expected(plan.utility_rows).logprobs),
        (reference.logprobs, expected(plan.rows).logprobs),
    ]
    for got, want in pairs:
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert reference_loss == task_loss(expected(plan.utility_rows))

    def flat(logits, ids, mask):  # a serve-stage transform wraps every pass
        return torch.zeros_like(logits)

    uniform = plan.model(model, None, transform=flat)
    for stats in (uniform.attack.target, uniform.attack.lowercase, uniform.attack.prefixed, uniform.utility):
        for lp in stats.logprobs:
            np.testing.assert_allclose(lp, -np.log(len(tokenizer)), rtol=1e-6)
