from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mia_kd.data import load_texts
from mia_kd.errors import DataError

TEXTS = ["The first record is here.", "A second one follows it.", "And then a third."]


def write(tmp_path: Path, fmt: str) -> Path:
    frame = pd.DataFrame({"text": TEXTS, "label": [0, 1, 0]})
    if fmt == "txt":
        path = tmp_path / "data.txt"
        path.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n   \n{TEXTS[2]}\n", encoding="utf-8")
    elif fmt == "jsonl":
        path = tmp_path / "data.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in frame.to_dict("records")), encoding="utf-8")
    elif fmt == "json":
        path = tmp_path / "data.json"
        path.write_text(json.dumps(frame.to_dict("records")), encoding="utf-8")
    elif fmt == "csv":
        path = tmp_path / "data.csv"
        frame.to_csv(path, index=False)
    else:
        path = tmp_path / "data.parquet"
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "json", "csv", "parquet"])
def test_each_format_loads_in_order(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, fmt)
    assert load_texts({"name": "files", "path": str(path)}) == ("files", TEXTS)


def test_explicit_format_and_column(tmp_path: Path) -> None:
    path = tmp_path / "data.dat"
    pd.DataFrame({"body": TEXTS}).to_csv(path, index=False)
    spec = {"name": "files", "path": str(path), "format": "csv", "text_column": "body"}
    assert load_texts(spec)[1] == TEXTS


def test_glob_reads_files_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("second file line\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first file line\n", encoding="utf-8")
    assert load_texts({"name": "files", "path": str(tmp_path / "*.txt")})[1] == [
        "first file line",
        "second file line",
    ]


def test_nothing_written_outside_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    load_texts({"name": "files", "path": str(write(tmp_path, "jsonl"))})
    assert not home.exists()


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "x" / "y.jsonl"
    with pytest.raises(DataError, match=r"^data\.source\.path: no file matches .*y\.jsonl"):
        load_texts({"name": "files", "path": str(missing)})


def test_missing_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "csv")
    with pytest.raises(DataError) as info:
        load_texts({"name": "files", "path": str(path), "text_column": "txt"})
    message = str(info.value)
    assert message == f"data.source.text_column: no column 'txt' in {path}; columns: text, label"


def test_non_string_column(tmp_path: Path) -> None:
    path = write(tmp_path, "parquet")
    with pytest.raises(DataError, match=r"^data\.source\.text_column: column 'label' .* non-string values"):
        load_texts({"name": "files", "path": str(path), "text_column": "label"})


@pytest.mark.parametrize("name", ["bad.parquet", "bad.jsonl"])
def test_corrupt_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 not {{ valid \xff data")
    with pytest.raises(DataError) as info:
        load_texts({"name": "files", "path": str(path)})
    message = str(info.value)
    assert message.startswith(f"data.source.path: cannot read {path}")
    assert "\n" not in message


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xml"
    path.write_text("<a/>", encoding="utf-8")
    with pytest.raises(DataError, match=r"^data\.source\.format: .*\.xml; set format"):
        load_texts({"name": "files", "path": str(path)})


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
def test_bytes_that_are_not_utf8_give_one_line_naming_the_fix(tmp_path: Path, fmt: str) -> None:
    # JSON readers keep the bytes and pyarrow fails only when the text is decoded: that was a traceback.
    path = write(tmp_path, fmt)
    path.write_bytes(path.read_bytes().replace(b"second", b"s\xe9cond"))
    with pytest.raises(DataError) as info:
        load_texts({"name": "files", "path": str(path)})
    message = str(info.value)
    assert message.startswith("data.source.") and str(path) in message
    assert "UTF-8" in message or "utf-8" in message
    assert message.endswith("re-save it as UTF-8") and "\n" not in message
    if fmt == "jsonl":
        assert message.startswith(f"data.source.text_column: column 'text' of row 2 in {path} is not valid UTF-8")


def test_a_nonmember_source_names_its_own_key(tmp_path: Path) -> None:
    path = write(tmp_path, "csv")
    with pytest.raises(DataError, match=r"^data\.nonmember_source\.text_column: no column 'txt'"):
        load_texts({"name": "files", "path": str(path), "text_column": "txt"}, "data.nonmember_source")
    with pytest.raises(DataError, match=r"^data\.nonmember_source\.path: no file matches .*; give an existing file"):
        load_texts({"name": "files", "path": str(tmp_path / "nope.jsonl")}, "data.nonmember_source")
