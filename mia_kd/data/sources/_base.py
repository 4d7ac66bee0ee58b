"""What every data source is: a nested ``Options`` model and ``load() -> list[str]``.

A source is registered in :data:`SOURCES` under its file name with ``_`` written ``-``
(``sources/python_docs.py`` registers ``"python-docs"``).
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

    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, options: SourceOptions) -> None:
        self.options = options

    def load(self) -> list[str]:
        """The raw texts of this source, in a deterministic order."""
        raise NotImplementedError


SOURCES: Registry[type[Source]] = Registry("data source")
