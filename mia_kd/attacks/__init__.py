"""Membership-inference attacks: one file per attack, each a frozen dataclass registered by file name.

Every attack maps per-record statistics (:class:`AttackInputs`) to one score per record, higher = member.
:data:`ATTACKS` finds the attack modules of this package itself (docs/architecture.md §8): adding one needs
no import here.
"""

from mia_kd.attacks._base import Attack, AttackInputs, ShadowStats, TokenStats
from mia_kd.attacks._passes import Passes, required_passes
from mia_kd.attacks._registry import ATTACKS, Fitted, build_attack, check_attack_spec, fit_attack
from mia_kd.attacks._run import Attacked, privacy_objective, run_attacks, subset

__all__ = [
    "ATTACKS", "Attack", "AttackInputs", "Attacked", "Fitted", "Passes", "ShadowStats", "TokenStats", "build_attack",
    "check_attack_spec", "fit_attack", "privacy_objective", "required_passes", "run_attacks", "subset",
]
