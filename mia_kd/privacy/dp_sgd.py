"""``dp_sgd``: distil the student with differentially private SGD (per-sample clipping plus Gaussian noise).

Abadi et al. 2016, *Deep Learning with Differential Privacy*: every record's gradient is clipped to norm
``max_grad_norm`` (C), the clipped gradients are summed, Gaussian noise of standard deviation ``σ · C`` is
added and the sum is divided by the expected batch size. The clipping, noise and averaging are Opacus's
``DPOptimizer`` wrapped around the loop's AdamW, and ε is Opacus's ``RDPAccountant`` (Yousefpour et al.
2021, *Opacus: User-Friendly Differential Privacy Library in PyTorch*).

Strength = the noise multiplier σ: a single trial may set [0, 10], a sweep searches [0.5, 10]. σ = 0 is
neutral: the trainer skips every hook (plain distillation: no clipping, no noise, the loop's own batches).
Just above 0 the method still clips every record and samples Poisson batches, but the accountant's ε says
nothing: at the quickstart's scale (1000 records, batches of 32, 10 epochs, δ = 1e-4) ε is about 6000 at
σ = 0.1, 89 at 0.3, 21 at 0.5, 3.6 at 1 and 0.37 at 5. A front near 0 would measure clipping, not the
noise the method is named for, so the search starts at σ = 0.5 and clipping alone is its own point:
``strength: 0`` with ``clip_only: true`` clips per record on the same Poisson batches and adds no noise
(reported ε = inf: no guarantee).

Sampling and accounting: RDP accounting of DP-SGD (Mironov, Talwar and Zhang 2019, *Rényi Differential
Privacy of the Sampled Gaussian Mechanism*) assumes Poisson sampling, so that is how the batches are drawn
(:meth:`DpSgd.batches`, as Opacus's ``DPDataLoader`` does): at every step each transfer record enters
independently with probability q = batch_size / n, for ceil(n / batch_size) steps per epoch. Batch sizes
vary; an empty batch is still a step (noise only) and is accounted; gradients are divided by the expected
batch size q·n. ε is converted from RDP at δ (Balle et al. 2020, Theorem 21) over the orders
:data:`RDP_ORDERS`; δ defaults to 1 / (10·n), a configured δ above 1 / n is refused (a mechanism that
publishes one random record outright meets δ = 1 / n) and one above 1 / (10·n) is warned about. The
sampling and the noise come from the trial's seed, so a rerun reproduces the student bit for bit; the
guarantee holds for an attacker who does not know that seed.

What ε bounds: how much any one *transfer record* can change the distribution of the distilled student,
*given a fixed teacher* (the teacher's targets are a fixed function of each record). Here the transfer set
is the teacher's members, and every member also shaped the teacher, whose targets on every record carry
that influence into the student; ε does not bound what the student reveals about the teacher's
membership.

Per-sample gradients are computed here, not by Opacus's ``GradSampleModule``: on transformers' GPT-2 (tied
input/output embeddings, ``Conv1D``) its hooks mode fails ("stack expects each tensor to be equal size") and
its functorch mode fails ("Trying to add hooks twice"). Two exact paths, chosen once per run by trying
(:meth:`DpSgd.backward` logs which one runs, and the report names it as ``per_sample_gradients``):

- ``vectorised`` (:func:`vectorised_per_sample_gradients`): one forward/backward for the whole batch, as
  plain distillation takes. Each record gets its own copy of the weights (a stride-0 expand, so no copy
  in memory) and ``torch.func.vmap`` runs the student over the records with ``functional_call``; the
  trainer's ``loss_fn`` (teacher call included) then runs once on the batch's logits, and the gradient
  with respect to record b's copy is that record's share of the batch loss. The student is called without
  ``attention_mask``: with right padding, causal attention lets no padded position change a real one, and
  the mask would send transformers' mask code into a data-dependent branch that vmap cannot trace; the
  loss masks the padded positions. Exactness rests on the batch loss being the mean over the batch's
  real target tokens of per-token terms (``distill_loss``, ``lm_loss``: every term a masked token mean),
  so that it is ``Σ_b (n_b / N) · L_b`` with ``n_b`` record b's target tokens, ``N`` their sum and
  ``L_b`` the record's own loss; dividing by ``n_b / N`` gives ``∇L_b``.
- ``loop`` (:func:`per_sample_gradients`): one forward/backward per record, each record's loss being
  ``loss_fn`` on its own unpadded ``(1, length)`` slice (teacher call included). Exact for any
  ``loss_fn``, ``batch`` times the passes.

The choice: on the run's first non-empty batch both paths run in float32 with dropout off, and the
vectorised one is kept if vmap runs the model and its per-record gradients match the loop's to 1e-3 of
each record's gradient norm (a loss that is not a token mean, e.g. a mean of per-record means, fails this
as soon as the batch's lengths differ); otherwise the loop runs, with a warning saying why. A tied weight
is one parameter on both paths, so its per-sample gradient sums both of its uses. In training mode each
record draws its own dropout masks (``randomness="different"``), from another stream of random numbers
than the loop's, so the two paths train students that agree in distribution, not bit for bit; the
Poisson batches, the noise and so ε do not depend on the path. Memory: ``batch × n_params`` floats of
per-sample gradients on both paths (the same as Opacus would need).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, MethodParams, PrivacyMethod, StrengthSpace

if TYPE_CHECKING:  # numpy, torch and Opacus load when training starts, not when the method's metadata is read
    import numpy as np
    import torch
    from opacus.accountants import RDPAccountant

    from mia_kd.models.step import BatchLoss

log = logging.getLogger(__name__)

# RDP orders ε is minimised over: Opacus's default grid, fixed here so the reported ε does not move with it.
RDP_ORDERS: tuple[float, ...] = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))
SEARCH_LOW = 0.5  # the sweep's lowest σ: below it ε is in the tens to thousands (see the module docstring)


class DpSgdParams(MethodParams):
    max_grad_norm: float = Field(
        default=1.0, gt=0.0, description="per-sample clipping norm C (L2 over all trainable parameters)"
    )
    delta: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="δ of the reported (ε, δ) guarantee; None = 1 / (10 · number of transfer records); "
        "above 1 / n is refused, above 1 / (10 n) warned about",
    )
    clip_only: bool = Field(
        default=False,
        description="with strength 0: clip each record's gradient on Poisson batches but add no noise "
        "(measures clipping alone; no guarantee, ε = inf)",
    )


def sample_rate(batch_size: int, n_records: int) -> float:
    """q, the probability that a record enters a step's batch: ``batch_size / n_records``, at most 1."""
    return min(1.0, batch_size / n_records)


