"""Shared fixtures for the data tests: the python-docs corpus (built once per session) and small local
datasets for the ``files`` and ``hf`` sources."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class LocalSource:
    """A source spec that reads a small local dataset offline, and the texts it holds (in order)."""

    base: dict[str, Any]
    texts: list[str]

    def spec(self, **options: Any) -> dict[str, Any]:
        return {**self.base, **options}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def local_files(tmp_path: Path) -> LocalSource:
    """``files``: one JSON Lines file with a ``text`` column."""
    texts = ["The first record is here.", "A second one follows it.", "And then a third."]
    path = _write_jsonl(tmp_path / "data.jsonl", [{"text": text, "label": i % 2} for i, text in enumerate(texts)])
    return LocalSource({"name": "files", "path": str(path)}, texts)


@pytest.fixture
def local_hf(tmp_path: Path) -> LocalSource:
    """``hf``: a local dataset folder (``train.jsonl`` with columns ``content`` and ``n``), cached under tmp.

    Its texts are in ``content``, not in the default ``text`` column: ``spec()`` alone misses the column.
    """
    texts = ["One line of the local dataset.", "Another line of the local dataset."]
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    _write_jsonl(folder / "train.jsonl", [{"content": text, "n": i} for i, text in enumerate(texts)])
    return LocalSource({"name": "hf", "dataset": str(folder), "cache_dir": str(tmp_path / "cache")}, texts)
