"""A small generic registry: ``register(name)`` decorator, duplicate check, "did you mean" on lookups.

Registries hold plug-ins (attacks, data sources, later privacy methods). The key equals the plug-in's
file name (``attacks/min_k_pp.py`` registers ``"min_k_pp"``), so a name in a config points at one file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mia_kd.errors import ConfigError, MiaKdError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind. ``kind`` is used in messages ("unknown attack 'lss'")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            if name in self._items:
                raise MiaKdError(f"duplicate {self.kind} name {name!r}")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str, *, key: str | None = None) -> T:
        """The plug-in called ``name``; ``key`` is the config key named in the error message."""
        try:
            return self._items[name]
        except KeyError:
            where = f"{key}: " if key else ""
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(self._items))
            raise ConfigError(f"{where}unknown {self.kind} {name!r}{hint}; allowed: {allowed}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
