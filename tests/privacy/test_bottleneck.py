"""``bottleneck``: exactly the feed-forward input projections become H→B→I; nothing else changes."""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, LlamaConfig

from mia_kd.config import TrialConfig
from mia_kd.errors import ConfigError
from mia_kd.privacy import MethodContext, StrengthSpace, build_method, method_class
from mia_kd.privacy.bottleneck import BottleneckProjection

H, VOCAB = 32, 64


def gpt2(n_layer: int = 2, n_inner: int | None = None) -> torch.nn.Module:
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=VOCAB, n_layer=n_layer, n_embd=H, n_head=4, n_positions=64, n_inner=n_inner)
    return AutoModelForCausalLM.from_config(config)


def llama(n_layer: int = 2, intermediate: int = 64) -> torch.nn.Module:
    torch.manual_seed(1)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=H, intermediate_size=intermediate, num_hidden_layers=n_layer,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
    )
    return AutoModelForCausalLM.from_config(config)


def method(strength: float, seed: int = 0):
    return build_method("bottleneck", strength, {}, MethodContext(vulnerability=None, vocab_size=VOCAB, seed=seed))


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


# Names are fine in tests (the method itself must not use them): the expected replacements, by hand.
EXPECTED = {
    "gpt2": (gpt2, lambda i: [f"transformer.h.{i}.mlp.c_fc"], 4 * H),
    "llama": (llama, lambda i: [f"model.layers.{i}.mlp.gate_proj", f"model.layers.{i}.mlp.up_proj"], 64),
}


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_modify_student_at_neutral_returns_the_model_untouched(arch):
    model = EXPECTED[arch][0]()
    before = params(model)
    out = method(0.0).modify_student(model)
    assert out is model
    after = params(out)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize(("strength", "width"), [(0.5, 16), (0.25, 24), (0.9, 3), (0.01, 32)])
def test_replaces_exactly_the_feed_forward_input_projections(arch, strength, width):
    assert width == max(1, round((1 - strength) * H))  # the formula, by hand above
    build, names, inter = EXPECTED[arch]
    n_layer = 3
    model = build(n_layer).eval()
    before = params(model)
    ids = torch.randint(0, VOCAB, (2, 7))
    shape = model(ids).logits.shape
    m = method(strength)
    out = m.modify_student(model)

    expected = [name for i in range(n_layer) for name in names(i)]
    replaced = [name for name, mod in out.named_modules() if isinstance(mod, BottleneckProjection)]
    assert replaced == expected
    assert m.replaced == len(expected) == n_layer * (2 if arch == "llama" else 1)
    modules = dict(out.named_modules())
    for name in expected:
        block = modules[name]
        assert block.down.weight.shape == (width, H) and block.up.weight.shape == (inter, width)
        x = torch.randn(5, H)
        assert block(x).shape == (5, inter)

    after = params(out)
    gone = {k for k in before if any(k.startswith(p + ".") for p in expected)}
    new = {k for k in after if any(k.startswith(p + ".") for p in expected)}
    assert gone == {f"{p}.{t}" for p in expected for t in ("weight", "bias") if f"{p}.{t}" in before}
    assert all(".down." in k or ".up." in k for k in new)
    assert after.keys() - new == before.keys() - gone
    for k in before.keys() - gone:
        assert after[k].shape == before[k].shape and torch.equal(after[k], before[k]), k

    logits = out(ids).logits
    assert logits.shape == shape and torch.isfinite(logits).all()


