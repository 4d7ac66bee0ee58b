from __future__ import annotations

from pathlib import Path

import pytest

from mia_kd.data import load_texts
from mia_kd.errors import DataError


def test_local_folder_loads(local_hf) -> None:
    assert load_texts(local_hf.spec(text_column="content")) == ("hf", local_hf.texts)


def test_missing_column(local_hf) -> None:
    pattern = r"^data\.source\.text_column: no column 'text' in .*; columns: content, n$"
    with pytest.raises(DataError, match=pattern):
        load_texts(local_hf.spec())


def test_missing_split(local_hf) -> None:
    with pytest.raises(DataError, match=r"^data\.source\.dataset: cannot read .*split 'validation'"):
        load_texts(local_hf.spec(text_column="content", split="validation"))


def test_missing_local_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_texts({"name": "hf", "dataset": str(tmp_path / "no_such_folder"), "cache_dir": str(tmp_path)})
    assert str(info.value).startswith("data.source.dataset: cannot read ")
    assert "\n" not in str(info.value)
