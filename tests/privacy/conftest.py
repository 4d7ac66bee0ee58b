"""Fakes for privacy-method tests: a tiny random teacher, random token rows, a hand-made vulnerability.

``distil(name, strength, **params)`` distils a fresh tiny student (same seed every time) with that method
and returns the :class:`~mia_kd.distill.trainer.DistillResult` and the method; compare against ``plain``,
``distil("none", 0.0)`` run once per session (distilling is the slow part of these tests).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.config import DistillConfig
from mia_kd.distill.trainer import distill as run_distill
from mia_kd.privacy import MethodContext, Vulnerability, build_method

VOCAB = 64
N_RECORDS = 40


def tiny_model(seed: int, n_layer: int = 2) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_layer=n_layer, n_embd=32, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
    return AutoModelForCausalLM.from_config(config)


@pytest.fixture(scope="session")
def rows() -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [[0, *rng.integers(1, VOCAB, size=int(n)).tolist()] for n in rng.integers(4, 16, size=N_RECORDS)]


@pytest.fixture(scope="session")
def record_ids() -> list[str]:
    return [f"r{i:03d}" for i in range(N_RECORDS)]


@pytest.fixture(scope="session")
def vulnerability(record_ids, rows) -> Vulnerability:
    """Members ranked by a made-up score: r039 most vulnerable; the top 10 flagged; their tokens vulnerable."""
    ranked = tuple(reversed(record_ids))
    flagged = ranked[:10]
    mask = np.zeros(VOCAB, dtype=bool)
    for rid in flagged:
        mask[rows[record_ids.index(rid)][1:]] = True
    return Vulnerability(
        attack="loss", member_ids=ranked, scores=np.linspace(1.0, 0.0, N_RECORDS), n_vulnerable=10,
        token_mask=mask, tokens_rule="all",
    )


@pytest.fixture(scope="session")
def teacher() -> torch.nn.Module:
    return tiny_model(123).eval()


@pytest.fixture(scope="session")
def distil(rows, record_ids, vulnerability, teacher):
    """``distil(name, strength, *, student_layers=2, epochs=2, n_records=None, **params)``; ``n_records``
    distils on the first that many records only (a quick run)."""

    def run(name: str, strength: float, *, student_layers: int = 2, epochs: int = 2, n_records: int | None = None,
            **params):
        used, ids = rows[:n_records], record_ids[:n_records]
        context = MethodContext(vulnerability=vulnerability, vocab_size=VOCAB, seed=0, n_records=len(used))
        method = build_method(name, strength, params, context)
        config = DistillConfig(epochs=epochs, batch_size=8, lr=1e-3)
        result = run_distill(
            tiny_model(7, student_layers), teacher, used, config, seed=0, pad_id=0, device=torch.device("cpu"),
            method=method, record_ids=ids,
        )
        return result, method

    return run


@pytest.fixture(scope="session")
def plain(distil):
    """Plain distillation (``none``) with ``distil``'s defaults: what every neutral strength must reproduce."""
    result, _ = distil("none", 0.0)
    return result


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest absolute difference between same-named parameters (the two must have the same names)."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    with torch.no_grad():
        return max(float((pa[k] - pb[k]).abs().max()) for k in pa)


@pytest.fixture
def logits() -> torch.Tensor:
    """``(2, 5, VOCAB)`` random logits, the same in every test."""
    return torch.randn(2, 5, VOCAB, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def tiny_student():
    """``tiny_student(seed, n_layer=2)``: a fresh tiny GPT-2 (see :func:`tiny_model`; conftest is not importable)."""
    return tiny_model


@pytest.fixture(scope="session")
def weight_diff():
    """``weight_diff(a, b) -> float``: see :func:`max_weight_difference` (conftest is not importable)."""
    return max_weight_difference
