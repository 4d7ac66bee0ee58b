"""Bad results folders through the CLI, on a small synthetic store (trials and metrics only: ``frontier``
reads no records). Each case ends in one line and exit code 2, or in a warning naming the file that was
skipped and an analysis of the rest. The commands that read records are tested on a real store in
test_commands.py."""

from __future__ import annotations

import builtins
import errno
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mia_kd.cli import main
from mia_kd.store import SweepStorage
from tests.analysis.test_frontier import write_store

POINTS = [(0.70, 5.0), (0.62, 5.4), (0.58, 5.9), (0.66, 5.2), (0.55, 6.5), (0.60, 5.6)]
METHODS = ["none", "a", "a", "b", "b", "b"]


@pytest.fixture
def store(tmp_path) -> Path:
    """A sweep of six completed trials (t000 to t005), a trials and a metrics file each."""
    return Path(write_store(tmp_path / "results", POINTS, METHODS))


def read_only(folder: Path, monkeypatch) -> None:
    """Make ``folder`` read-only. chmod does that for a plain user; root (as in CI containers) writes through
    any mode bits, so there every write under ``folder`` is made to fail as the OS fails it for a plain user:
    PermissionError(EACCES) from mkdir, open for writing, Parquet writes and the store's text files."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return

    def inside(path) -> bool:
        return Path(os.path.abspath(os.fspath(path))).is_relative_to(folder)

    def deny(path):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    def guard(original, path_of, writes=lambda *a, **k: True):
        def guarded(*args, **kwargs):
            path = path_of(*args, **kwargs)
            if isinstance(path, (str, os.PathLike)) and inside(path) and writes(*args, **kwargs):
                deny(path)
            return original(*args, **kwargs)
        return guarded

    def opens_for_writing(file, mode="r", *args, **kwargs):
        return any(c in mode for c in "wax+")

    monkeypatch.setattr(Path, "mkdir", guard(Path.mkdir, lambda self, *a, **k: self,
                                              lambda self, *a, **k: not self.exists()))
    monkeypatch.setattr(builtins, "open", guard(builtins.open, lambda file, *a, **k: file, opens_for_writing))
    monkeypatch.setattr(pq, "write_table", guard(pq.write_table, lambda table, where, *a, **k: where))
    monkeypatch.setattr(SweepStorage, "write_text", guard(SweepStorage.write_text,
                                                          lambda self, rel, text: self.path(rel)))


def _listing(folder: Path) -> list:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(autouse=True)
def _restore_modes(tmp_path):
    yield
    for path in [tmp_path, *tmp_path.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


def test_frontier_out_is_a_folder_created_if_missing_and_all_its_files_go_there(store, tmp_path, capsys):
    before = _listing(store)
    out = tmp_path / "new" / "analysis"
    assert main(["frontier", str(store), "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["frontier.html", "frontier.json", "frontier.parquet", "frontier.png"]
    assert f"wrote: {out / 'frontier.parquet'}" in shown
    assert _listing(store) == before  # with --out nothing goes into the results folder
    recorded = json.loads((out / "frontier.json").read_text())["s"]["point"]
    assert main(["frontier", str(store), "--out", str(out), "--margin", "0.5"]) == 0  # the recorded default
    assert json.loads((out / "frontier.json").read_text())["s"]["point"] == recorded


def test_a_point_the_results_folder_records_is_reused_with_out(store, tmp_path, capsys):
    assert main(["frontier", str(store), "--reference-point", "0.9,7"]) == 0
    assert main(["frontier", str(store), "--out", str(tmp_path / "elsewhere")]) == 0
    assert "(0.9000, 7.0000) = given" in capsys.readouterr().out
    assert not (tmp_path / "elsewhere" / "frontier.json").exists()


@pytest.mark.parametrize("name", ["taken", "report.html"])
def test_out_naming_a_file_is_one_line(store, tmp_path, capsys, name):
    (tmp_path / "taken").write_text("a file")
    assert main(["frontier", str(store), "--out", str(tmp_path / name)]) == 2
    assert "--out is a folder" in _one_line_error(capsys)


def test_read_only_results_folder_is_one_line_naming_the_fix(store, tmp_path, capsys, monkeypatch):
    before = _listing(store)
    read_only(store, monkeypatch)
    assert main(["frontier", str(store)]) == 2
    err = _one_line_error(capsys)
    assert "cannot write the analysis outputs" in err and "pass --out DIR" in err and str(store) in err
    assert main(["frontier", str(store), "--out", str(tmp_path / "mine")]) == 0  # the fix works
    assert (tmp_path / "mine" / "frontier.png").stat().st_size > 0
    assert _listing(store) == before


def test_unwritable_out_is_one_line(store, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked, monkeypatch)
    assert main(["frontier", str(store), "--out", str(locked / "analysis")]) == 2
    assert "give --out a folder you can write to" in _one_line_error(capsys)


def test_another_tools_parquet_file_among_the_trials_is_skipped_with_a_warning(store, capsys):
    stray = store / "trials" / "sweep_id=s" / "method=a" / "summary.parquet"
    pd.DataFrame({"run": ["x", "y"], "score": [1.0, 2.0]}, index=[3, 4]).to_parquet(stray)  # pandas index metadata
    clash = store / "trials" / "export.parquet"
    pq.write_table(pa.table({"trial_id": ["z"], "status": [1]}), clash)  # a mia-kd name with another type
    assert main(["frontier", str(store)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "skipping" in line]
    assert len(warnings) == 2 and str(stray) in warnings[1] and "not a mia-kd 'trials' file" in warnings[1]
    assert str(clash) in warnings[0] and "clash" in warnings[0]
    front = pd.read_parquet(store / "analysis" / "frontier.parquet")  # over the six real trials
    assert {"t000", "t001", "t002", "t004"} <= set(front["trial_id"]) and "  6 " in captured.out


@pytest.mark.parametrize("table", ["trials", "metrics"])
def test_a_truncated_file_is_skipped_and_the_rest_analysed(store, capsys, table):
    victim = store / table / "sweep_id=s" / "method=b" / "t004.parquet"
    victim.write_bytes(victim.read_bytes()[:-40])  # torn: its footer is gone
    assert main(["frontier", str(store)]) == 0
    captured = capsys.readouterr()
    assert str(victim) in captured.err and "not a readable Parquet file" in captured.err
    if table == "metrics":
        assert "left out 1 completed trial(s) without readable metrics rows: t004" in captured.err
    front = pd.read_parquet(store / "analysis" / "frontier.parquet")
    assert "t004" not in set(front["trial_id"]) and {"t000", "t001", "t002"} <= set(front["trial_id"])
    assert "n_trials" in captured.out and victim.stat().st_size > 0  # left in place for the user to look at


def test_a_table_none_of_whose_files_reads_is_one_line(store, capsys):
    for path in (store / "trials").rglob("*.parquet"):
        path.write_bytes(b"garbage")
    assert main(["frontier", str(store)]) == 2
    assert "cannot read the 'trials' table" in _one_line_error(capsys)
