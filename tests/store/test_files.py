"""SweepStorage: the same operations on a local path and on a URL (``file://`` stands in for s3/gs)."""

from __future__ import annotations

import pytest

from mia_kd.errors import ConfigError
from mia_kd.store import JOURNAL, SweepStorage


@pytest.fixture(params=["path", "url"])
def storage(request, tmp_path):
    root = tmp_path / "out"
    return SweepStorage.parse(str(root) if request.param == "path" else f"file://{root}"), root


def test_files_and_folders(storage, tmp_path):
    store, root = storage
    assert (store.local is not None) == ("://" not in store.out)
    assert store.read_text("sweep.json") is None and not store.exists("sweep.json")
    store.write_text("sweep.json", '{"a": 1}')
    store.write_text("sweep.json", '{"a": 2}')  # replaced, no temporary file left
    assert store.read_text("sweep.json") == '{"a": 2}'
    assert sorted(p.name for p in root.iterdir()) == ["sweep.json"]
    local = tmp_path / "student"
    local.mkdir()
    (local / "model.safetensors").write_bytes(b"weights")
    store.upload_dir(local, "students/t1")
    store.upload_dir(local, "students/t2")
    (local / "model.safetensors").write_bytes(b"new")
    store.upload_dir(local, "students/t1")  # a retried trial replaces its folder
    assert (root / "students" / "t1" / "model.safetensors").read_bytes() == b"new"
    assert sorted(store.subdirs("students")) == ["t1", "t2"]
    store.delete_dir("students/t2")
    assert store.subdirs("students") == ["t1"] and store.subdirs("nothing") == []


def test_journal_lives_with_the_driver_and_travels_through_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    local = SweepStorage.parse(str(tmp_path / "plain"))
    assert local.journal_file() == tmp_path / "plain" / JOURNAL
    remote = SweepStorage.parse(f"file://{tmp_path / 'bucket'}")
    journal = remote.journal_file()
    assert str(journal).startswith(str(tmp_path / "home"))
    journal.write_text("op 1\n")
    remote.push_journal()
    assert (tmp_path / "bucket" / JOURNAL).read_text() == "op 1\n"
    journal.unlink()  # a new machine: fetched back from the store
    assert remote.journal_file().read_text() == "op 1\n"


def test_bad_url_is_a_config_error():
    with pytest.raises(ConfigError, match="--out 'nosuch://x'"):
        SweepStorage.parse("nosuch://x")