def test_init_is_seeded_by_the_trial_seed():
    a, b, c = (method(0.5, seed).modify_student(gpt2()) for seed in (3, 3, 4))
    wa, wb, wc = (m.transformer.h[1].mlp.c_fc.up.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_attention_projection_of_width_i_is_not_replaced():
    # n_inner = 3H: GPT-2's fused attention projection c_attn is H→3H too, but has no 3H→H sibling.
    model = method(0.5).modify_student(gpt2(n_inner=3 * H))
    replaced = [name for name, mod in model.named_modules() if isinstance(mod, BottleneckProjection)]
    assert replaced == ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"]


def test_no_projection_found_is_a_config_error():
    model = llama()
    model.config.intermediate_size = 48  # the config no longer describes the modules
    message = r"bottleneck: no feed-forward input projection H→I found in LlamaForCausalLM"
    with pytest.raises(ConfigError, match=message):
        method(0.5).modify_student(model)
    with pytest.raises(ConfigError, match="equals intermediate size"):
        method(0.5).modify_student(llama(intermediate=H))


def test_distilling_at_non_neutral_strength_trains_the_modified_student(distil):
    result, m = distil("bottleneck", 0.5)
    assert m.replaced == 2 and math.isfinite(result.report.final_loss)
    blocks = [mod for mod in result.student.modules() if isinstance(mod, BottleneckProjection)]
    assert len(blocks) == 2 and blocks[0].down.weight.shape == (16, H)
    untrained = method(0.5).modify_student(gpt2())  # same seed: the same initial bottleneck weights
    assert not torch.allclose(blocks[0].down.weight, untrained.transformer.h[0].mlp.c_fc.down.weight)
    assert all(torch.isfinite(p).all() for p in result.student.parameters())


# ---- the searched range starts where the student gets fewer feed-forward parameters, not more

STUDENTS = {
    "gpt2 I=4H": ("gpt2", {"n_layer": 2, "n_embd": H, "n_head": 4}),
    "gpt2 I=3H": ("gpt2", {"n_layer": 1, "n_embd": H, "n_head": 4, "n_inner": 3 * H}),
    "gpt2 I=8H": ("gpt2", {"n_layer": 1, "n_embd": H, "n_head": 4, "n_inner": 8 * H}),
    "llama I=2H": ("llama", {"num_hidden_layers": 2, "hidden_size": H, "intermediate_size": 2 * H,
                             "num_attention_heads": 4, "num_key_value_heads": 4}),
    "llama I=1.5H": ("llama", {"num_hidden_layers": 1, "hidden_size": H, "intermediate_size": 48,
                               "num_attention_heads": 4, "num_key_value_heads": 4}),
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def modified_params(model_type: str, config: dict, strength: float) -> tuple[int, int]:
    """(parameters of the student, parameters after bottleneck at ``strength``)."""
    def build():
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, vocab_size=VOCAB, **config))

    return n_params(build()), n_params(method(strength).modify_student(build()))


@pytest.mark.parametrize("student", list(STUDENTS))
def test_search_space_starts_where_the_student_gets_fewer_parameters(student):
    model_type, config = STUDENTS[student]
    cls = method_class("bottleneck")
    space = cls.strength_space(TrialConfig(student={"model_type": model_type, "config": config}))
    assert not space.integer and space.high == cls.high and cls.neutral < space.low < space.high
    original, at_low = modified_params(model_type, config, space.low)
    assert at_low < original
    # one unit of width wider (the largest strength below low that changes B) is not a reduction
    original, below = modified_params(model_type, config, space.low - 1 / H)
    assert below >= original


def test_search_space_for_the_usual_i_equals_4h_starts_near_0_2():
    # B·(H + I + 1) < H·I with I = 4H = 128: B ≤ 25, so low = 1 − 25/32
    config = TrialConfig(student={"config": {"n_layer": 1, "n_embd": H, "n_head": 4}})
    space = method_class("bottleneck").strength_space(config)
    assert space == StrengthSpace(low=1 - 25 / H, high=0.9, integer=False)


def test_search_space_falls_back_to_the_documented_safe_low(tmp_path, caplog):
    cls = method_class("bottleneck")
    with caplog.at_level(logging.WARNING):
        space = cls.strength_space(TrialConfig(student={"pretrained": str(tmp_path / "missing")}))
    assert space == StrengthSpace(low=0.5, high=cls.high, integer=False)
    assert "cannot read the student's sizes" in caplog.text


def test_a_strength_that_adds_parameters_is_allowed_but_logged(caplog):
    with caplog.at_level(logging.WARNING):
        method(0.1).modify_student(gpt2())
    assert "more parameters" in caplog.text


def test_deep_copy_still_works():
    # The trial may copy or cache students: the replacement modules must be ordinary modules.
    model = method(0.5).modify_student(gpt2()).eval()
    clone = copy.deepcopy(model)
    ids = torch.randint(0, VOCAB, (1, 4))
    assert torch.equal(clone(ids).logits, model(ids).logits)
