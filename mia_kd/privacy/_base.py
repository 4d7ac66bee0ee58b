"""The privacy-method plug-in point (docs/architecture.md §6).

A privacy method changes how a student is distilled, never how it is attacked. Each has a registry name
(= its file name), a strength range with a **neutral** value at which it is exactly plain distillation, and
acts through one hook:

- ``targets``: transforms the teacher's logits before softening (``transform_logits``);
- ``records``: chooses the transfer records (``select_records``);
- ``architecture``: changes the student's modules (``modify_student``);
- ``optimizer``: changes the optimiser step (``wrap_training``).

Methods whose ``stages`` include ``"serve"`` can instead wrap the *student's* logits at scoring time
(``privacy.stage: serve``), the study's own setting, through ``serve_logits``: by default the same
transform as ``transform_logits``; a method overrides it where serving needs another behaviour (a
released distribution must be scale-free; served noise must not depend on the batch a record came in).

Every target transform is invariant to adding a constant to all logits of a position (softmax cannot
tell the two apart, so neither may the transform). ``strength_space(config)`` is the range the sweep
searches: where the method starts acting in the direction it claims, as integers where its effect is
discrete; the class's ``[low, high]`` is what a single trial may set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from mia_kd.errors import MiaKdError
from mia_kd.registry import Registry

if TYPE_CHECKING:  # torch and numpy load when a method runs, not when its metadata is read (`mia-kd methods`)
    import numpy as np
    import torch

Hook = Literal["none", "targets", "records", "architecture", "optimizer"]
Stage = Literal["train", "serve"]


@dataclass(frozen=True)
class StrengthSpace:
    """The strengths a sweep searches for one method and student: ``[low, high]``, integers if ``integer``."""

    low: float
    high: float
    integer: bool = False


class MethodParams(BaseModel):
    """Base of every method's extra parameters (beyond ``strength``): unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Vulnerability:
    """Which members the teacher exposes, computed once per teacher from its attack scores on all members.

    ``member_ids`` are the record ids of *all* members ranked most vulnerable first (by the teacher's score
    under ``attack``, descending); the first ``n_vulnerable`` of them are the vulnerable subset (the members
    the attack flags at its calib threshold: the study's true positives). ``token_mask`` is ``(vocab,)``
    bool: the vulnerable tokens.
    """

    attack: str
    member_ids: tuple[str, ...]
    scores: np.ndarray  # (n_members,) float64, descending
    n_vulnerable: int
    token_mask: np.ndarray  # (vocab,) bool
    tokens_rule: str  # "all" | "over_represented"

    @property
    def vulnerable_ids(self) -> tuple[str, ...]:
        return self.member_ids[: self.n_vulnerable]


@dataclass(frozen=True)
class MethodContext:
    """What a method may read: the teacher's vulnerability, the vocabulary size, the trial's seed."""

    vulnerability: Vulnerability | None
    vocab_size: int
    seed: int
    n_records: int = 0  # size of the transfer set before any record selection
    extra: dict[str, Any] = field(default_factory=dict)


class PrivacyMethod:
    """Base class: identity hooks. Subclasses set the class variables and override their one hook."""

    name: ClassVar[str]  # the registry key, i.e. the module's file name: set by ``@METHODS.register()``
    hook: ClassVar[Hook]
    low: ClassVar[float]
    high: ClassVar[float]
    neutral: ClassVar[float] = 0.0
    integer_strength: ClassVar[bool] = False  # a discrete effect: only whole-number strengths are allowed
    summary: ClassVar[str]  # one line for `mia-kd methods`
    trades: ClassVar[str] = ""  # what it is expected to trade (README table)
    stages: ClassVar[frozenset[Stage]] = frozenset({"train"})
    needs_vulnerability: ClassVar[bool] = False
    Params: ClassVar[type[MethodParams]] = MethodParams

    def __init__(self, strength: float, params: MethodParams, context: MethodContext) -> None:
        self.strength = float(strength)
        self.params = params
        self.context = context
        # Fail at construction, not mid-sweep, when the vulnerability a method reads was not supplied.
        if self.needs_vulnerability and not self.is_neutral and context.vulnerability is None:
            raise MiaKdError(
                f"privacy method {self.name!r} at strength {self.strength:g} needs the teacher's vulnerability "
                "(MethodContext.vulnerability is None)"
            )

    @property
    def is_neutral(self) -> bool:
        return self.strength == self.neutral

    @classmethod
    def strength_space(cls, config: Any) -> StrengthSpace:
        """The strengths to search for the trial ``config`` (a :class:`~mia_kd.config.TrialConfig`).

        Default: the class range, as floats (as integers for a method with ``integer_strength``). A method
        whose useful range depends on the student overrides this; it reads configs only, never weights.
        """
        return StrengthSpace(float(cls.low), float(cls.high), cls.integer_strength)

    # ---- hooks: each method overrides the one it acts through; all are the identity here
    def transform_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, vocab)`` teacher logits (or, at serve stage, student logits) → transformed logits."""
        return logits

    def serve_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Serve stage: ``(batch, seq, vocab)`` student logits → the logits the scorer reads; ``mask`` is
        ``(batch, seq)`` with 1 on real (right-padded) tokens. Default: :meth:`transform_logits`."""
        return self.transform_logits(logits, input_ids, mask)

    def select_records(self, member_ids: Sequence[str]) -> list[int]:
        """Indices (into ``member_ids``, the transfer set in its order) of the records to distil on."""
        return list(range(len(member_ids)))

    def modify_student(self, model: torch.nn.Module) -> torch.nn.Module:
        """The student to distil (changed in place or replaced)."""
        return model

    # Optimiser-step hook (see mia_kd.models.step.StepHooks): the loop's own gradient clipping is skipped
    # when a method clips gradients itself (DP-SGD clips per sample).
    clips_gradients: ClassVar[bool] = False

    def wrap_training(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, batch_size: int, n_records: int, epochs: int
    ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """The module and optimiser the training loop should use (e.g. DP-SGD's)."""
        return model, optimizer

    def backward(self, model: torch.nn.Module, loss_fn, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Forward, loss and gradients for one batch; returns the (detached) loss."""
        from mia_kd.models.step import standard_backward

        return standard_backward(model, loss_fn, input_ids, mask)

    def batches(self, lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        """One epoch's index batches: the loop's shuffled, length-bucketed partition (DP-SGD samples its own)."""
        from mia_kd.models.batching import bucketed_batches

        return bucketed_batches(lengths, batch_size, rng)

    def report(self) -> dict[str, Any]:
        """Extra facts for the trial row (e.g. ε for DP-SGD), after training."""
        return {}


# Every public module of mia_kd.privacy registers its method on import (key = file name); discovered lazily.
METHODS: Registry[type[PrivacyMethod]] = Registry("privacy method", base=PrivacyMethod, package="mia_kd.privacy")
