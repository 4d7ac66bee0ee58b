"""Importing every method (so the registry is complete), building and validating them from config."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import ValidationError

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, MethodContext, PrivacyMethod


def _import_all() -> None:
    import mia_kd.privacy as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"mia_kd.privacy.{info.name}")


def method_class(name: str) -> type[PrivacyMethod]:
    _import_all()
    return METHODS.get(name, key="privacy.method")


def method_classes() -> list[type[PrivacyMethod]]:
    """Every registered method, ``none`` first, then by name."""
    _import_all()
    names = METHODS.names()
    return [METHODS.get(n) for n in sorted(names, key=lambda n: (n != "none", n))]


def check_method(name: str, strength: float, params: dict[str, Any], stage: str) -> None:
    """Validate a ``privacy:`` entry without data: name, strength range, params, stage."""
    cls = method_class(name)
    if not cls.low <= strength <= cls.high:
        raise ConfigError(
            f"privacy.strength: got {strength!r}, {name} allows [{cls.low:g}, {cls.high:g}] (neutral {cls.neutral:g})"
        )
    if cls.integer_strength and strength != int(strength):
        raise ConfigError(
            f"privacy.strength: got {strength!r}, {name} takes a whole number in [{cls.low:g}, {cls.high:g}] "
            f"(neutral {cls.neutral:g})"
        )
    if stage not in cls.stages:
        raise ConfigError(f"privacy.stage: got {stage!r}, {name} supports {', '.join(sorted(cls.stages))}")
    _params(cls, params)


def _params(cls: type[PrivacyMethod], params: dict[str, Any]):
    try:
        return cls.Params.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(cls.Params.model_fields)) or "(none)"
            raise ConfigError(f"privacy.params: unknown parameter {loc!r} for {cls.name}; allowed: {allowed}") from None
        raise ConfigError(f"privacy.params.{loc}: {first['msg']}; got {first.get('input')!r}") from None


def build_method(name: str, strength: float, params: dict[str, Any], context: MethodContext) -> PrivacyMethod:
    cls = method_class(name)
    return cls(strength, _params(cls, params), context)


def methods_markdown() -> str:
    """The README's table of methods (a test keeps the README's copy equal to this)."""
    lines = ["| method | hook | strength | neutral | stages | what it does | expected trade |", "|---|---|---|---|---|---|---|"]
    for cls in method_classes():
        integer = " integer" if cls.integer_strength else ""
        lines.append(
            f"| `{cls.name}` | {cls.hook} | [{cls.low:g}, {cls.high:g}]{integer} | {cls.neutral:g} | "
            f"{', '.join(sorted(cls.stages))} | {cls.summary} | {cls.trades} |"
        )
    return "\n".join(lines)
