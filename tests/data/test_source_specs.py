"""Source specs: validated by name and options without reading any data. What every source promises is
tested on each one in ``test_source_contract.py``."""

from __future__ import annotations

import pytest

from mia_kd.data import validate_source
from mia_kd.errors import ConfigError


@pytest.mark.parametrize(
    "spec",
    [
        "python-docs", "python_docs", {"name": "python-docs", "max_words": 20},
        {"name": "files", "path": "/nowhere/*.txt"},
    ],
)
def test_valid_specs_validate_without_reading(spec: object) -> None:
    validate_source(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pyhton-docs", "data.source.name: unknown data source 'pyhton-docs' (did you mean 'python-docs'?); "
         "allowed: files, hf, python_docs"),
        ({"path": "x"}, "data.source.name: missing; allowed: files, hf, python_docs"),
        ({"name": "files", "pth": "x.txt"},
         "data.source: unknown option 'pth' for source 'files'; allowed: format, path, text_column, where"),
        ({"name": "files"}, "data.source.path: missing; source 'files' needs it"),
        ({"name": "files", "path": "x", "format": "xml"},
         "data.source.format: Input should be 'auto', 'txt', 'jsonl', 'json', 'csv' or 'parquet'; got 'xml'"),
        ({"name": "python-docs", "min_words": 0},
         "data.source.min_words: Input should be greater than or equal to 1; got 0"),
        ({"name": "python-docs", "min_words": 10, "max_words": 5},
         "data.source: max_words must be at least min_words (10)"),
        (3, "data.source: expected a source name or a mapping with a name; got int 3"),
    ],
)
def test_invalid_specs_are_one_line_config_errors(spec: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_source(spec)  # type: ignore[arg-type]
    assert str(info.value) == message
