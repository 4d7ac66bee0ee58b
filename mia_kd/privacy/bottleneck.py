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

Parameters: an input projection holds H·I weights (+ I biases); its replacement H·B + B·I (+ B + I), fewer
only when B·(H + I + b) < H·I (b = 1 with biases, 0 without), i.e. B below about H·I / (H + I): 0.8·H for
GPT-2's I = 4H. A strength whose B is wider than that gives the student *more* feed-forward parameters,
not less capacity. Such strengths stay valid for a single trial (logged), but the sweep searches from the
first strength whose width reduces the count (:meth:`Bottleneck.strength_space`, computed from the
configured student's H, I and bias on the meta device, no weights): ``low = 1 − B_max / H`` with B_max
the widest reducing B, e.g. 1 − 25/32 ≈ 0.22 for H = 32, I = 128. Where the student cannot be read, the
search starts at ``SAFE_LOW`` = 0.5 (B ≤ H/2), which reduces the count whenever I > H + 1.

The replacement is a fresh module (random init from a generator seeded by the trial's seed): the original
projection's weights are dropped, and its parameter names change (``….down.weight``, ``….up.weight``).
Every other module, parameter name and value is untouched; the model is changed in place and returned.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, PrivacyMethod, StrengthSpace
from mia_kd.privacy._modules import (
    children_of,
    hidden_size,
    intermediate_size,
    meta_model,
    projection_dims,
    replace_child,
    text_config,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mia_kd.privacy._layers import BottleneckProjection

logger = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # The module class lives with torch in _layers (loaded on first use); still importable from here.
    if name == "BottleneckProjection":
        from mia_kd.privacy._layers import BottleneckProjection

        return BottleneckProjection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SAFE_LOW = 0.5  # searched low where the student cannot be read: B ≤ H/2 reduces parameters for any I > H + 1


def bottleneck_width(strength: float, hidden: int) -> int:
    """``B = max(1, round((1 - strength) · H))``."""
    return max(1, round((1.0 - strength) * hidden))


def projection_parameters(hidden: int, out: int, width: int | None, *, bias: bool) -> int:
    """Parameters of an H→I projection (``width`` None) or of its H→B→I replacement."""
    if width is None:
        return hidden * out + (out if bias else 0)
    return hidden * width + width * out + ((width + out) if bias else 0)


def widest_reducing_width(hidden: int, out: int, *, bias: bool) -> int:
    """The largest B whose H→B→I replacement has fewer parameters than H→I (0 if none does)."""
    # B·(H + I + b) < H·I  ⟺  B < H·I / (H + I + b)
    return math.ceil(hidden * out / (hidden + out + int(bias))) - 1


def feed_forward_projections(model: nn.Module, h: int, i: int) -> list[tuple[nn.Module, str, nn.Module]]:
    """``(parent, attribute, projection)`` of every H→I projection whose parent also holds an I→H one."""
    feed_forward_parents = {id(parent) for parent, _, child in children_of(model) if projection_dims(child) == (i, h)}
    return [
        (parent, attr, child)
        for parent, attr, child in children_of(model)
        if projection_dims(child) == (h, i) and id(parent) in feed_forward_parents
    ]


@METHODS.register()
class Bottleneck(PrivacyMethod):
    hook = "architecture"
    low = 0.0
    high = 0.9
    neutral = 0.0
    summary = (
        "squeeze each feed-forward input projection H→I through B = (1 - strength)·H units "
        "(searched from where B·(H + I) < H·I, fewer parameters)"
    )
    trades = "student capacity (utility) for less memorisation of the transfer set"

    replaced: int = 0  # projections replaced by the last modify_student

    @classmethod
    def strength_space(cls, config) -> StrengthSpace:
        """From the first strength whose width reduces the feed-forward parameters (see the module doc)."""
        try:
            model = meta_model(config)
            text = text_config(model, cls.name)
            h, i = hidden_size(text), intermediate_size(text)
            projections = feed_forward_projections(model, h, i) if h != i else []
            if not projections:
                raise ConfigError(f"no feed-forward input projection {h}→{i} in {type(model).__name__}")
        except Exception as exc:  # noqa: BLE001  (any model code may fail on the meta device: fall back, say so)
            logger.warning(
                "bottleneck: cannot read the student's sizes (%s); searching [%g, %g]", exc, SAFE_LOW, cls.high
            )
            return StrengthSpace(SAFE_LOW, cls.high, False)
        bias = any(getattr(child, "bias", None) is not None for _, _, child in projections)
        width = widest_reducing_width(h, i, bias=bias)
        # At low = 1 − B/H the width is exactly B (round of a whole number); one unit wider adds parameters.
        low = min(max(1.0 - width / h, cls.low), cls.high)
        return StrengthSpace(low, cls.high, False)

    def modify_student(self, model: nn.Module) -> nn.Module:
        import torch

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

        count = 0
        for parent, attr, child in feed_forward_projections(model, h, i):
            bias = getattr(child, "bias", None) is not None
            grows = projection_parameters(h, i, width, bias=bias) >= projection_parameters(h, i, None, bias=bias)
            if count == 0 and grows:
                logger.warning(
                    "bottleneck: strength %g gives width %d, as many or more parameters than the %d→%d projection "
                    "it replaces (fewer from width %d down)",
                    self.strength, width, h, i, widest_reducing_width(h, i, bias=bias),
                )
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
        import torch

        from mia_kd.privacy._layers import BottleneckProjection

        weight = old.weight
        new = BottleneckProjection(hidden, width, out, bias=getattr(old, "bias", None) is not None)
        with torch.no_grad():
            for linear in (new.down, new.up):
                # Drawn on the CPU in float32 so the init does not depend on device or dtype.
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * std)
                if linear.bias is not None:
                    linear.bias.zero_()
        return new.to(dtype=weight.dtype, device=weight.device).train(old.training)
