"""``bottleneck``: squeeze every feed-forward input projection of the student through a narrow layer.

Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: a student with less
capacity in its feed-forward blocks memorises fewer transfer records. Each projection H→I (hidden to
intermediate) becomes H→B→I with a GELU in between, ``B = max(1, round((1 - strength) · H))``.

Which modules are the feed-forward input projections is decided from the config and module types only:
a dense projection (``nn.Linear`` or transformers' ``Conv1D``) mapping H → I whose parent also holds an
I → H projection (the block's output projection). The sibling condition keeps attention projections out
even when I happens to equal a multiple of H that an attention projection has (GPT-2's fused H→3H
``c_attn`` with ``n_inner = 3H``). Llama-style gated blocks have *two* input projections (gate and up),
both H → I: both are replaced, so a Llama student gets 2 replacements per layer, GPT-2 one.

The replacement is a fresh module (random init from a generator seeded by the trial's seed): the original
projection's weights are dropped, and its parameter names change (``….down.weight``, ``….up.weight``).
Every other module, parameter name and value is untouched; the model is changed in place and returned.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, PrivacyMethod
from mia_kd.privacy._modules import (
    children_of,
    hidden_size,
    intermediate_size,
    projection_dims,
    replace_child,
    text_config,
)

logger = logging.getLogger(__name__)


class BottleneckProjection(nn.Module):
    """``(..., H) → (..., I)`` through ``B`` units: ``up(gelu(down(x)))``."""

    def __init__(self, hidden: int, width: int, out: int, *, bias: bool) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, width, bias=bias)
        self.act = nn.GELU()
        self.up = nn.Linear(width, out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


def bottleneck_width(strength: float, hidden: int) -> int:
    """``B = max(1, round((1 - strength) · H))``."""
    return max(1, round((1.0 - strength) * hidden))


@METHODS.register("bottleneck")
class Bottleneck(PrivacyMethod):
    name = "bottleneck"
    hook = "architecture"
    low = 0.0
    high = 0.9
    neutral = 0.0
    summary = "squeeze each feed-forward input projection H→I through B = (1 - strength)·H units"
    trades = "student capacity (utility) for less memorisation of the transfer set"

    replaced: int = 0  # projections replaced by the last modify_student

    def modify_student(self, model: nn.Module) -> nn.Module:
        if self.is_neutral:
            return model
        config = text_config(model, self.name)
        h, i = hidden_size(config), intermediate_size(config)
        if h == i:
            raise ConfigError(
                f"{self.name}: hidden size {h} equals intermediate size in {type(model).__name__}; "
                "feed-forward input projections cannot be told from attention projections"
            )
        width = bottleneck_width(self.strength, h)
        std = float(getattr(config, "initializer_range", 0.02))
        generator = torch.Generator().manual_seed(self.context.seed)

        feed_forward_parents = {
            id(parent) for parent, _, child in children_of(model) if projection_dims(child) == (i, h)
        }
        count = 0
        for parent, attr, child in children_of(model):
            if projection_dims(child) != (h, i) or id(parent) not in feed_forward_parents:
                continue
            replace_child(parent, attr, self._replacement(child, h, width, i, std, generator))
            count += 1
        if count == 0:
            raise ConfigError(
                f"{self.name}: no feed-forward input projection H→I found in {type(model).__name__}; "
                f"looked for nn.Linear/Conv1D {h}→{i} (config hidden size → intermediate size) "
                f"next to a {i}→{h} projection"
            )
        self.replaced = count
        logger.info("bottleneck: replaced %d projections %d→%d by %d→%d→%d", count, h, i, h, width, i)
        return model

    @staticmethod
    def _replacement(
        old: nn.Module, hidden: int, width: int, out: int, std: float, generator: torch.Generator
    ) -> BottleneckProjection:
        weight = old.weight
        new = BottleneckProjection(hidden, width, out, bias=getattr(old, "bias", None) is not None)
        with torch.no_grad():
            for linear in (new.down, new.up):
                # Drawn on the CPU in float32 so the init does not depend on device or dtype.
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * std)
                if linear.bias is not None:
                    linear.bias.zero_()
        return new.to(dtype=weight.dtype, device=weight.device).train(old.training)
