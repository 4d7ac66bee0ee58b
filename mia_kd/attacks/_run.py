"""Run configured attacks on one model's statistics: settings and threshold fit on calib, metrics on eval.

Torch-free, so the analysis side (ensembles scored from stored log-probs) runs attacks exactly as trials do.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mia_kd.attacks._base import AttackInputs, ShadowStats, TokenStats
from mia_kd.attacks._registry import fit_attack
from mia_kd.metrics import evaluate_attack


@dataclass(frozen=True)
class Attacked:
    """``rows``: one metrics row per attack (``attack``, ``attack_params`` JSON, ``orientation``,
    :class:`AttackMetrics` fields); ``scores``: attack -> ``(n_records,)`` oriented scores of every record;
    ``thresholds``: attack -> the threshold fit on calib."""

    rows: list[dict[str, Any]]
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]


def subset(inputs: AttackInputs, idx: np.ndarray) -> AttackInputs:
    """The records ``idx`` of ``inputs`` (every pass; the shadows' columns; the population among them)."""
    idx = np.asarray(idx, dtype=np.int64)
    population = None if inputs.population is None else np.flatnonzero(inputs.population_mask()[idx])

    def pick(stats: TokenStats | None) -> TokenStats | None:
        if stats is None:
            return None
        take = lambda seq: None if seq is None else tuple(seq[i] for i in idx)  # noqa: E731
        return TokenStats(logprobs=take(stats.logprobs), mean=take(stats.mean), std=take(stats.std))

    return AttackInputs(
        texts=[inputs.texts[i] for i in idx], target=pick(inputs.target), lowercase=pick(inputs.lowercase),
        prefixed=pick(inputs.prefixed), reference=pick(inputs.reference),
        zlib_bytes=None if inputs.zlib_bytes is None else np.asarray(inputs.zlib_bytes)[idx],
        shadows=None if inputs.shadows is None else ShadowStats(
            scores=np.asarray(inputs.shadows.scores)[:, idx], inside=np.asarray(inputs.shadows.inside)[:, idx]
        ),
        population=population,
    )


def run_attacks(
    inputs: AttackInputs,
    labels: np.ndarray,
    calib_idx: np.ndarray,
    eval_idx: np.ndarray,
    specs: Sequence[Any],
    *,
    n_bootstrap: int,
    seed: int,
    skip: Collection[str] = (),
) -> Attacked:
    """Each attack spec (``.name``, ``.params``) not in ``skip``: settings and orientation chosen on calib,
    threshold fit on calib, every reported number from eval (and the ``calib_*`` selection statistics). ``labels`` ``(n_records,)`` 1 = member; the bootstrap of the
    ``n``-th spec is seeded ``seed * 1000 + n`` (skipped specs keep their place, so seeds do not shift)."""
    calib_inputs = subset(inputs, calib_idx)
    if inputs.population is None:  # attacks that pool over records (LiRA, RMIA) pool over calib only
        inputs = dataclasses.replace(inputs, population=np.asarray(calib_idx, dtype=np.int64))
    rows, scores, thresholds = [], {}, {}
    for n, spec in enumerate(specs):
        if spec.name in skip:
            continue
        fitted = fit_attack(spec.name, spec.params, calib_inputs, labels[calib_idx])
        values = fitted.score(inputs)
        result = evaluate_attack(
            values[calib_idx], labels[calib_idx], values[eval_idx], labels[eval_idx],
            n_bootstrap=n_bootstrap, seed=seed * 1000 + n,
        )
        rows.append({
            "attack": spec.name, "attack_params": json.dumps(fitted.params, sort_keys=True),
            "orientation": fitted.orientation, **result.to_dict(),
        })
        scores[spec.name], thresholds[spec.name] = values, result.threshold
    return Attacked(rows=rows, scores=scores, thresholds=thresholds)


def privacy_objective(rows: Sequence[dict[str, Any]], statistic: str) -> dict[str, Any]:
    """The two privacy objectives of one model from its metrics ``rows`` (one per attack).

    *Selection*: the worst case over the attacks of ``statistic`` on calib (``calib_<statistic>``), and the
    attack that reaches it (the first in config order on ties). *Reported*: that same attack's eval value and
    CI. Choosing the worst attack on eval instead would pick the attack that got lucky on the reported fold.
    """
    chosen = max(rows, key=lambda row: row[f"calib_{statistic}"])
    return {
        "selection_privacy": float(chosen[f"calib_{statistic}"]),
        "selection_privacy_attack": chosen["attack"],
        "objective_privacy": float(chosen[statistic]),
        "objective_privacy_low": float(chosen.get(f"{statistic}_low", float("nan"))),
        "objective_privacy_high": float(chosen.get(f"{statistic}_high", float("nan"))),
        "objective_privacy_attack": chosen["attack"],
    }
