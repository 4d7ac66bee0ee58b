"""What a sweep will run, decided once before anything runs: each method's strength space and trial budget.

The plan reads only the config and the methods' declared spaces (never data or weights), so it is the same on
the driver, in a resumed sweep and in ``sweep.json`` (docs/architecture.md §2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mia_kd.config import MethodSearch, SweepConfig, TrialConfig
from mia_kd.errors import ConfigError
from mia_kd.prepared import prepare_key
from mia_kd.privacy import StrengthSpace, method_class
from mia_kd.store import MANIFEST, SweepStorage


@dataclass(frozen=True)
class MethodPlan:
    """One method's search: its strength space, how many trials, and its neutral strength."""

    name: str
    search: MethodSearch
    space: StrengthSpace
    trials: int
    neutral: float

    @property
    def fixed(self) -> float | None:
        """The strength when the space is one point (nothing to search), else ``None``."""
        return self.space.low if self.space.low == self.space.high else None

    def grid(self) -> list[float]:
        """``trials`` evenly spaced strengths over the space (distinct whole numbers for an integer space)."""
        low, high = self.space.low, self.space.high
        points = [low + (high - low) * i / max(1, self.trials - 1) for i in range(self.trials)]
        return sorted({float(round(p)) for p in points}) if self.space.integer else points


@dataclass(frozen=True)
class SweepPlan:
    config: SweepConfig
    methods: dict[str, MethodPlan]

    @classmethod
    def build(cls, config: SweepConfig) -> SweepPlan:
        """Each method's space for this student (where it starts acting, as integers where its effect is
        discrete), narrowed by ``methods.NAME.strength``; one trial where the space is one point (the
        baseline), at most one per integer value."""
        sweep, methods = config.sweep, {}
        for name, search in sweep.methods.items():
            method = method_class(name)
            space = method.strength_space(config.base)
            if search.strength is not None:
                space = replace(space, low=float(search.strength[0]), high=float(search.strength[1]))
            trials = search.trials or sweep.trials_per_method
            if space.integer:
                trials = min(trials, math.floor(space.high) - math.ceil(space.low) + 1)
            trials = 1 if space.low == space.high else trials
            methods[name] = MethodPlan(name, search, space, trials, method.neutral)
        return cls(config, methods)

    @property
    def total(self) -> int:
        return sum(m.trials for m in self.methods.values())

    def trial_config(
        self, method: str, strength: float, shared: dict[str, float], *, repeat: int, threads: int
    ) -> TrialConfig:
        """The config of one student of one search point: repeat 0 keeps the base's student seed, repeat r
        uses ``effective_student_seed + r``."""
        base = self.config.base
        return self.config.trial(
            method, strength, shared=shared, student_seed=None if repeat == 0 else base.effective_student_seed + repeat,
            runtime={"threads": threads, "progress": False},
        )

    def manifest(self, storage: SweepStorage) -> dict[str, Any]:
        """``sweep.json``'s content: what this folder holds; a folder of a different sweep is refused."""
        base, key = self.config.base, prepare_key(self.config.base)
        text = storage.read_text(MANIFEST)
        started = datetime.now(UTC).isoformat()
        if text is not None:
            try:
                old = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(f"{storage.url(MANIFEST)} is not valid JSON; restore it or use another --out") from None
            if old.get("sweep_id") != base.sweep_id or old.get("prepare_key") != key:
                raise ConfigError(
                    f"--out {storage.out!r} holds sweep {old.get('sweep_id')!r} with a different data/teacher setup; "
                    "use another --out (or the same config) to resume"
                )
            started = old.get("started_at", started)
        return {
            "sweep_id": base.sweep_id, "prepare_key": key, "config_path": self.config.path, "started_at": started,
            "plan": {name: m.trials for name, m in self.methods.items()},
            "sweep": self.config.sweep.model_dump(mode="json"), "config": base.model_dump(mode="json"),
        }
