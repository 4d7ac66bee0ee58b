"""The analysis commands end to end on a real (CI-sized) store, and their errors (one line, exit 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from mia_kd.cli import main
from mia_kd.store import read_table

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


def test_corrupt_results_folder_is_refused_and_left_as_it_was(store, capsys):
    victim = next((store / "metrics").rglob("*.parquet"))
    victim.write_bytes(b"garbage")
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    assert main(["frontier", str(store)]) == 2
    assert "cannot read the 'metrics' table" in capsys.readouterr().err
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before  # nothing written, nothing lost
    assert victim.read_bytes() == b"garbage"


def test_analysis_commands_import_neither_torch_nor_ray(store):
    code = (
        "import sys; from mia_kd.cli import main; "
        f"assert main(['frontier', {str(store)!r}]) == 0; assert main(['ensemble', {str(store)!r}]) == 0; "
        "print(sorted(m for m in ('torch', 'ray', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
