"""A trained model is cached by its key: the second request loads the first one's weights."""

from __future__ import annotations

import logging

import torch

from mia_kd.config import ModelConfig, TrainConfig
from mia_kd.distill.loss import lm_loss
from mia_kd.models.cache import ModelCache, trained_model
from mia_kd.models.tokenizer import encode, train_bpe

CPU = torch.device("cpu")
TEXTS = ["def add(a, b):\n    return a + b", "The quick brown fox jumps over the lazy dog."] * 4


def test_a_second_request_reuses_the_cached_model(tmp_path, caplog):
    tokenizer = train_bpe(TEXTS, vocab_size=280)
    rows = encode(tokenizer, TEXTS, max_length=32)[0]
    model_config = ModelConfig(config={"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 32})
    schedule = TrainConfig(epochs=2, batch_size=4)
    cache = ModelCache(tmp_path)

    def request():
        return trained_model(
            cache, "teacher", "k1", model_config, tokenizer, rows, schedule, lm_loss, seed=3, device=CPU,
            progress=False, amp=None,
        )

    with caplog.at_level(logging.INFO, logger="mia_kd"):
        first, hit = request()
        assert not hit and "teacher: trained and cached as k1" in caplog.text
        second, hit = request()
    assert hit and "teacher: reusing the cached model k1" in caplog.text
    assert not second.training
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
