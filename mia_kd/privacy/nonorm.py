"""``nonorm``: replace the normalisation layers in the student's top layers by an element-wise affine map.

Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: normalisation layers
shape how confidently a student fits its transfer records; removing them in part of the network trades
training stability and utility for less membership leakage. In the top ``n = round(strength · L)`` of the
student's L transformer layers, every norm becomes :class:`NoNorm`, ``y = x · γ + β``, with γ and β the
norm's own affine parameters at replacement time (β = 0 where the norm has no bias). Norms outside the
layer stack (GPT-2's final ``ln_f``, Llama's final ``norm``) are kept.

``round`` is Python's (half to even), and with few layers the fraction is coarse: with L = 1 a strength
below 0.5 (and 0.5 itself) replaces nothing; with L = 2, strength 0.5 replaces the top layer.

The layers are the one outermost ``nn.ModuleList`` of length ``config.num_hidden_layers``; norms are
found by type: ``nn.LayerNorm``, ``nn.RMSNorm``, and transformers' per-model RMSNorm classes, which share
no base class, recognised by a class name ending in ``RMSNorm`` (a type check: nothing else is keyed on
names). Those RMSNorm classes parametrise their scale differently (Llama: ``weight``; Gemma:
``1 + weight``), so their γ and β are read off the module's own output on ±c·1 (an input of RMS c, which
every RMS norm maps to ±1 before its affine part): γ = (f(c·1) − f(−c·1)) / 2, β = (f(c·1) + f(−c·1)) / 2.
Parameter names are kept: ``weight`` (γ) and ``bias`` (β, new where the norm had none).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, PrivacyMethod
from mia_kd.privacy._modules import children_of, layer_stack, probe_dtype_device, replace_child

logger = logging.getLogger(__name__)

_PROBE = 16.0  # c: large enough that eps/c² is below float32 resolution for eps ≤ 1e-5


class NoNorm(nn.Module):
    """``(..., *shape) → (..., *shape)``: ``x · weight + bias``, no normalisation."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.RMSNorm)) or type(module).__name__.endswith("RMSNorm")


def affine_of(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The norm's effective ``(γ, β)``, each of its normalised shape."""
    if isinstance(norm, nn.LayerNorm):
        # Mean-subtracting: the probe below would map c·1 to 0, so read the parameters directly.
        shape = tuple(norm.normalized_shape)
        dtype, device = probe_dtype_device(norm)
        gamma = norm.weight if norm.weight is not None else torch.ones(shape, dtype=dtype, device=device)
        beta = norm.bias if norm.bias is not None else torch.zeros(shape, dtype=dtype, device=device)
        return gamma.detach(), beta.detach()
    shape = getattr(norm, "normalized_shape", None)
    if shape is None:
        weight = getattr(norm, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ConfigError(f"nonorm: cannot tell the normalised shape of {type(norm).__name__} (no weight)")
        shape = weight.shape
    dtype, device = probe_dtype_device(norm)
    ones = torch.full(tuple(shape), _PROBE, dtype=dtype, device=device)
    with torch.no_grad():
        plus, minus = norm(ones), norm(-ones)
    return (plus - minus) / 2, (plus + minus) / 2


@METHODS.register("nonorm")
class NoNormalisation(PrivacyMethod):
    name = "nonorm"
    hook = "architecture"
    low = 0.0
    high = 1.0
    neutral = 0.0
    summary = "replace the norms of the top strength·L student layers by an element-wise affine map"
    trades = "training stability and utility for less confident fitting of the transfer set"

    replaced: int = 0  # norms replaced by the last modify_student

    def modify_student(self, model: nn.Module) -> nn.Module:
        if self.is_neutral:
            return model
        layers = layer_stack(model, self.name)
        n = round(self.strength * len(layers))
        count = 0
        if n == 0:
            logger.warning("nonorm: strength %g of %d layers rounds to 0 layers; the student is unchanged",
                           self.strength, len(layers))
        for layer in list(layers)[len(layers) - n :]:
            for parent, attr, child in children_of(layer):
                if is_norm(child):
                    gamma, beta = affine_of(child)
                    replace_child(parent, attr, NoNorm(gamma, beta).train(child.training))
                    count += 1
        self.replaced = count
        logger.info("nonorm: replaced %d norms in the top %d of %d layers", count, n, len(layers))
        return model
