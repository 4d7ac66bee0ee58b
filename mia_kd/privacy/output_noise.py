"""``output_noise``: add Gaussian noise to every logit of the teacher's targets.

Output perturbation, the generic baseline against which the targeted methods of Cui, Zhang, Pei 2025
(*On Membership Inference Attacks in Knowledge Distillation*) are compared: i.i.d. ``N(0, strength²)``
noise (in nats) on all logits before softening blurs the fine detail of the teacher's distribution that
separates members from non-members, untargeted, at the price of noisier targets everywhere. No formal
(differential-privacy) guarantee comes with it.

The noise comes from one ``torch.Generator`` per method instance, seeded with the trial's seed and created
lazily on the logits' device, so a run is reproducible while every batch gets fresh noise.

Strength ∈ [0, 5] nats (standard deviation); 0 is neutral (plain distillation). At serve stage the noise is
added to the student's logits at scoring time.
"""

from __future__ import annotations

import torch

from mia_kd.privacy._base import METHODS, MethodContext, MethodParams, PrivacyMethod


@METHODS.register("output_noise")
class OutputNoise(PrivacyMethod):
    name = "output_noise"
    hook = "targets"
    low = 0.0
    high = 5.0
    neutral = 0.0
    summary = "add Gaussian noise of standard deviation `strength` (nats) to every logit"
    trades = "less leakage on all tokens for noisier targets on all of them"
    stages = frozenset({"train", "serve"})

    def __init__(self, strength: float, params: MethodParams, context: MethodContext) -> None:
        super().__init__(strength, params, context)
        self._generator: torch.Generator | None = None

    def _generator_on(self, device: torch.device) -> torch.Generator:
        # Created on first use because the device is only known then; re-seeded only if the device changes.
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.context.seed)
        return self._generator

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` logits → logits + ``N(0, strength²)`` noise, same dtype and device."""
        if self.is_neutral:
            return logits
        # Draw in at least float32 so the noise stream does not depend on a half-precision model's dtype.
        noise_dtype = torch.promote_types(logits.dtype, torch.float32)
        generator = self._generator_on(logits.device)
        noise = torch.randn(logits.shape, generator=generator, device=logits.device, dtype=noise_dtype)
        return (logits + self.strength * noise).to(logits.dtype)
