"""Tolerances for comparing float32 results, derived from float32's precision instead of picked by hand.

Two float32 computations of the same quantity need not agree bit for bit: another batch shape, another
CPU or another kernel sums in another order. A tolerance that fits one machine's rounding (``atol=1e-5``)
fails on the next; one derived from how many roundings a result went through holds on all of them.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 2⁻²³: the gap between 1 and the next float32


def float32_atol(*values, ops: int = 1) -> float:
    """Absolute tolerance between two float32 computations of ``values`` that may round differently.

    A float32 operation errs by at most eps/2 of the magnitude it rounds, so a result that went through
    ``ops`` roundings of quantities about as large as ``max|values|`` is within ``ops · eps/2 · max|values|``
    of the exact value, and two such results are within ``ops · eps · max|values|`` of each other. The count
    is a worst case (every rounding the same way), which leaves room for intermediates somewhat larger than
    the result. ``values``: arrays, tensors or numbers as large as what was computed (the expected values).
    """
    scale = max((float(np.max(np.abs(np.asarray(v, dtype=np.float64)), initial=0.0)) for v in values), default=0.0)
    return ops * EPS32 * scale


def forward_ops(config, seq: int) -> int:
    """Roundings one output of a GPT-2-style forward pass and log-softmax accumulates over ``seq`` tokens.

    Along one token's path, each layer sums over a head's query·key (``n_embd // n_head`` terms), the
    attention-weighted values (``seq``), three ``n_embd``-long projections (qkv, attention out, MLP in) and
    the MLP's ``n_inner``-long output projection; then the output layer (``n_embd``) and the log-sum-exp over
    the vocabulary. Use as ``float32_atol(expected, ops=forward_ops(model.config, seq))``.
    """
    d = config.n_embd
    inner = getattr(config, "n_inner", None) or 4 * d
    per_layer = d // config.n_head + seq + 3 * d + inner
    return config.n_layer * per_layer + d + config.vocab_size
