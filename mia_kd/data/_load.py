"""Resolving a source spec (``"python-docs"`` or ``{"name": "files", "path": ...}``) to texts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mia_kd.data.sources import SOURCES, Source
from mia_kd.errors import ConfigError

__all__ = ["SourceSpec", "load_texts", "resolve_source", "validate_source"]

SourceSpec = str | Mapping[str, Any]

_KEY = "data.source"


def _options_error(name: str, source: type[Source], exc: ValidationError) -> ConfigError:
    """One line for the first problem of ``exc``: the key, the problem, the value given.

    An unknown option is reported first: a misspelt option also makes the real one look missing.
    """
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(source.Options.model_fields))
        return ConfigError(f"{_KEY}: unknown option {field!r} for source {name!r}; allowed: {allowed}")
    if error["type"] == "missing":
        return ConfigError(f"{_KEY}.{field}: missing; source {name!r} needs it")
    key = f"{_KEY}.{field}" if field else _KEY
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    got = f"; got {value!r}" if field else ""
    return ConfigError(f"{key}: {message}{got}")


def resolve_source(spec: SourceSpec) -> tuple[str, Source]:
    """The source's registry name and an instance with validated options; nothing is read yet."""
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        options = dict(spec)
        if "name" not in options:
            raise ConfigError(f"{_KEY}.name: missing; allowed: {', '.join(SOURCES.names())}")
        name = options.pop("name")
    else:
        raise ConfigError(
            f"{_KEY}: expected a source name or a mapping with a name; got {type(spec).__name__} {spec!r}"
        )
    source = SOURCES.get(name, key=f"{_KEY}.name")
    try:
        validated = source.Options(**options)
    except ValidationError as exc:
        raise _options_error(name, source, exc) from None
    return name, source(validated)


def validate_source(spec: SourceSpec) -> None:
    """Check ``spec``'s name and options (a :class:`ConfigError` if wrong) without reading any data."""
    resolve_source(spec)


def load_texts(spec: SourceSpec) -> tuple[str, list[str]]:
    """``(source name, raw texts)`` of ``spec``; reading errors are :class:`~mia_kd.errors.DataError`."""
    name, source = resolve_source(spec)
    return name, source.load()
