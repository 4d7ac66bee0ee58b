"""``nonorm``: the norms of exactly the top ``strength`` (whole) layers become x·γ + β; nothing else changes."""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from mia_kd.config import TrialConfig
from mia_kd.errors import ConfigError
from mia_kd.privacy import MethodContext, StrengthSpace, build_method, method_class
from mia_kd.privacy.nonorm import NoNorm, affine_of

H, VOCAB = 32, 64


def gpt2(n_layer: int = 2) -> torch.nn.Module:
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=VOCAB, n_layer=n_layer, n_embd=H, n_head=4, n_positions=64)
    return AutoModelForCausalLM.from_config(config).eval()


def llama(n_layer: int = 2) -> torch.nn.Module:
    torch.manual_seed(1)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=H, intermediate_size=64, num_hidden_layers=n_layer,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
    )
    return AutoModelForCausalLM.from_config(config).eval()


def randomise_norms(model: torch.nn.Module) -> None:
    """Give every norm non-trivial affine parameters, so that γ, β being copied is visible."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.copy_(torch.randn(p.shape, generator=g))


def method(strength: float):
    return build_method("nonorm", strength, {}, MethodContext(vulnerability=None, vocab_size=VOCAB, seed=0))


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.parametrize("build", [gpt2, llama])
def test_modify_student_at_neutral_returns_the_model_untouched(build):
    model = build()
    before = params(model)
    out = method(0.0).modify_student(model)
    assert out is model
    after = params(out)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert not any(isinstance(m, NoNorm) for m in out.modules())


@pytest.mark.parametrize(("n_layer", "n_top"), [(1, 1), (2, 1), (2, 2), (4, 2), (4, 3), (4, 4)])
def test_gpt2_replaces_the_norms_of_the_top_layers_only(n_layer, n_top):
    strength = float(n_top)
    model = gpt2(n_layer)
    randomise_norms(model)
    before = params(model)
    ids = torch.randint(0, VOCAB, (2, 6))
    shape = model(ids).logits.shape
    m = method(strength)
    out = m.modify_student(model)

    for i, layer in enumerate(out.transformer.h):
        top = i >= n_layer - n_top
        for norm in (layer.ln_1, layer.ln_2):
            assert isinstance(norm, NoNorm) if top else type(norm) is nn.LayerNorm, (i, top)
    assert type(out.transformer.ln_f) is nn.LayerNorm
    assert m.replaced == 2 * n_top
    # GPT-2's LayerNorms have weight and bias: names, shapes and values are all kept.
    after = params(out)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    logits = out(ids).logits
    assert logits.shape == shape and torch.isfinite(logits).all()


def test_llama_rmsnorms_become_affine_with_zero_bias():
    model = llama(2)
    randomise_norms(model)
    before = params(model)
    out = method(1).modify_student(model)
    first, last = out.model.layers
    assert isinstance(first.input_layernorm, LlamaRMSNorm) and isinstance(first.post_attention_layernorm, LlamaRMSNorm)
    assert isinstance(last.input_layernorm, NoNorm) and isinstance(last.post_attention_layernorm, NoNorm)
    assert isinstance(out.model.norm, LlamaRMSNorm)

    after = params(out)
    added = {f"model.layers.1.{n}.bias" for n in ("input_layernorm", "post_attention_layernorm")}
    assert after.keys() == before.keys() | added
    for k in before:
        assert torch.allclose(after[k], before[k], rtol=1e-5, atol=1e-6), k
    assert all(torch.equal(after[k], torch.zeros(H)) for k in added)
    assert torch.isfinite(out(torch.randint(0, VOCAB, (2, 6))).logits).all()


@pytest.mark.parametrize(
    "norm",
    [nn.LayerNorm(H), nn.RMSNorm(H), LlamaRMSNorm(H, eps=1e-6), GemmaRMSNorm(H, eps=1e-6)],
    ids=["LayerNorm", "RMSNorm", "LlamaRMSNorm", "GemmaRMSNorm"],
)
def test_nonorm_at_init_is_x_gamma_plus_beta(norm):
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in norm.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    # The norm's own affine part, by hand: Gemma scales by 1 + weight, the others by weight.
    gamma = norm.weight.detach() + (1.0 if isinstance(norm, GemmaRMSNorm) else 0.0)
    beta = norm.bias.detach() if getattr(norm, "bias", None) is not None else torch.zeros(H)
    got_gamma, got_beta = affine_of(norm)
    assert torch.allclose(got_gamma, gamma, rtol=1e-5, atol=1e-6)
    assert torch.allclose(got_beta, beta, atol=1e-6)

    x = torch.randn(3, 5, H, generator=g)
    assert torch.allclose(NoNorm(got_gamma, got_beta)(x), x * gamma + beta, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strength", [0.5, 1.5, 0.999])
def test_a_fraction_of_a_layer_is_refused_at_build(strength):
    # A float strength used to be rounded to a layer count: distinct strengths trained identical students.
    message = rf"privacy.strength: got {strength!r}, nonorm replaces a whole number of layers"
    with pytest.raises(ConfigError, match=message):
        method(strength)


def test_more_layers_than_the_student_has_is_refused_naming_its_range():
    with pytest.raises(ConfigError, match=r"privacy.strength: got 3, nonorm on this student allows \[0, 2\]"):
        method(3).modify_student(gpt2(2))
    with pytest.raises(ConfigError, match=r"allows \[0, 1\]"):
        method(2).modify_student(gpt2(1))


def trial_config(**student) -> TrialConfig:
    return TrialConfig(student=student)


@pytest.mark.parametrize(
    ("student", "layers"),
    [
        ({"config": {"n_layer": 1, "n_embd": 32, "n_head": 4}}, 1),
        ({"config": {"n_layer": 3, "n_embd": 32, "n_head": 4}}, 3),
        ({"model_type": "llama", "config": {"num_hidden_layers": 4, "hidden_size": 32, "intermediate_size": 64,
                                             "num_attention_heads": 4}}, 4),
    ],
)
def test_strength_space_is_the_integer_layer_counts_of_the_configured_student(student, layers):
    space = method_class("nonorm").strength_space(trial_config(**student))
    assert space == StrengthSpace(low=1.0, high=float(layers), integer=True)


def test_strength_space_of_a_one_layer_student_is_the_single_point_one():
    # The study's setting: one student layer, two outcomes (neutral, and the one layer replaced).
    space = method_class("nonorm").strength_space(TrialConfig())
    assert TrialConfig().student.config["n_layer"] == 1
    assert (space.low, space.high, space.integer) == (1, 1, True)


def test_strength_space_of_a_pretrained_student_is_read_from_its_config_file(tmp_path):
    GPT2Config(vocab_size=VOCAB, n_layer=5, n_embd=H, n_head=4).save_pretrained(tmp_path)  # config.json only
    space = method_class("nonorm").strength_space(trial_config(pretrained=str(tmp_path)))
    assert space == StrengthSpace(1.0, 5.0, True)


def test_strength_space_falls_back_to_the_class_range_when_the_student_cannot_be_read(tmp_path, caplog):
    cls = method_class("nonorm")
    with caplog.at_level(logging.WARNING):
        space = cls.strength_space(trial_config(pretrained=str(tmp_path / "missing")))
    assert space == StrengthSpace(1.0, cls.high, True)
    assert "cannot read the student's layer count" in caplog.text


def test_no_layer_stack_is_a_config_error():
    model = gpt2(2)
    model.config.n_layer = 3  # the config no longer describes the modules
    with pytest.raises(ConfigError, match=r"nonorm: expected one stack of 3 layers"):
        method(1).modify_student(model)


def test_distilling_at_non_neutral_strength_trains_the_modified_student(distil):
    result, m = distil("nonorm", 2.0)  # both layers of the 2-layer student
    assert m.replaced == 4 and math.isfinite(result.report.final_loss)
    student = result.student
    assert all(isinstance(n, NoNorm) for layer in student.transformer.h for n in (layer.ln_1, layer.ln_2))
    assert type(student.transformer.ln_f) is nn.LayerNorm
    gamma = student.transformer.h[0].ln_1.weight
    assert torch.isfinite(gamma).all() and not torch.allclose(gamma, torch.ones(H))  # trained from LayerNorm's 1


def test_class_variables():
    cls = method_class("nonorm")
    assert (cls.low, cls.high, cls.neutral, cls.integer_strength) == (0.0, 128.0, 0.0, True)


def test_deep_copy_still_works():
    model = method(2).modify_student(gpt2())
    clone = copy.deepcopy(model)
    ids = torch.randint(0, VOCAB, (1, 4))
    assert torch.equal(clone(ids).logits, model(ids).logits)
