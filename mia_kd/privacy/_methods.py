"""Looking methods up in the registry, validating a ``privacy:`` entry and building a method from it."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, MethodContext, MethodParams, PrivacyMethod


def method_class(name: str) -> type[PrivacyMethod]:
    return METHODS.get(name, key="privacy.method")


def method_classes() -> list[type[PrivacyMethod]]:
    """Every registered method, ``none`` first, then by name."""
    return [METHODS.get(n) for n in sorted(METHODS.names(), key=lambda n: (n != "none", n))]


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


def _params(cls: type[PrivacyMethod], params: dict[str, Any]) -> MethodParams:
    try:
        return cls.Params.model_validate(params)
    except ValidationError as exc:
        from mia_kd.config import format_validation_error  # the config loader (YAML and all) only on an error

        message = format_validation_error(exc, cls.Params, prefix="privacy.params", noun="parameter", owner=cls.name)
        raise ConfigError(message) from None


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
