"""Resolving a source spec (``"python-docs"`` or ``{"name": "files", "path": ...}``) to texts.

A spec names a source by its registry key or an alias of it; what the records' ids are made from is the
source's :attr:`~mia_kd.data.sources.Source.id_namespace`, never the spelling in the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mia_kd.config import format_validation_error
from mia_kd.data.sources import SOURCES, Source
from mia_kd.errors import ConfigError, DataError, UserError

__all__ = ["SourceSpec", "load_texts", "resolve_source", "validate_source"]

SourceSpec = str | Mapping[str, Any]

_KEY = "data.source"


def resolve_source(spec: SourceSpec, key: str = _KEY) -> tuple[str, Source]:
    """The source's registry key (aliases resolved) and an instance with validated options; nothing is read.

    ``key`` is where the spec sits in the config (``data.source`` or ``data.nonmember_source``); errors name it.
    """
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        options = dict(spec)
        if "name" not in options:
            raise ConfigError(f"{key}.name: missing; allowed: {', '.join(SOURCES.names())}")
        name = options.pop("name")
    else:
        raise ConfigError(
            f"{key}: expected a source name or a mapping with a name; got {type(spec).__name__} {spec!r}"
        )
    source = SOURCES.get(name, key=f"{key}.name")
    try:
        validated = source.Options(**options)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, source.Options, prefix=key, noun="option", owner=f"source {name!r}")
        ) from None
    return source.name, source(validated)


def validate_source(spec: SourceSpec, key: str = _KEY) -> None:
    """Check ``spec``'s name and options (a :class:`ConfigError` if wrong) without reading any data."""
    resolve_source(spec, key)


def load_texts(spec: SourceSpec, key: str = _KEY) -> tuple[str, list[str]]:
    """``(id namespace, raw texts)`` of ``spec``: pass both to :func:`~mia_kd.data.make_records`.

    The namespace is the source's :attr:`~mia_kd.data.sources.Source.id_namespace` (``"python-docs"`` for
    both spellings of that source). Reading errors are :class:`~mia_kd.errors.DataError`; they name ``key``.
    """
    _, source = resolve_source(spec, key)
    try:
        return source.id_namespace, source.load()
    except UserError as exc:
        # Sources name their options under data.source; as the non-member source they sit under ``key``.
        message = str(exc)
        if key == _KEY or not message.startswith(_KEY):
            raise
        raise DataError(key + message[len(_KEY):]) from exc
