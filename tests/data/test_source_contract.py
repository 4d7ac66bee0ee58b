"""What every registered data source promises, tested on each one.

Parametrised over ``SOURCES.names()``: a new source file is tested here without editing this file, except
that a source with required options names an offline example in :data:`EXAMPLES` (a fixture of
``conftest.py``); the test says so when one is missing.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from mia_kd.data import SOURCES, Source, SourceOptions, load_texts, resolve_source, validate_source
from mia_kd.errors import ConfigError

parametrize_source = pytest.mark.parametrize("name", SOURCES.names())

# Source -> the conftest fixture giving a spec that reads a small local dataset (and its texts).
EXAMPLES = {"files": "local_files", "hf": "local_hf"}
# What the hf example needs beyond the fixture's spec: its texts are not in the default column.
EXAMPLE_OPTIONS = {"hf": {"text_column": "content"}}


def example(name: str, request: pytest.FixtureRequest) -> tuple[dict, list[str] | None]:
    """A spec of source ``name`` that reads offline, and the texts it must give (None: not known here)."""
    if name in EXAMPLES:
        local = request.getfixturevalue(EXAMPLES[name])
        return local.spec(**EXAMPLE_OPTIONS.get(name, {})), local.texts
    required = [field for field, info in SOURCES.get(name).Options.model_fields.items() if info.is_required()]
    if required:
        pytest.fail(f"source {name!r} requires {required}: add an offline example to EXAMPLES and conftest.py")
    return {"name": name}, None


@parametrize_source
def test_registered_under_its_file_name(name: str) -> None:
    cls = SOURCES.get(name)
    assert issubclass(cls, Source)
    assert cls.name == name
    assert Path(inspect.getfile(cls)).stem == name
    assert inspect.getmodule(cls).__doc__


@parametrize_source
def test_options_are_source_options_that_forbid_unknown_keys(name: str) -> None:
    options = SOURCES.get(name).Options
    assert issubclass(options, SourceOptions)
    assert options.model_config["extra"] == "forbid" and options.model_config["frozen"]
    allowed = ", ".join(sorted(options.model_fields))
    with pytest.raises(ConfigError) as info:
        validate_source({"name": name, "no_such_option": 1})
    assert str(info.value) == f"data.source: unknown option 'no_such_option' for source {name!r}; allowed: {allowed}"


@parametrize_source
def test_load_returns_a_list_of_texts(name: str, request: pytest.FixtureRequest) -> None:
    spec, expected = example(name, request)
    resolved, source = resolve_source(spec)
    assert resolved == name
    texts = source.load()
    assert isinstance(texts, list) and texts and all(isinstance(text, str) for text in texts)
    if expected is not None:
        assert texts == expected


@parametrize_source
def test_record_ids_are_made_from_a_stable_namespace(name: str, request: pytest.FixtureRequest) -> None:
    # Without an override, the namespace is the registry key; load_texts hands it to make_records.
    spec, _ = example(name, request)
    _, source = resolve_source(spec)
    assert isinstance(source.id_namespace, str) and source.id_namespace
    if type(source).id_namespace is Source.id_namespace:
        assert source.id_namespace == name
    if name in EXAMPLES:  # cheap to read twice
        assert load_texts(spec)[0] == source.id_namespace
