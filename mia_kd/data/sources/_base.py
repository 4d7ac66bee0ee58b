"""What every data source is: a nested ``Options`` model and ``load() -> list[str]``.

A source is one public module of this package; :data:`SOURCES` imports them on first lookup and each
registers its class under its file name (``sources/files.py`` registers ``"files"``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from mia_kd.registry import Registry

__all__ = ["SOURCES", "Source", "SourceOptions"]


class SourceOptions(BaseModel):
    """Base of every source's ``Options``: unknown options are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source:
    """A data source: validated ``options`` in, raw texts out (deterministic order, not yet cleaned)."""

    name: ClassVar[str]  # set by @SOURCES.register(): the module's file name
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, options: SourceOptions) -> None:
        self.options = options

    @property
    def id_namespace(self) -> str:
        """The source name its record ids are hashed with: ``record_id(id_namespace, text)`` (data/_record.py).

        The registry name. A source whose key changes overrides this with the name its ids were made from,
        so existing configs keep their ids and splits bit for bit (docs/architecture.md §3).
        """
        return self.name

    def load(self) -> list[str]:
        """The raw texts of this source, in a deterministic order."""
        raise NotImplementedError


SOURCES: Registry[type[Source]] = Registry("data source", base=Source, package="mia_kd.data.sources")
