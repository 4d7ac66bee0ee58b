"""Records, sources, IID splits with exact membership, and the blind check (docs/architecture.md §3).

Typical use::

    name, texts = load_texts("python-docs")
    split = split_records(make_records(texts, name), SplitSizes(1000, 1000, 500, 2000), seed=0)
    require_iid(blind_check(split, seed=0), allow_shifted=False)

or, for a trial's config, ``split, blind, shifted = prepare_split(config)``.
"""

from mia_kd.data._blind import BlindCheck, blind_check, require_iid
from mia_kd.data._load import SourceSpec, load_texts, resolve_source, validate_source
from mia_kd.data._prepare import prepare_split
from mia_kd.data._record import Record, clean_text, make_records, record_id
from mia_kd.data._split import (
    Split,
    SplitSizes,
    require_records,
    source_demands,
    split_labelled,
    split_records,
    split_shifted,
)
from mia_kd.data.sources import SOURCES, Source, SourceOptions

__all__ = [
    "SOURCES",
    "BlindCheck",
    "Record",
    "Source",
    "SourceOptions",
    "SourceSpec",
    "Split",
    "SplitSizes",
    "blind_check",
    "clean_text",
    "load_texts",
    "make_records",
    "prepare_split",
    "record_id",
    "require_iid",
    "require_records",
    "resolve_source",
    "source_demands",
    "split_records",
    "split_labelled",
    "split_shifted",
    "validate_source",
]
