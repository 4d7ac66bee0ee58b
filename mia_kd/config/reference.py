"""The README's config reference, written from the fields' help text (a test keeps the README's copy equal)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from mia_kd.config._sweep import SweepSection
from mia_kd.config._trial import AttackSpec, TrialConfig


def config_reference(instance: BaseModel | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key, default, description)`` for every leaf field."""
    instance = instance if instance is not None else TrialConfig()
    rows: list[tuple[str, str, str]] = []
    for name, field in type(instance).model_fields.items():
        value = getattr(instance, name)
        if isinstance(value, BaseModel):
            rows += config_reference(value, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", _show(value), field.description or ""))
    return rows


def reference_markdown() -> str:
    """The config reference as a Markdown table: every trial key, then every ``sweep.`` key."""
    rows = config_reference() + config_reference(SweepSection(), "sweep.")
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {text.replace('|', '/')} |" for key, default, text in rows]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], AttackSpec):
        return "all seven, see below"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=lambda v: v.model_dump(exclude_defaults=True) if isinstance(v, BaseModel) else str(v))
