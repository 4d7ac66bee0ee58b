"""Reading configs: YAML files, ``--set key.path=value`` overrides, and the one pydantic error formatter.

Every validation error becomes one :class:`~mia_kd.errors.ConfigError` line that names the key, the bad
value and what is allowed (docs/architecture.md §2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mia_kd.config._sweep import SweepConfig, SweepSection
from mia_kd.config._trial import TrialConfig
from mia_kd.errors import ConfigError


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """Read a YAML trial config, apply ``key.path=value`` overrides, validate its structure and ranges.

    A ``sweep:`` section is ignored here: the rest is the base trial.
    """
    raw = read_yaml(path)
    raw.pop("sweep", None)
    for override in overrides:
        apply_override(raw, override)
    return validate_config(raw)


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """Read a sweep file: the base trial config and its ``sweep:`` section; ``--set`` reaches both parts."""
    raw = read_yaml(path)
    for override in overrides:
        apply_override(raw, override)
    section = raw.pop("sweep", None) or {}
    base = validate_config(raw)
    try:
        sweep = SweepSection.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, SweepSection, prefix="sweep")) from None
    return SweepConfig(base=base, sweep=sweep, path=str(path))


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass the path of a YAML file such as sweeps/quickstart.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {' '.join(first[:3])}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, got {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply ``a.b.c=value`` in place; the value is parsed as YAML (``3``, ``0.5``, ``true``, ``[1, 2]``)."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected key.path=value, e.g. --set teacher.train.epochs=5")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {override!r}: the value is not a valid YAML scalar or list") from None
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {part!r} holds a value, not a mapping of keys")
        node = child
    node[parts[-1]] = value


def validate_config(raw: dict[str, Any]) -> TrialConfig:
    """``raw`` as a :class:`TrialConfig` (structure and ranges), or one :class:`ConfigError` line."""
    try:
        return TrialConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, TrialConfig)) from None


def format_validation_error(
    exc: ValidationError, model: type[BaseModel], *, prefix: str = "", noun: str = "key", owner: str | None = None
) -> str:
    """One line for the first problem (and a count of the others): the key, the problem, the value given.

    ``prefix`` is the dotted config key ``model`` sits under (``"sweep"``, ``"privacy.params"``), so the line
    names the key as the user wrote it. A plug-in's options name their ``owner`` (``"source 'files'"``,
    ``"dp_sgd"``) and what they are (``noun``: option, parameter). An unknown key is reported first: a
    misspelt key also makes the real one look missing.
    """
    lines = validation_problems(exc, model, prefix=prefix, noun=noun, owner=owner)
    # A config counts its other problems; a plug-in's options name the first only (as they always have).
    more = len(lines) - 1 if owner is None else 0
    return lines[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def validation_problems(
    exc: ValidationError, model: type[BaseModel], *, prefix: str = "", noun: str = "key", owner: str | None = None
) -> list[str]:
    """Every problem of ``exc``, one line each, unknown keys first (see :func:`format_validation_error`)."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # stable: otherwise as found
    return list(dict.fromkeys(_problem(e, model, prefix, noun, owner) for e in errors))


def _problem(error: Any, model: type[BaseModel], prefix: str, noun: str, owner: str | None) -> str:
    inner = [str(part) for part in error["loc"]]
    loc = [*(prefix.split(".") if prefix else []), *inner]
    key = ".".join(loc) or "config"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(model, inner[:-1]))
        if owner is not None:
            return f"{'.'.join(loc[:-1])}: unknown {noun} {loc[-1]!r} for {owner}; allowed: {allowed}"
        parent = ".".join(loc[:-1])
        return f"unknown {noun} {loc[-1]!r}{f' under {parent!r}' if parent else ''}; allowed: {allowed}"
    if error["type"] == "missing" and owner is not None:
        return f"{key}: missing; {owner} needs it"
    text = error["msg"].removeprefix("Value error, ")
    # A model validator's message names its key relative to the model it checks (``loc`` says where that is).
    if error["type"] == "value_error" and ": " in text and owner is None:
        return f"{'.'.join(loc)}.{text}" if loc else text
    got = error.get("input")
    got_text = "" if isinstance(got, dict | list) or (owner is not None and not inner) else f"; got {got!r}"
    return f"{key}: {text}{got_text}"


def _allowed_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ["(see the config reference)"]
        model = annotation
    return sorted(model.model_fields) or ["(none)"]
