"""``hf``: texts from a Hugging Face dataset: a hub id, or a local folder of data files.

Hub datasets are downloaded (and cached) by ``datasets``; with ``HF_DATASETS_OFFLINE=1`` only the cache is
used. ``datasets`` 4 and later no longer run dataset loading scripts, so there is no
``trust_remote_code`` option: script-only datasets cannot be read.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mia_kd.data.sources._base import SOURCES, Source, SourceOptions
from mia_kd.data.sources._datasets import load_split, text_column

__all__ = ["HuggingFace"]


@SOURCES.register()
class HuggingFace(Source):
    """The ``text_column`` of one split of a ``datasets`` dataset."""

    class Options(SourceOptions):
        # Not ``name``: in a source spec, ``name`` is the source's registry name ({"name": "hf", ...}).
        dataset: str = Field(description="hub id (user/dataset) or a local folder of jsonl/csv/parquet/txt files")
        config: str | None = Field(None, description="dataset configuration (subset) name, if it has several")
        split: str = Field("train", description="split to read, e.g. train or train[:10000]")
        text_column: str = Field("text", description="column holding the texts")
        where: dict[str, Any] | None = Field(
            None, description="keep rows whose columns equal these values, e.g. {label: 1} (WikiMIA-style labels)"
        )
        revision: str | None = Field(None, description="hub revision (commit, tag or branch) to pin the data")
        cache_dir: str | None = Field(
            None, description="where datasets caches downloads; null is datasets' default (~/.cache/huggingface)"
        )

    options: Options

    def load(self) -> list[str]:
        """The column's values in the dataset's row order."""
        opts = self.options
        config = f" (config {opts.config!r})" if opts.config else ""
        what = f"{opts.dataset!r}{config} split {opts.split!r}"
        dataset = load_split(
            what,
            "data.source.dataset",
            cache_dir=opts.cache_dir,
            path=opts.dataset,
            name=opts.config,
            split=opts.split,
            revision=opts.revision,
        )
        return text_column(dataset, opts.text_column, what, "data.source.text_column", where=opts.where)