def per_sample_gradients(
    model: torch.nn.Module,
    loss_fn: BatchLoss,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    params: list[torch.nn.Parameter],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each record's loss and its gradient with respect to ``params``.

    ``input_ids`` and ``mask`` are ``(batch, seq)``, right-padded; record ``b``'s loss is ``loss_fn`` on its
    real tokens, the ``(1, length_b)`` slice of row ``b`` (right padding changes no real position's output,
    so this is its loss in the padded batch without the padded positions' cost). Returns the losses
    ``(batch,)`` (detached) and, per parameter, a ``(batch, *p.shape)`` tensor of per-record gradients
    (zeros where a record does not reach the parameter). An empty batch gives ``(0,)`` and ``(0, *p.shape)``.
    """
    import torch

    if input_ids.shape[0] == 0:
        return input_ids.new_zeros(0, dtype=torch.float32), [p.new_zeros((0, *p.shape)) for p in params]
    losses, grads = [], []
    for b, length in enumerate(mask.sum(dim=1).tolist()):
        ids, m = input_ids[b : b + 1, :length], mask[b : b + 1, :length]
        loss = loss_fn(model(input_ids=ids, attention_mask=m).logits, ids, m)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss of record {b} of the batch became {loss.item()}")
        grads.append(torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True))
        losses.append(loss.detach())
    return torch.stack(losses), [torch.stack(per_param) for per_param in zip(*grads)]


def vectorised_per_sample_gradients(
    model: torch.nn.Module,
    loss_fn: BatchLoss,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    params: list[torch.nn.Parameter],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The batch loss and each record's gradient of its own loss, in one vmapped forward/backward.

    Same per-record gradients as :func:`per_sample_gradients` (up to float rounding) when ``loss_fn`` is a
    mean over the batch's real target tokens (see the module docstring); a record with no target token
    (length 1) gets zeros. Returns the batch loss (detached scalar; NaN for an empty batch) and, per
    parameter, ``(batch, *p.shape)``. Raises whatever vmap raises on a model it cannot run.
    """
    import torch

    batch = input_ids.shape[0]
    if batch == 0:
        return input_ids.new_full((), float("nan"), dtype=torch.float32), [p.new_zeros((0, *p.shape)) for p in params]
    from torch.func import functional_call, vmap
    from torch.nn.attention import SDPBackend, sdpa_kernel

    name_of = {id(p): name for name, p in model.named_parameters()}
    names = [name_of[id(p)] for p in params]
    # One weight copy per record: gradients with respect to copy b are record b's alone.
    copies = [p.detach().unsqueeze(0).expand(batch, *p.shape).requires_grad_() for p in params]

    def record_logits(weights: list[torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
        # No attention_mask: right padding changes no real position under causal attention (module docstring).
        return functional_call(model, dict(zip(names, weights)), (), {"input_ids": ids[None]}).logits[0]

    # The math kernel: PyTorch's fused attention kernels have no vmap batching rule (vmap would loop over records).
    with sdpa_kernel([SDPBackend.MATH]):
        logits = vmap(record_logits, randomness="different")(copies, input_ids)
    loss = loss_fn(logits, input_ids, mask)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the training loss became {loss.item()}")
    grads = torch.autograd.grad(loss, copies, allow_unused=True, materialize_grads=True)
    # The batch loss is Σ_b (n_b / N) · L_b: divide record b's share by n_b / N to get ∇L_b.
    n_targets = mask[:, 1:].sum(dim=1).to(torch.float32)
    scale = torch.where(n_targets > 0, n_targets.sum() / n_targets.clamp_min(1.0), 0.0)
    return loss.detach(), [g * scale.view(batch, *([1] * (g.dim() - 1))).to(g.dtype) for g in grads]


def token_weighted_mean(losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Records' losses averaged with weights = their target tokens: the batch's token-mean loss. NaN if empty."""
    if losses.numel() == 0:
        return losses.new_full((), float("nan"))
    n_targets = mask[:, 1:].sum(dim=1).to(losses.dtype)
    return (losses * n_targets).sum() / n_targets.sum().clamp_min(1.0)


def _matches(fast: list[torch.Tensor], slow: list[torch.Tensor], rtol: float = 1e-3) -> bool:
    """Every record's gradient (over all parameters) within ``rtol`` of the loop's norm for that record."""
    import torch

    diff = torch.stack([(f - s).flatten(1).pow(2).sum(1) for f, s in zip(fast, slow)]).sum(0).sqrt()
    norm = torch.stack([s.flatten(1).pow(2).sum(1) for s in slow]).sum(0).sqrt()
    return bool((diff <= rtol * norm + 1e-12).all())


@METHODS.register()
class DpSgd(PrivacyMethod):
    hook = "optimizer"
    low = 0.0
    high = 10.0
    neutral = 0.0
    summary = (
        "DP-SGD via Opacus on Poisson-sampled batches: clip each record's gradient to max_grad_norm, "
        "add Gaussian noise of `strength` × it; `clip_only` at strength 0 clips without noise"
    )
    trades = (
        "an (ε, δ) bound on a transfer record's influence on the student given a fixed teacher (not on "
        "teacher membership) for a noisier, slower student"
    )
    Params = DpSgdParams
    clips_gradients = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.clip_only and self.strength != 0.0:
            raise ConfigError(
                f"privacy.params.clip_only: true adds no noise, so it needs privacy.strength 0; got strength "
                f"{self.strength:g} (drop clip_only for noise of that multiplier)"
            )
        self._accountant: RDPAccountant | None = None  # set by wrap_training, i.e. only when not neutral
        self._delta = float("nan")
        self._sample_rate = float("nan")
        self._path: str | None = None  # "vectorised" or "loop", chosen on the first non-empty batch

    @property
    def max_grad_norm(self) -> float:
        return self.params.max_grad_norm  # type: ignore[attr-defined]  # self.params is a DpSgdParams

    @property
    def clip_only(self) -> bool:
        return self.params.clip_only  # type: ignore[attr-defined]

    @property
    def is_neutral(self) -> bool:
        # σ = 0 is plain distillation unless clipping alone was asked for.
        return self.strength == self.neutral and not self.clip_only

    @classmethod
    def strength_space(cls, config: Any) -> StrengthSpace:
        """σ ∈ [0.5, 10]: where the noise, not the clipping, is what the search varies."""
        return StrengthSpace(SEARCH_LOW, float(cls.high), False)

    def batches(self, lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One epoch of Poisson batches: ``ceil(n / batch_size)`` steps, each record in each with probability q.

        Returns index arrays (ascending, possibly empty), drawn from ``rng`` (the loop's seeded generator).
        """
        import numpy as np

        n = len(lengths)
        q = sample_rate(batch_size, n)
        return [np.flatnonzero(rng.random(n) < q) for _ in range(-(-n // batch_size))]

    def wrap_training(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, batch_size: int, n_records: int, epochs: int
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """``model`` unchanged and ``optimizer`` wrapped in a seeded ``DPOptimizer`` with an RDP accountant.

        ``DPOptimizer`` shares the inner optimiser's ``param_groups`` and calls its ``step``, so an LR
        scheduler built on the inner optimiser still drives the learning rate.
        """
        if n_records < 1:
            raise ValueError("dp_sgd needs at least one transfer record")
        self._delta = self._check_delta(n_records)
        self._sample_rate = sample_rate(batch_size, n_records)
        device = next(model.parameters()).device
        # Imported here: listing or validating methods should not need torch or Opacus loaded.
        import torch
        from opacus.accountants import RDPAccountant
        from opacus.optimizers import DPOptimizer

        dp_optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.strength,
            max_grad_norm=self.max_grad_norm,
            # Under Poisson sampling the sum is divided by the expected batch size q·n, not the drawn one
            # (which would reveal how many records a step drew).
            expected_batch_size=min(batch_size, n_records),
            # The noise comes from the trial's seed, so a rerun reproduces the run bit for bit.
            generator=torch.Generator(device=device).manual_seed(self.context.seed),
        )
        self._accountant = RDPAccountant()
        dp_optimizer.attach_step_hook(self._accountant.get_optimizer_hook_fn(sample_rate=self._sample_rate))
        return model, dp_optimizer

    def _check_delta(self, n_records: int) -> float:
        delta = self.params.delta  # type: ignore[attr-defined]
        if delta is None:
            return 1.0 / (10 * n_records)
        if delta > 1.0 / n_records:
            raise ConfigError(
                f"privacy.params.delta: got {delta:g}, must be at most 1 / {n_records} (the transfer set's size); "
                f"default (null) 1 / (10 · {n_records})"
            )
        if delta > 1.0 / (10 * n_records):
            log.warning("dp_sgd: delta %g is above 1 / (10 · %d); the (ε, δ) guarantee is weak", delta, n_records)
        return float(delta)

    def backward(self, model: torch.nn.Module, loss_fn, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sets ``p.grad_sample`` ``(batch, *p.shape)`` on every trainable parameter for ``DPOptimizer.step``.

        Returns the batch's loss, the mean over its real target tokens (as plain distillation's), detached;
        NaN for an empty batch. The first non-empty batch chooses the path (module docstring).
        """
        params = [p for p in model.parameters() if p.requires_grad]
        if self._path is None and input_ids.shape[0]:
            self._path = self._choose_path(model, loss_fn, input_ids, mask, params)
        if self._path == "vectorised":
            loss, grads = vectorised_per_sample_gradients(model, loss_fn, input_ids, mask, params)
        else:
            losses, grads = per_sample_gradients(model, loss_fn, input_ids, mask, params)
            loss = token_weighted_mean(losses, mask)
        for p, grad_sample in zip(params, grads):
            p.grad_sample = grad_sample
        return loss

    @staticmethod
    def _choose_path(
        model: torch.nn.Module, loss_fn, input_ids: torch.Tensor, mask: torch.Tensor, params: list[torch.nn.Parameter]
    ) -> str:
        """``"vectorised"`` if vmap runs ``model`` and matches the loop on this batch (float32, no dropout),
        else ``"loop"``."""
        import torch

        was_training = model.training
        model.eval()  # no dropout: both paths must compute the same function
        try:
            with torch.autocast(input_ids.device.type, enabled=False):
                try:
                    _, fast = vectorised_per_sample_gradients(model, loss_fn, input_ids, mask, params)
                except (RuntimeError, NotImplementedError, TypeError, ValueError) as error:
                    log.warning("dp_sgd: vmap cannot run this model (%s: %s); per-sample gradients by a per-record "
                                "loop (batch-size times slower)", type(error).__name__, str(error).splitlines()[0])
                    return "loop"
                _, slow = per_sample_gradients(model, loss_fn, input_ids, mask, params)
        finally:
            model.train(was_training)
        if not _matches(fast, slow):
            log.warning("dp_sgd: vectorised per-sample gradients differ from the per-record loop's (is the loss a "
                        "mean over real target tokens?); per-sample gradients by a per-record loop")
            return "loop"
        log.info("dp_sgd: per-sample gradients vectorised (torch.func.vmap, one pass per batch)")
        return "vectorised"

    @property
    def steps(self) -> int:
        """Optimiser steps the accountant has seen (empty batches included)."""
        if self._accountant is None:
            return 0
        return sum(n_steps for _, _, n_steps in self._accountant.history)

    def report(self) -> dict[str, Any]:
        """ε at δ after training and every setting it depends on; empty at neutral strength (no DP).

        Clipping only: ε = inf (no noise, no guarantee), with the same sampling facts.
        """
        if self._accountant is None or self.steps == 0:
            return {}
        if self.clip_only:
            epsilon = math.inf
        else:
            epsilon = float(self._accountant.get_epsilon(delta=self._delta, alphas=list(RDP_ORDERS)))
        return {
            "epsilon": epsilon,
            "delta": self._delta,
            "sampling": "poisson",
            "sample_rate": self._sample_rate,
            "noise_multiplier": self.strength,
            "max_grad_norm": self.max_grad_norm,
            "steps": self.steps,
            "clip_only": self.clip_only,
            "per_sample_gradients": self._path,
            "accountant": f"rdp: opacus {version('opacus')} RDPAccountant, orders 1.1-63, Balle et al. 2020 conversion",
        }
