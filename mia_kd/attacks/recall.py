"""ReCaLL: how much a prefix of non-member text changes the model's likelihood of the record.

Xie et al., "ReCaLL: Membership Inference via Relative Conditional Log-Likelihoods", EMNLP 2024.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import mean_per_record, stats_of
from mia_kd.errors import ConfigError


@ATTACKS.register()
@dataclass(frozen=True)
class Recall:
    """Score = mean ℓ(x | prefix) / mean ℓ(x), the prefix being ``shots`` ``public`` records.

    Both means are over the record's own tokens (``inputs.prefixed`` holds those only). A non-member prefix
    lowers a member's likelihood more than a non-member's, so the ratio rises for members.
    """

    shots: int = 4
    """Number of ``public`` records in the prefix (≥ 1); the trial builds the prefix (:attr:`prefix_records`)."""

    needs: ClassVar[frozenset[Need]] = frozenset({"prefixed"})
    # Fields that change what the scorer computes: one scorer pass serves one value, so no grids.
    scorer_params: ClassVar[frozenset[str]] = frozenset({"shots"})

    def __post_init__(self) -> None:
        if isinstance(self.shots, bool) or not isinstance(self.shots, (int, np.integer)) or self.shots < 1:
            raise ConfigError(f"recall.shots: got {self.shots!r}, must be an integer >= 1")

    @property
    def prefix_records(self) -> int:
        """How many ``public`` records the scorer joins into the prefix of the ``prefixed`` pass."""
        return int(self.shots)

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        prefixed = mean_per_record(stats_of(inputs, "prefixed", self.name).logprobs)
        plain = mean_per_record(stats_of(inputs, "target", self.name).logprobs)
        return prefixed / plain
