"""The scorer passes a list of configured attacks needs, read from the attacks' declarations.

The trial asks :func:`required_passes` what to compute and never looks at an attack's name, so an attack
that reads existing passes is one file (docs/architecture.md §4, §8).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mia_kd.attacks._registry import ATTACKS, _grid, build_attack
from mia_kd.errors import ConfigError, MiaKdError

__all__ = ["Passes", "required_passes"]


@dataclass(frozen=True)
class Passes:
    """What the scorer computes beyond each model's plain pass over the attack records.

    ``moments``: μ_i and σ_i of the vocabulary distribution on the plain pass; ``lowercase``: a pass over
    the lowercased texts; ``reference``: a reference model trained on ``public``, and its pass;
    ``prefix_records``: how many ``public`` records form the prefix of the prefixed pass (0: no such pass);
    ``shadows``: shadow models trained on known halves of the records, and their passes (last, with a default,
    so that code written before shadows existed builds the same value).
    """

    moments: bool
    lowercase: bool
    reference: bool
    prefix_records: int
    shadows: bool = False


def required_passes(specs: Iterable[Any]) -> Passes:
    """The union of the passes the attack ``specs`` need (each with ``.name`` and ``.params``).

    An attack needing ``"prefixed"`` is built from its params (the first value of each grid; grids over
    such fields are refused elsewhere, see ``scorer_params``) and its ``prefix_records`` read. Attacks
    asking for different prefixes are a :class:`ConfigError`: one prefixed pass serves one prefix.
    """
    needs: set[str] = set()
    prefix: tuple[str, int] | None = None
    for spec in specs:
        cls = ATTACKS.get(spec.name, key="attacks")
        needs |= cls.needs
        if "prefixed" not in cls.needs:
            continue
        names, grids = _grid(spec.name, spec.params)
        attack = build_attack(spec.name, **{name: grid[0] for name, grid in zip(names, grids, strict=True)})
        n = getattr(attack, "prefix_records", None)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise MiaKdError(
                f"attack {spec.name!r} needs the 'prefixed' pass, so its prefix_records must be an integer >= 1; "
                f"got {n!r}"
            )
        if prefix is not None and prefix[1] != n:
            raise ConfigError(
                f"attacks: {prefix[0]!r} wants a prefix of {prefix[1]} public records and {spec.name!r} one of "
                f"{n}; the prefixed pass is computed once, so give them the same"
            )
        prefix = prefix or (spec.name, int(n))
    return Passes(
        moments="moments" in needs,
        lowercase="lowercase" in needs,
        reference="reference" in needs,
        prefix_records=prefix[1] if prefix else 0,
        shadows="shadows" in needs,
    )
