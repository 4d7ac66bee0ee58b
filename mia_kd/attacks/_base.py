"""What every attack sees and promises.

An attack maps per-record statistics to one score per record, and **a higher score means "member"**,
always (docs/architecture.md §4). Attacks never run models: the scorer (:mod:`mia_kd.models.scoring`) makes one batched
pass per (model, record set) and hands the results over as :class:`TokenStats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import numpy as np

from mia_kd.errors import MiaKdError

# Extra passes an attack may need beyond the target model's plain pass over the texts.
Need = Literal["moments", "lowercase", "prefixed", "reference", "shadows"]


@dataclass(frozen=True)
class TokenStats:
    """Per-record statistics of one model on one list of texts (one entry per record, same order).

    ``logprobs[r]`` has shape ``(n_r,)``, float32: ℓ_i = log p(x_i | x_<i) for each predicted token
    (the first token is not predicted, so ``n_r`` = tokens − 1 ≥ 1). ``mean[r]`` and ``std[r]``, when
    present, have the same shape: μ_i and σ_i of log p(v | x_<i) over the vocabulary v, weighted by
    p(v | x_<i) (Min-K%++, Zhang et al. 2024).
    """

    logprobs: tuple[np.ndarray, ...]
    mean: tuple[np.ndarray, ...] | None = None
    std: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self.logprobs)


@dataclass(frozen=True)
class ShadowStats:
    """Shadow models' statistics on the same records: what a record's statistic looks like with and without it
    in training.

    ``scores`` ``(n_shadows, n_records)`` float64: each shadow model's mean token log-probability of each
    record (the statistic ``mean_per_record(target.logprobs)`` is of the target); ``inside`` ``(n_shadows,
    n_records)`` bool: whether the record was in that shadow's training set. Checked on construction.
    """

    scores: np.ndarray
    inside: np.ndarray

    def __post_init__(self) -> None:
        scores, inside = np.asarray(self.scores), np.asarray(self.inside)
        if scores.ndim != 2 or scores.shape[0] < 1 or not np.issubdtype(scores.dtype, np.floating):
            raise MiaKdError(
                f"ShadowStats.scores must be a float array of shape (n_shadows >= 1, n_records); "
                f"got {scores.dtype} {scores.shape}"
            )
        if inside.shape != scores.shape or inside.dtype != np.bool_:
            raise MiaKdError(
                f"ShadowStats.inside must be a bool array of the shape of scores {scores.shape}; "
                f"got {inside.dtype} {inside.shape}"
            )
        if not np.isfinite(scores).all():
            raise MiaKdError("ShadowStats.scores has non-finite values (a shadow pass failed?)")

    def __len__(self) -> int:
        return int(np.shape(self.scores)[1])


@dataclass(frozen=True)
class AttackInputs:
    """Everything an attack may read for ``len(texts)`` records.

    ``target``: the attacked model on ``texts`` (with ``mean``/``std`` when an attack needs moments);
    ``lowercase``: the attacked model on ``[t.lower() for t in texts]``; ``prefixed``: the attacked model on
    each text preceded by a fixed prefix of ``public`` records, with statistics for the text's own tokens
    only; ``reference``: the reference model (trained on ``public`` only) on ``texts``; ``shadows``: shadow
    models (trained like the target, each on a known part of the records) on ``texts``.

    ``population``: the indices of the records whose statistics an attack may pool or rank against (LiRA's
    pooled variance, RMIA's z records); None = all. :func:`~mia_kd.attacks.run_attacks` sets it to the calib
    records, so a calib score never depends on the reporting fold (docs/architecture.md §4).
    """

    texts: Sequence[str]
    target: TokenStats
    lowercase: TokenStats | None = None
    prefixed: TokenStats | None = None
    reference: TokenStats | None = None
    zlib_bytes: np.ndarray | None = None  # (len(texts),) zlib-compressed lengths, when the texts are not at hand
    shadows: ShadowStats | None = None
    population: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def population_mask(self) -> np.ndarray:
        """``(len(self),)`` bool: the records of :attr:`population`."""
        mask = np.zeros(len(self), dtype=bool) if self.population is not None else np.ones(len(self), dtype=bool)
        if self.population is not None:
            mask[np.asarray(self.population, dtype=np.int64)] = True
        return mask


class Attack(Protocol):
    """A membership-inference attack: hyper-parameters are dataclass fields with defaults.

    ``name`` is set by ``@ATTACKS.register()`` (the module's file name). ``needs`` lists the passes beyond
    the plain one that :meth:`score` reads (:func:`mia_kd.attacks.required_passes` turns them into the
    scorer's work, so the trial never branches on an attack's name). An attack that needs ``"prefixed"``
    also has an ``int`` attribute or property ``prefix_records`` (≥ 1): how many ``public`` records form
    the prefix.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[Need]]

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """One float64 score per record, shape ``(len(inputs),)``; higher means member."""
        ...
