"""Training precision: which autocast dtype each setting gives, and that bf16 autocast trains fp32 weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.config import TrainConfig
from mia_kd.distill.loss import lm_loss
from mia_kd.models.train import autocast_dtype, fit


def test_autocast_dtype_rules():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "auto") is None  # auto means bf16 only on a CUDA GPU that supports it
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), "fp32") is None
    expected = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else None
    assert autocast_dtype(torch.device("cuda"), "auto") is expected


@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_fit_under_autocast_keeps_fp32_weights_and_learns(amp):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=40, n_layer=1, n_embd=32, n_head=4, n_positions=32))
    rng = np.random.default_rng(0)
    rows = [[0, *rng.integers(1, 8, size=12).tolist()] for _ in range(32)]  # a small alphabet: learnable
    schedule = TrainConfig(epochs=6, batch_size=8, lr=1e-2)
    report = fit(model, rows, schedule, lm_loss, seed=0, pad_id=0, device=torch.device("cpu"), desc="t", amp_dtype=amp)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert np.isfinite(report.final_loss) and report.final_loss < np.log(40) - 1.0  # well below uniform
