"""What a sweep will run, decided once before anything runs: each method's strength space and trial budget,
and which method trains the sweep's one baseline (the neutral strength, plain distillation).

The plan reads only the config and the methods' declared spaces (never data or weights), so it is the same on
the driver, in a resumed sweep and in ``sweep.json`` (docs/architecture.md §2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Iterable, Mapping

from mia_kd.config import MethodSearch, SweepConfig, TrialConfig
from mia_kd.errors import ConfigError
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
    def holds_neutral(self) -> bool:
        """Whether the neutral strength (plain distillation, the same student for every method) is in the space."""
        return self.space.low <= self.neutral <= self.space.high

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
    def build(cls, config: SweepConfig, spaces: Mapping[str, StrengthSpace] | None = None) -> SweepPlan:
        """Each method's space for this student (where it starts acting, as integers where its effect is
        discrete; ``spaces``: as :func:`strength_spaces` computed them elsewhere), narrowed by
        ``methods.NAME.strength``; one trial where the space is one point (the baseline), at most one per
        integer value."""
        sweep, methods = config.sweep, {}
        spaces = spaces if spaces is not None else strength_spaces(config.base, sweep.methods)
        for name, search in sweep.methods.items():
            method = method_class(name)
            space = spaces[name]
            if search.strength is not None:
                space = replace(space, low=float(search.strength[0]), high=float(search.strength[1]))
            trials = search.trials or sweep.trials_per_method
            if space.integer:
                trials = min(trials, math.floor(space.high) - math.ceil(space.low) + 1)
            trials = 1 if space.low == space.high else trials
            methods[name] = MethodPlan(name, search, space, trials, method.neutral)
        return cls(config, methods)

    @property
    def baseline(self) -> str | None:
        """The method whose neutral-strength trial is the sweep's baseline: ``none`` when swept, else the first
        method whose space holds its neutral strength (``None`` when no method's does).

        At its neutral strength every method is plain distillation bit for bit (docs/architecture.md §6), so
        the baseline student is trained once, as this method, and added with its measured objectives to the
        study of every method that :meth:`shares_baseline`, counting as one of that method's trials.
        """
        if "none" in self.methods and self.methods["none"].holds_neutral:
            return "none"
        return next((name for name, m in self.methods.items() if m.holds_neutral), None)

    def baseline_rows(self, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of ``stored`` (the sweep's trial rows, any status) that are the baseline's."""
        if self.baseline is None:
            return []
        neutral = self.methods[self.baseline].neutral
        return [r for r in stored if r["method"] == self.baseline and float(r["strength"]) == neutral]

    def shares_baseline(self, name: str) -> bool:
        """Whether ``name``'s study is given the baseline trained as another method (instead of training it)."""
        return name != self.baseline and self.baseline is not None and self.methods[name].holds_neutral

    def students(self, name: str) -> int:
        """How many search points ``name`` trains itself: its budget less the baseline it is given."""
        return self.methods[name].trials - self.shares_baseline(name)

    @property
    def total(self) -> int:
        """Search points the sweep trains (the baseline once)."""
        return sum(self.students(name) for name in self.methods)

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

    def manifest(self, folder: dict[str, Any]) -> dict[str, Any]:
        """``sweep.json``'s content: ``folder`` (:func:`folder_manifest`, which sweep and since when) and the plan."""
        return {
            **folder,
            # Search points each method trains itself (a method given the baseline trains one fewer than its budget).
            "plan": {name: self.students(name) for name in self.methods},
            "baseline": None if self.baseline is None else {
                "method": self.baseline, "strength": self.methods[self.baseline].neutral,
                "shared_with": [name for name in self.methods if self.shares_baseline(name)],
            },
        }


def folder_manifest(config: SweepConfig, storage: SweepStorage) -> dict[str, Any]:
    """``sweep.json`` before the plan is known (the sweep is preparing): which sweep the folder holds, since
    when, and its config. A folder of a different sweep (or a damaged manifest) is refused."""
    base, key = config.base, config.base.prepare_key()
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
        "sweep_id": base.sweep_id, "prepare_key": key, "config_path": config.path, "started_at": started,
        "sweep": config.sweep.model_dump(mode="json"), "config": base.model_dump(mode="json"),
    }


def strength_spaces(base: TrialConfig, names: Iterable[str]) -> dict[str, StrengthSpace]:
    """Each method's strength space for the student ``base`` describes. Some read the student's layer sizes from
    its model code (``bottleneck``: torch and transformers, 7 s to import here), so a sweep computes them in its
    preparation task, where both are loaded anyway, and its driver imports neither (docs/architecture.md §2)."""
    return {name: method_class(name).strength_space(base) for name in names}
