from __future__ import annotations

import pytest

from mia_kd.data import SOURCES, validate_source
from mia_kd.errors import ConfigError


def test_registry_keys_match_file_names() -> None:
    assert SOURCES.names() == ["files", "hf", "python-docs"]
    for name in SOURCES:
        module = SOURCES.get(name).__module__
        assert module.rsplit(".", 1)[1] == name.replace("-", "_")


@pytest.mark.parametrize(
    "spec",
    ["python-docs", {"name": "python-docs", "max_words": 20}, {"name": "files", "path": "/nowhere/*.txt"}],
)
def test_valid_specs_validate_without_reading(spec: object) -> None:
    validate_source(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pyhton-docs", "data.source.name: unknown data source 'pyhton-docs' (did you mean 'python-docs'?); "
         "allowed: files, hf, python-docs"),
        ({"path": "x"}, "data.source.name: missing; allowed: files, hf, python-docs"),
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
