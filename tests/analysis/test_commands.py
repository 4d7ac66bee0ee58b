"""The analysis commands end to end on a real (CI-sized) store, and their errors (one line, exit 2)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mia_kd.cli import main
from mia_kd.store import SweepStorage, read_table

pytestmark = pytest.mark.slow


@pytest.fixture
def store(trial_store, tmp_path):
    """A private copy of the store (the commands write into it)."""
    return shutil.copytree(trial_store[0], tmp_path / "out")


def test_frontier_asymmetry_ensemble_report_write_their_files(store, tmp_path, capsys):
    assert main(["frontier", str(store)]) == 0
    assert "Pareto front across methods" in capsys.readouterr().out
    assert main(["asymmetry", str(store), "--attack", "min_k"]) == 0
    assert "TPR T" in capsys.readouterr().out
    dest = tmp_path / "ensemble"
    assert main(["ensemble", str(store), "--max-utility-drop", "0.5", "--max-size", "3", "--export", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "best single" in out and "majority vote" in out
    assert main(["report", str(store)]) == 0
    analysis = store / "analysis"
    for name in ("frontier.parquet", "frontier.png", "frontier.html", "asymmetry.parquet", "asymmetry.png", "report.html"):
        assert (analysis / name).stat().st_size > 0, name
    row = read_table(str(store), "ensembles").to_pandas().iloc[0]
    manifest = json.loads((dest / "ensemble.json").read_text())
    assert [m["trial_id"] for m in manifest["members"]] == list(row["members"])
    assert [m["weight"] for m in manifest["members"]] == pytest.approx(list(row["weights"]))
    assert row["objective_utility"] <= row["max_task_loss"]
    report = (analysis / "report.html").read_text()
    assert row["ensemble_id"] in report and "mia-kd ensemble" in report
    front = pd.read_parquet(analysis / "frontier.parquet")
    assert front["on_front"].any()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["frontier", "{missing}"], "is not a folder"),
        (["frontier", "{store}", "--sweep-id", "nope"], "no sweep 'nope'"),
        (["asymmetry", "{store}", "--attack", "nope"], "--attack: got 'nope'"),
        (["ensemble", "{store}", "--max-task-loss", "0.01"], "no student meets the task-loss limit"),
        (["ensemble", "{store}", "--max-size", "0"], "--max-size: got 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(store, tmp_path, capsys, args, expected):
    argv = [a.format(store=store, missing=tmp_path / "missing") for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1


def test_a_corrupt_file_is_skipped_with_a_warning_and_left_as_it_was(store, capsys):
    victim = next((store / "metrics").rglob("*.parquet"))
    victim.write_bytes(b"garbage")
    assert main(["frontier", str(store)]) == 0
    err = capsys.readouterr().err
    assert f"skipping {victim}" in err and f"without readable metrics rows: {victim.stem}" in err
    assert victim.stem not in set(pd.read_parquet(store / "analysis" / "frontier.parquet")["trial_id"])
    assert victim.read_bytes() == b"garbage"  # nothing lost: the user decides


def test_a_truncated_records_file_leaves_its_trial_out_of_asymmetry_and_ensembles(store, capsys):
    victim = next((store / "records").rglob("t1-temperature.parquet"))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    assert main(["asymmetry", str(store)]) == 0
    captured = capsys.readouterr()
    assert f"skipping {victim}" in captured.err and "without readable records: t1-temperature" in captured.err
    assert "t0-none" in captured.out and "t1-temperature" not in captured.out
    assert main(["ensemble", str(store), "--max-utility-drop", "0.5", "--max-size", "2"]) == 0
    captured = capsys.readouterr()
    assert "trial t1-temperature left out: no readable records" in captured.err
    assert "t1-temperature x" not in captured.out


def _listing(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


def test_out_is_a_folder_for_every_command_and_a_read_only_results_folder_is_left_alone(store, tmp_path, capsys,
                                                                                      monkeypatch):
    before = _listing(store)
    monkeypatch.setattr(Path, "mkdir", _no_writes_under(store, Path.mkdir))  # see _no_writes_under
    monkeypatch.setattr(SweepStorage, "write_text", _no_writes_under(store, SweepStorage.write_text))
    assert main(["report", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --out DIR" in err
    out = tmp_path / "analysis"  # created by the first command
    assert main(["frontier", str(store), "--out", str(out)]) == 0
    assert main(["asymmetry", str(store), "--out", str(out)]) == 0
    assert main(["ensemble", str(store), "--max-utility-drop", "0.5", "--max-size", "2", "--out", str(out)]) == 0
    wrote = capsys.readouterr().out.rsplit("wrote: ", 1)[1].strip().split(", ")  # was ignored: went to the store
    assert main(["report", str(store), "--out", str(out)]) == 0  # was IsADirectoryError
    shown = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in shown
    for name in ("frontier.parquet", "frontier.png", "frontier.html", "frontier.json", "asymmetry.parquet",
                 "asymmetry.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert wrote and all(p.startswith(str(out)) for p in wrote)
    row = read_table(str(out), "ensembles").to_pandas().iloc[0]
    assert row["ensemble_id"] in (out / "report.html").read_text()  # report --out reads the ensemble --out wrote
    assert _listing(store) == before  # with --out nothing is written to the results folder


def _no_writes_under(folder, write):
    """``Path.mkdir`` or ``SweepStorage.write_text`` refusing to write under ``folder``, as a read-only folder
    would (chmod does not stop root, who runs these tests in CI containers). Enough for a command without
    --out: the first things it writes there are frontier.json and the ``analysis`` folder; the listing
    comparison checks the rest."""

    def guarded(self, *args, **kwargs):
        path = Path(self.path(args[0])) if isinstance(self, SweepStorage) else Path(os.path.abspath(self))
        if path.is_relative_to(folder) and not path.is_dir():
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return write(self, *args, **kwargs)

    return guarded


def test_analysis_commands_import_neither_torch_nor_ray(store):
    code = (
        "import sys; from mia_kd.cli import main; "
        f"assert main(['frontier', {str(store)!r}]) == 0; assert main(['ensemble', {str(store)!r}]) == 0; "
        "print(sorted(m for m in ('torch', 'ray', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
