from __future__ import annotations

import json
from pathlib import Path

import pytest

from mia_kd.data import load_texts
from mia_kd.errors import DataError

TEXTS = ["One line of the local dataset.", "Another line of the local dataset."]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    rows = [{"content": text, "n": i} for i, text in enumerate(TEXTS)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def spec(folder: Path, tmp_path: Path, **options: object) -> dict[str, object]:
    return {"name": "hf", "dataset": str(folder), "cache_dir": str(tmp_path / "cache"), **options}


def test_local_folder_loads(folder: Path, tmp_path: Path) -> None:
    assert load_texts(spec(folder, tmp_path, text_column="content")) == ("hf", TEXTS)


def test_missing_column(folder: Path, tmp_path: Path) -> None:
    pattern = r"^data\.source\.text_column: no column 'text' in .*; columns: content, n$"
    with pytest.raises(DataError, match=pattern):
        load_texts(spec(folder, tmp_path))


def test_missing_split(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^data\.source\.dataset: cannot read .*split 'validation'"):
        load_texts(spec(folder, tmp_path, text_column="content", split="validation"))


def test_missing_local_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_texts({"name": "hf", "dataset": str(tmp_path / "no_such_folder"), "cache_dir": str(tmp_path)})
    assert str(info.value).startswith("data.source.dataset: cannot read ")
    assert "\n" not in str(info.value)
