"""The modules the ``architecture`` methods put into a student (``bottleneck``, ``nonorm``).

Apart from the methods, which import this on first use, so that reading a method's metadata (``mia-kd
methods``, validating a config) does not load torch: a class that subclasses ``nn.Module`` needs it loaded.
"""

from __future__ import annotations

import torch
from torch import nn


class BottleneckProjection(nn.Module):
    """``(..., H) → (..., I)`` through ``B`` units: ``up(gelu(down(x)))``."""

    def __init__(self, hidden: int, width: int, out: int, *, bias: bool) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, width, bias=bias)
        self.act = nn.GELU()
        self.up = nn.Linear(width, out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class NoNorm(nn.Module):
    """``(..., *shape) → (..., *shape)``: ``x · weight + bias``, no normalisation."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias
