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

# Extra passes an attack may need beyond the target model's plain pass over the texts.
Need = Literal["moments", "lowercase", "prefixed", "reference"]


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
class AttackInputs:
    """Everything an attack may read for ``len(texts)`` records.

    ``target``: the attacked model on ``texts`` (with ``mean``/``std`` when an attack needs moments);
    ``lowercase``: the attacked model on ``[t.lower() for t in texts]``; ``prefixed``: the attacked model on
    each text preceded by a fixed prefix of ``public`` records, with statistics for the text's own tokens
    only; ``reference``: the reference model (trained on ``public`` only) on ``texts``.
    """

    texts: Sequence[str]
    target: TokenStats
    lowercase: TokenStats | None = None
    prefixed: TokenStats | None = None
    reference: TokenStats | None = None
    zlib_bytes: np.ndarray | None = None  # (len(texts),) zlib-compressed lengths, when the texts are not at hand

    def __len__(self) -> int:
        return len(self.texts)


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
