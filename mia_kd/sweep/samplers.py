"""Optuna samplers a sweep can use, by name (``sweep.sampler``), and the sweep's own one-dimensional sampler.

Most sweeps search one knob, a method's strength, against two objectives (privacy, utility). For that case
:class:`FrontSampler` spends its trials where the Pareto front can still grow: the range's ends first, then
the midpoint of the interval between neighbouring evaluated strengths whose optimistic improvement of the
hypervolume is largest (a Lipschitz bound, as in Piyavskii-Shubert or DIRECT search). On any other space
(several knobs, one or three objectives) it hands every suggestion to TPE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mia_kd.analysis.pareto import hypervolume

SAMPLERS = ("front", "tpe", "nsga2", "gp", "random", "grid")


def make_sampler(name: str, *, seed: int, trials: int, grid: dict[str, list[float]] | None = None) -> BaseSampler:
    """The sampler ``sweep.sampler`` names, seeded, sized for a search of ``trials`` trials."""
    if name == "front":
        return FrontSampler(seed=seed, fallback=make_sampler("tpe", seed=seed, trials=trials))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, min(20, trials // 2)))
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


class FrontSampler(BaseSampler):
    """Refines a one-dimensional two-objective front where its hypervolume can still grow; deterministic.

    Works on what the study holds, so resumed studies and enqueued trials (the neutral strength first) are
    taken as they are: a range end already evaluated, queued or running is not suggested again, nor is an
    interval that a running (or failed) trial already splits. Integer, stepped and log-scaled spaces are
    bisected in their own grid or scale. Anything else (more than one searched parameter, not two
    objectives) goes to ``fallback`` (TPE seeded with ``seed`` by default).
    """

    def __init__(self, *, seed: int | None = None, fallback: BaseSampler | None = None, lipschitz: float = 1.0) -> None:
        self._seed = seed
        self._rng = np.random.RandomState(seed)
        self._fallback = fallback or optuna.samplers.TPESampler(seed=seed)
        self._lipschitz = lipschitz  # scales the slope estimate behind the optimism of a wide interval

    def reseed_rng(self) -> None:
        self._rng.seed(self._seed)
        self._fallback.reseed_rng()

    # The fallback's relative sampling (GP, multivariate TPE) applies only where this sampler does not.
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        space = self._fallback.infer_relative_search_space(study, trial)
        return space if len(space) > 1 else {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._fallback.sample_relative(study, trial, search_space) if search_space else {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._fallback.before_trial(study, trial)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._fallback.after_trial(study, trial, state, values)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        trials = study.get_trials(deepcopy=False)
        if not self._one_dimensional(study, trials, trial, param_name, param_distribution):
            return self._fallback.sample_independent(study, trial, param_name, param_distribution)
        value = self._suggest(study, trials, trial, param_name, param_distribution)
        if value is None:  # every point of an integer range is taken
            return optuna.samplers.RandomSampler(seed=self._rng.randint(2**31)).sample_independent(
                study, trial, param_name, param_distribution
            )
        return value

    @staticmethod
    def _one_dimensional(study, trials, trial, name, distribution) -> bool:
        if len(study.directions) != 2 or not isinstance(distribution, (FloatDistribution, IntDistribution)):
            return False
        if distribution.single() or any(p != name for p in trial.params):
            return False
        return all(set(t.params) <= {name} for t in trials if t.number != trial.number)

    # ---- the search itself, in a unit coordinate u in [0, 1] (log scale where the distribution has one)
    @staticmethod
    def _to_unit(x: float, d: FloatDistribution | IntDistribution) -> float:
        low, high, x = (math.log(v) for v in (d.low, d.high, x)) if d.log else (d.low, d.high, x)
        return (x - low) / (high - low)

    @staticmethod
    def _from_unit(u: float, d: FloatDistribution | IntDistribution) -> float:
        if d.log:
            x = math.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low)))
        else:
            x = d.low + u * (d.high - d.low)
        if d.step is not None:
            x = d.low + round((x - d.low) / d.step) * d.step
        elif isinstance(d, IntDistribution):
            x = round(x)
        x = min(max(x, d.low), d.high)
        return int(x) if isinstance(d, IntDistribution) else float(x)

    def _suggest(self, study, trials, trial, name, d) -> float | int | None:
        signs = np.array([1.0 if s == StudyDirection.MINIMIZE else -1.0 for s in study.directions])
        done: dict[float, np.ndarray] = {}
        taken: set[float] = set()  # queued, running or failed: not to be suggested again
        for t in trials:
            if t.number == trial.number or name not in t.params and t.state != TrialState.WAITING:
                continue
            x = t.params.get(name)
            if x is None:  # a queued trial with its parameter fixed in advance
                x = t.system_attrs.get("fixed_params", {}).get(name)
            if x is None:
                continue
            u = self._to_unit(x, d)
            if not 0.0 <= u <= 1.0:  # searched before in a wider range: not part of this search
                continue
            if t.state == TrialState.COMPLETE and t.values is not None and np.all(np.isfinite(t.values)):
                done.setdefault(u, np.asarray(t.values, dtype=float) * signs)
            else:
                taken.add(u)
        occupied = set(done) | taken

        def free(u: float) -> float | int | None:
            x = self._from_unit(u, d)
            return None if any(abs(self._to_unit(x, d) - o) < 1e-9 for o in occupied) else x

        for end in (0.0, 1.0):  # the range's ends first
            if (x := free(end)) is not None:
                return x
        for left, right in self._ranked_intervals(done, taken):
            if (x := free((left + right) / 2)) is not None:
                return x
            for u in (left + (right - left) / 4, right - (right - left) / 4):  # a stepped grid's other points
                if (x := free(u)) is not None:
                    return x
        for u in np.linspace(0, 1, 1025):  # a grid too coarse for the bisection: its first free point
            if (x := free(float(u))) is not None:
                return x
        return None

    def _ranked_intervals(self, done: dict[float, np.ndarray], taken: set[float]) -> list[tuple[float, float]]:
        """Intervals between neighbouring evaluated points, best first by the optimistic hypervolume gain of
        a point inside; intervals a running or failed trial splits, or with no evaluated end, come last."""
        us = sorted(set(done) | taken | {0.0, 1.0})
        if len(done) < 1:
            return list(zip(us, us[1:]))
        values = np.array([done[u] for u in sorted(done)])
        low, span = values.min(axis=0), np.ptp(values, axis=0)
        span[span == 0] = 1.0
        scaled = {u: (done[u] - low) / span for u in done}
        reference = np.full(2, 1.1)
        front = np.array(list(scaled.values()))
        base = hypervolume(front, reference)
        evaluated = sorted(scaled)
        # Slope bound per objective: the steepest change between evaluated neighbours, at least the range's.
        slopes = [np.abs(scaled[b] - scaled[a]) / (b - a) for a, b in zip(evaluated, evaluated[1:])]
        slope = self._lipschitz * np.maximum(np.max(slopes, axis=0) if slopes else np.ones(2), 1.0)
        ranked = []
        for left, right in zip(us, us[1:]):
            if left in scaled and right in scaled:
                a, b = scaled[left], scaled[right]
                # Lowest value a slope-bounded function through both ends can reach inside, per objective.
                width = right - left
                corner = np.minimum((a + b) / 2 - slope * width / 2, np.minimum(a, b))
                gain = hypervolume(np.vstack([front, corner]), reference) - base
                ranked.append((0, -gain, -width, left, right))
            else:
                ranked.append((1, 0.0, -(right - left), left, right))
        ranked.sort()
        return [(left, right) for *_, left, right in ranked]
