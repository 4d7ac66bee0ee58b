"""``output_noise``: add Gaussian noise to every logit of the teacher's targets (or of a served student).

Output perturbation, the generic baseline against which the targeted methods of Cui, Zhang, Pei 2025
(*On Membership Inference Attacks in Knowledge Distillation*) are compared: i.i.d. ``N(0, strength²)``
noise (in nats) on all logits before softening blurs the fine detail of the distribution that separates
members from non-members, untargeted, at the price of noisier targets everywhere. No formal
(differential-privacy) guarantee comes with it. Adding noise commutes with adding a constant to all
logits, so the targets do not depend on the logits' offset.

Strength ∈ [0, 5] nats (standard deviation); 0 is neutral (plain distillation).

Where the noise comes from differs by stage, on purpose:

- train stage (teacher targets): one ``torch.Generator`` per method instance, seeded with the trial's
  seed and created lazily on the logits' device, is a stream. Every step gets fresh noise, so a record
  seen in several epochs is shown several independent noisy views of the teacher's distribution, as the
  method intends for training. The batches are themselves seeded, so a run is reproducible.
- serve stage (the student's logits at scoring time): the noise of a record is a function of
  (trial seed, the record's token ids, position) only: one generator per row, seeded from a hash of the
  seed and the row's real (unmasked) tokens, draws that row's noise. A record's scores then do not depend
  on the batch it was scored in, its padding, or the batch size, and scoring it twice gives the same
  answer (a deployed model answering the same query). Padding positions get no noise. Noise is drawn on
  the logits' device: the same seed gives the same noise on the same kind of device.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from mia_kd.errors import MiaKdError
from mia_kd.privacy._base import METHODS, MethodContext, MethodParams, PrivacyMethod

if TYPE_CHECKING:  # numpy and torch load when the method runs, not when its metadata is read
    import numpy as np
    import torch


def record_seed(seed: int, tokens: np.ndarray) -> int:
    """A 64-bit generator seed from the trial ``seed`` and a record's token ids ``(length,)``."""
    import numpy as np

    digest = hashlib.blake2b(digest_size=8)
    digest.update(int(seed).to_bytes(8, "little", signed=True))
    digest.update(np.ascontiguousarray(tokens, dtype="<i8").tobytes())
    return int.from_bytes(digest.digest(), "little")


@METHODS.register()
class OutputNoise(PrivacyMethod):
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
        import torch

        # Created on first use because the device is only known then; re-seeded only if the device changes.
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.context.seed)
        return self._generator

    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Train stage: ``(batch, seq, vocab)`` logits → logits + ``N(0, strength²)`` from the seeded stream."""
        import torch

        if self.is_neutral:
            return logits
        # Draw in at least float32 so the noise stream does not depend on a half-precision model's dtype.
        noise_dtype = torch.promote_types(logits.dtype, torch.float32)
        generator = self._generator_on(logits.device)
        noise = torch.randn(logits.shape, generator=generator, device=logits.device, dtype=noise_dtype)
        return (logits + self.strength * noise).to(logits.dtype)

    def serve_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Serve stage: ``(batch, seq, vocab)`` logits → logits + noise seeded per record; ``mask`` (1 = real
        token, None = all real) says which positions are the record's."""
        import numpy as np
        import torch

        if self.is_neutral:
            return logits
        if input_ids is None:
            raise MiaKdError("output_noise at serve stage needs the input ids: its noise is seeded per record")
        noise_dtype = torch.promote_types(logits.dtype, torch.float32)
        out = logits.to(noise_dtype, copy=True)
        ids = input_ids.detach().cpu().numpy()
        real = np.ones(ids.shape, dtype=bool) if mask is None else mask.detach().cpu().numpy().astype(bool)
        for j in range(ids.shape[0]):
            positions = np.flatnonzero(real[j])
            if positions.size == 0:
                continue
            generator = torch.Generator(device=logits.device)
            generator.manual_seed(record_seed(self.context.seed, ids[j, positions]))
            noise = torch.randn(
                (positions.size, logits.shape[-1]), generator=generator, device=logits.device, dtype=noise_dtype
            )
            index = torch.as_tensor(positions, device=logits.device)
            out[j, index] += self.strength * noise
        return out.to(logits.dtype)
