"""zlib attack: mean log-probability over the zlib-compressed length of the text.

Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021 (the zlib
entropy comparison).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mia_kd.attacks._base import AttackInputs, Need
from mia_kd.attacks._registry import ATTACKS
from mia_kd.attacks._util import mean_per_record, stats_of


def zlib_bytes(text: str) -> int:
    """Length in bytes of ``zlib.compress(text.encode("utf-8"))`` (default level)."""
    return len(zlib.compress(text.encode("utf-8")))


@ATTACKS.register()
@dataclass(frozen=True)
class Zlib:
    """Score = mean ℓ / ``len(zlib.compress(text.encode("utf-8")))`` (bytes, default level).

    Mean ℓ is negative, so a record the model finds likely relative to its compressibility scores higher.
    """

    needs: ClassVar[frozenset[Need]] = frozenset()

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """``(len(inputs),)`` float64."""
        mean = mean_per_record(stats_of(inputs, "target", self.name).logprobs)
        if inputs.zlib_bytes is not None:
            compressed = np.asarray(inputs.zlib_bytes, dtype=np.float64)
        else:
            compressed = np.array([zlib_bytes(t) for t in inputs.texts], dtype=np.float64)
        return mean / compressed
