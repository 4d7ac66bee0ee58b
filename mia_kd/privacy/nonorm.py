"""``nonorm``: replace the normalisation layers in the student's top layers by an element-wise affine map.

Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: normalisation layers
shape how confidently a student fits its transfer records; removing them in part of the network trades
training stability and utility for less membership leakage. In the top ``strength`` of the student's L
transformer layers, every norm becomes :class:`NoNorm`, ``y = x · γ + β``, with γ and β the norm's own
affine parameters at replacement time (β = 0 where the norm has no bias). Norms outside the layer stack
(GPT-2's final ``ln_f``, Llama's final ``norm``) are kept.

The effect is discrete, so the strength is a whole number of layers: 0 is neutral (plain distillation),
1 replaces the top layer, L all of them. A trial accepts 0 ≤ strength ≤ ``MAX_LAYERS`` (a strength above
the student's L is refused when the student is built); a sweep searches the integers 1..L of the
configured student (:meth:`NoNormalisation.strength_space`), so a 1-layer student (the study's) is one
trial, not a float range whose points train identical students.

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
from typing import TYPE_CHECKING, Any

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, MethodContext, MethodParams, PrivacyMethod, StrengthSpace
from mia_kd.privacy._modules import (
    children_of,
    layer_stack,
    num_layers,
    probe_dtype_device,
    replace_child,
    student_config,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

_PROBE = 16.0  # c: large enough that eps/c² is below float32 resolution for eps ≤ 1e-5
MAX_LAYERS = 128  # the largest strength a trial accepts: more layers than any current open causal LM has


def __getattr__(name: str) -> Any:
    # The module class lives with torch in _layers (loaded on first use); still importable from here.
    if name == "NoNorm":
        from mia_kd.privacy._layers import NoNorm

        return NoNorm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_norm(module: nn.Module) -> bool:
    from torch import nn

    return isinstance(module, (nn.LayerNorm, nn.RMSNorm)) or type(module).__name__.endswith("RMSNorm")


def affine_of(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The norm's effective ``(γ, β)``, each of its normalised shape."""
    import torch
    from torch import nn

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


@METHODS.register()
class NoNormalisation(PrivacyMethod):
    hook = "architecture"
    low = 0.0
    high = float(MAX_LAYERS)
    neutral = 0.0
    integer_strength = True
    summary = "replace the norms of the top `strength` student layers (a whole number, 0..L) by x·γ + β"
    trades = "training stability and utility for less confident fitting of the transfer set"

    replaced: int = 0  # norms replaced by the last modify_student

    def __init__(self, strength: float, params: MethodParams, context: MethodContext) -> None:
        super().__init__(strength, params, context)
        if self.strength != int(self.strength) or not self.low <= self.strength <= self.high:
            raise ConfigError(
                f"privacy.strength: got {strength!r}, nonorm replaces a whole number of layers: "
                f"0 (neutral) to the student's layer count (at most {MAX_LAYERS})"
            )

    @classmethod
    def strength_space(cls, config) -> StrengthSpace:
        """The integers 1..L, L the configured student's layer count (read from its config, no weights)."""
        try:
            layers = num_layers(student_config(config).get_text_config())
        except (ConfigError, AttributeError) as exc:
            logger.warning("nonorm: cannot read the student's layer count (%s); searching [1, %d]", exc, MAX_LAYERS)
            return StrengthSpace(1.0, cls.high, True)
        return StrengthSpace(1.0, float(min(layers, MAX_LAYERS)), True)

    def modify_student(self, model: nn.Module) -> nn.Module:
        if self.is_neutral:
            return model
        layers = layer_stack(model, self.name)
        n = int(self.strength)
        if n > len(layers):
            raise ConfigError(
                f"privacy.strength: got {self.strength:g}, nonorm on this student allows [0, {len(layers)}] "
                "(its number of layers)"
            )
        from mia_kd.privacy._layers import NoNorm

        count = 0
        for layer in list(layers)[len(layers) - n :]:
            for parent, attr, child in children_of(layer):
                if is_norm(child):
                    gamma, beta = affine_of(child)
                    replace_child(parent, attr, NoNorm(gamma, beta).train(child.training))
                    count += 1
        self.replaced = count
        logger.info("nonorm: replaced %d norms in the top %d of %d layers", count, n, len(layers))
        return model
