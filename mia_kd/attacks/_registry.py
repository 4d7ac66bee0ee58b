"""The attack registry, and building / fitting an attack from its config entry.

Every public module of :mod:`mia_kd.attacks` is an attack: :data:`ATTACKS` imports them on first lookup and
each registers itself under its file name (docs/architecture.md §4, §8).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import difflib
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from mia_kd import metrics
from mia_kd.attacks._base import Attack, AttackInputs
from mia_kd.errors import ConfigError
from mia_kd.registry import Registry

ATTACKS: Registry[type[Attack]] = Registry("attack", base=Attack, package="mia_kd.attacks")


def _options(cls: type[Attack]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]


def build_attack(name: str, **params: Any) -> Attack:
    """The attack registered as ``name``, with ``params`` as its fields (validated by the attack).

    Unknown names and options raise :class:`ConfigError` naming the allowed ones.
    """
    cls = ATTACKS.get(name, key="attacks")
    allowed = _options(cls)
    for option in params:
        if option not in allowed:
            close = difflib.get_close_matches(option, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"attacks.{name}: unknown option {option!r}{hint}; allowed: {', '.join(allowed) or '(none)'}"
            )
    return cls(**params)


@dataclass(frozen=True)
class Fitted:
    """An attack with its settings and orientation chosen on calib.

    ``orientation`` is +1 or −1: an attack whose calib AUC is below ½ ranks members *low*, which is a
    strong attack read the wrong way round, not a private model. Its oriented scores
    (``orientation · attack.score``) keep "higher = member", and every reported number is of them.
    """

    attack: Attack
    params: dict[str, Any]  # every field of the attack (grids resolved, defaults included)
    orientation: int

    @property
    def name(self) -> str:
        return self.attack.name

    def score(self, inputs: AttackInputs) -> np.ndarray:
        """Oriented scores ``(len(inputs),)`` float64; higher means member."""
        return self.orientation * self.attack.score(inputs)


def fit_attack(
    name: str, params: Mapping[str, Any], calib_inputs: AttackInputs, calib_labels: np.ndarray
) -> Fitted:
    """Choose the attack's hyper-parameters **and orientation** on ``calib`` only.

    A value given as a list (or tuple) is a grid; a scalar is fixed. Every combination (in the order the
    params and their values are given) is scored on ``calib_inputs`` and ranked by its oriented AUC
    ``max(a, 1 − a)`` (a = :func:`metrics.auc` against ``calib_labels`` (n_calib,)); the first of the best
    wins ties, and the orientation is −1 exactly when the winner's a is below ½. Grids over an attack's
    ``scorer_params`` (fields that change what the scorer computes, e.g. ``recall.shots``) are refused: one
    scorer pass serves one value.
    """
    names, grids = _grid(name, params)
    best: tuple[float, Attack, int] | None = None
    for combination in itertools.product(*grids):
        attack = build_attack(name, **dict(zip(names, combination)))
        a = metrics.auc(attack.score(calib_inputs), calib_labels)
        oriented = max(a, 1.0 - a)
        if best is None or oriented > best[0]:
            best = (oriented, attack, 1 if a >= 0.5 else -1)
    assert best is not None  # product of non-empty grids is non-empty
    _, attack, orientation = best
    return Fitted(attack, {option: getattr(attack, option) for option in _options(type(attack))}, orientation)


def check_attack_spec(name: str, params: Mapping[str, Any]) -> None:
    """Validate a config entry without data: the name, every option and every grid value."""
    names, grids = _grid(name, params)
    for combination in itertools.product(*grids):
        build_attack(name, **dict(zip(names, combination)))


def _grid(name: str, params: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Option names and, for each, the values to try (a scalar is a one-value grid)."""
    cls = ATTACKS.get(name, key="attacks")
    scorer_params: frozenset[str] = getattr(cls, "scorer_params", frozenset())
    names = list(params)
    grids = []
    for option in names:
        value = params[option]
        if isinstance(value, (list, tuple)):
            if not value:
                raise ConfigError(f"attacks.{name}.{option}: got an empty grid []; give at least one value")
            if option in scorer_params and len(value) > 1:
                raise ConfigError(
                    f"attacks.{name}.{option}: got a grid {list(value)!r}, but {option} changes what the "
                    f"scorer computes; give one value"
                )
            grids.append(list(value))
        else:
            grids.append([value])
    return names, grids
