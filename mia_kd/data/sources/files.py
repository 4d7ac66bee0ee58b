"""``files``: texts from local files (txt, JSON Lines, JSON, CSV, Parquet), read through ``datasets``.

``path`` is one file or a glob; a ``.txt`` file gives one text per non-empty line, the other formats give
the ``text_column`` of each row. Files are read in sorted path order.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Literal

from pydantic import Field

from mia_kd.data.sources._base import SOURCES, Source, SourceOptions
from mia_kd.data.sources._datasets import load_split, text_column
from mia_kd.errors import DataError

__all__ = ["Files"]

Format = Literal["auto", "txt", "jsonl", "json", "csv", "parquet"]

_BY_EXTENSION = {".txt": "txt", ".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# The ``datasets`` packaged builder that reads each format.
_BUILDER = {"txt": "text", "jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}


@SOURCES.register()
class Files(Source):
    """Texts from local files matched by ``path``."""

    class Options(SourceOptions):
        path: str = Field(description="a local file or a glob (data/*.jsonl); matches are read in sorted order")
        text_column: str = Field("text", description="column holding the texts (not used for txt files)")
        where: dict[str, Any] | None = Field(
            None, description="keep rows whose columns equal these values, e.g. {label: 1} (not for txt files)"
        )
        format: Format = Field(
            "auto", description="file format; auto picks it from the extension (.txt .jsonl .json .csv .parquet)"
        )

    options: Options

    def _format(self, paths: list[str]) -> str:
        if self.options.format != "auto":
            return self.options.format
        found = {os.path.splitext(path)[1].lower() for path in paths}
        unknown = sorted(ext or "(none)" for ext in found if ext not in _BY_EXTENSION)
        if unknown:
            raise DataError(
                f"data.source.format: cannot tell the format of {self.options.path!r} from extension "
                f"{unknown[0]}; set format to one of txt, jsonl, json, csv, parquet"
            )
        formats = {_BY_EXTENSION[ext] for ext in found}
        if len(formats) > 1:
            raise DataError(
                f"data.source.path: {self.options.path!r} matches files of several formats "
                f"({', '.join(sorted(formats))}); match one format, or set format"
            )
        return formats.pop()

    def load(self) -> list[str]:
        """The texts of every matched file, in sorted path order then file order."""
        pattern = os.path.expanduser(self.options.path)
        paths = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
        if not paths:
            raise DataError(
                f"data.source.path: no file matches {self.options.path!r}; give an existing file or a glob such as "
                "data/*.jsonl (relative paths start where mia-kd runs)"
            )
        fmt = self._format(paths)
        what = paths[0] if len(paths) == 1 else f"{self.options.path!r} ({len(paths)} files)"
        dataset = load_split(
            what, "data.source.path", temporary=True, path=_BUILDER[fmt], data_files=paths, split="train"
        )
        if fmt == "txt":
            return [line for line in text_column(dataset, "text", what, "data.source.path") if line.strip()]
        return text_column(dataset, self.options.text_column, what, "data.source.text_column", where=self.options.where)
