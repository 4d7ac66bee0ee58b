"""Shared fixtures for the data tests: the python-docs corpus is built once per session."""

from __future__ import annotations

import pytest

from mia_kd.data import Record, load_texts, make_records


@pytest.fixture(scope="session")
def docs_texts() -> list[str]:
    """The python-docs sentences of the running Python (about two seconds to build)."""
    name, texts = load_texts("python-docs")
    assert name == "python-docs"
    return texts


@pytest.fixture(scope="session")
def docs_records(docs_texts: list[str]) -> list[Record]:
    return make_records(docs_texts, "python-docs")
