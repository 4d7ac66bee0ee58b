"""Membership-inference attacks: one file per attack, each a frozen dataclass registered by file name.

Every attack maps per-record statistics (:class:`AttackInputs`) to one score per record, higher = member.
"""

from mia_kd.attacks import lowercase, loss, min_k, min_k_pp, recall, reference, zlib  # noqa: F401 (registers)
from mia_kd.attacks._base import Attack, AttackInputs, TokenStats
from mia_kd.attacks._registry import ATTACKS, Fitted, build_attack, check_attack_spec, fit_attack
from mia_kd.attacks._run import Attacked, privacy_objective, run_attacks, subset

# The attacks in docs/architecture.md §4's table order.
ALL_ATTACKS: tuple[str, ...] = ("loss", "zlib", "lowercase", "min_k", "min_k_pp", "recall", "reference")

__all__ = [
    "ALL_ATTACKS", "ATTACKS", "Attack", "AttackInputs", "Attacked", "Fitted", "TokenStats", "build_attack", "check_attack_spec",
    "fit_attack", "privacy_objective", "run_attacks", "subset",
]
