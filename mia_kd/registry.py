"""One plug-in mechanism for attacks, privacy methods and data sources (docs/architecture.md §8).

A registry knows the package its plug-ins live in and discovers them on first lookup: every module of that
package whose name does not start with ``_`` is imported, and each registers its class with
``@REGISTRY.register()``. The key is the module's file name (``attacks/min_k_pp.py`` registers
``"min_k_pp"``), it is written onto the class as ``name``, and the class is checked against the registry's
base at registration. Old names stay valid as aliases. Lookups say "did you mean …" for near misses.

Discovery imports every plug-in to read its class, so a plug-in module does no work and loads no heavy
library at import: torch, transformers and the like are imported inside the functions that run (type hints
under ``TYPE_CHECKING``). That keeps ``mia-kd methods`` and config checks free of torch (tested).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mia_kd.errors import ConfigError, MiaKdError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind.

    ``kind`` is used in messages ("unknown attack 'lss'"). ``base`` is the class (or ``Protocol``) every
    plug-in must be; ``package`` the dotted name of the package :meth:`discover` imports.
    """

    def __init__(self, kind: str, *, base: type | None = None, package: str | None = None) -> None:
        self.kind = kind
        self.base = base
        self.package = package
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._discovered = package is None

    def register(self, name: str | None = None, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Class decorator: register under ``name`` (default: the defining module's file name)."""

        def decorator(item: T) -> T:
            key = name or str(getattr(item, "__module__", "")).rsplit(".", 1)[-1]
            self._check(key, item)
            for taken in (key, *aliases):
                if taken in self._items or taken in self._aliases:
                    raise MiaKdError(f"duplicate {self.kind} name {taken!r}")
            self._items[key] = item
            self._aliases.update({alias: key for alias in aliases})
            if isinstance(item, type):
                item.name = key  # type: ignore[attr-defined]  (the key is the name, everywhere)
            return item

        return decorator

    def discover(self) -> None:
        """Import every public module of ``package`` once (each registers itself on import)."""
        if self._discovered:
            return
        self._discovered = True  # before importing: a plug-in module may look itself up while loading
        package = importlib.import_module(self.package)  # type: ignore[arg-type]
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str, *, key: str | None = None) -> T:
        """The plug-in called ``name`` (or an alias of it); ``key`` is the config key named in errors."""
        self.discover()
        canonical = self._aliases.get(name, name) if isinstance(name, str) else name
        try:
            return self._items[canonical]
        except (KeyError, TypeError):
            where = f"{key}: " if key else ""
            close = difflib.get_close_matches(str(name), [*self._items, *self._aliases], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(self._items))
            raise ConfigError(f"{where}unknown {self.kind} {name!r}{hint}; allowed: {allowed}") from None

    def canonical(self, name: str) -> str:
        """The registered key of ``name`` (itself, or what the alias points to)."""
        self.get(name)
        return self._aliases.get(name, name)

    def names(self) -> list[str]:
        """Registered keys (aliases left out), sorted."""
        self.discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _check(self, key: str, item: Any) -> None:
        if self.base is None:
            return
        if getattr(self.base, "_is_protocol", False):
            missing = [m for m in _protocol_members(self.base) if not hasattr(item, m)]
            if missing:
                raise MiaKdError(f"{self.kind} {key!r}: {item!r} lacks {', '.join(missing)} of {self.base.__name__}")
        elif not (isinstance(item, type) and issubclass(item, self.base)):
            raise MiaKdError(f"{self.kind} {key!r}: {item!r} is not a subclass of {self.base.__name__}")


def _protocol_members(protocol: type) -> list[str]:
    """The attributes a ``Protocol`` declares (annotations and methods), ``name`` excepted: the registry sets it."""
    members: set[str] = set()
    for klass in protocol.__mro__:
        if klass is object or klass.__name__ in ("Protocol", "Generic"):
            continue
        members |= set(getattr(klass, "__annotations__", {}))
        members |= {k for k, v in vars(klass).items() if callable(v) and not k.startswith("_")}
    return sorted(members - {"name"})
