"""Every bad input the users' issue listed, in one table, through the command line: each ends in one line on
stderr and exit code 2, or (a foreign or torn file among good ones, an --out folder) in a clean run that
names what it skipped. The config cases are tests/test_validate.py's table, run here as `validate` and, where
trial would have crashed, as `trial` too; the results cases run on a copy of a real store (records and saved
students included).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mia_kd.cli import main
from tests.analysis.test_bad_results import read_only
from tests.test_validate import CASES, SMALL, _bad_utf8

pytestmark = pytest.mark.slow


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("mia-kd: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _config(tmp_path: Path, raw: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture
def results(trial_store, tmp_path) -> Path:
    """A copy of the real store, so a case may spoil it."""
    return Path(shutil.copytree(trial_store[0], tmp_path / "results"))


def _foreign_parquet(results: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    import pandas as pd

    stray = next((results / "trials").glob("sweep_id=*/method=*/")) / "summary.parquet"
    pd.DataFrame({"run": ["x"], "score": [1.0]}).to_parquet(stray)
    assert main(["frontier", str(results)]) == 0
    assert str(stray) in capsys.readouterr().err


def _truncated_trials(results: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    victim = next((results / "trials").rglob("method=temperature/*.parquet"))  # not the baseline's: it sets the
    # hypervolume reference point, and without it frontier asks for --reference-point (one line, exit 2)
    victim.write_bytes(victim.read_bytes()[:100])
    assert main(["frontier", str(results)]) == 0
    assert str(victim) in capsys.readouterr().err


def _report_out(results: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "analysis"  # a folder: report --out DIR was an IsADirectoryError
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert (out / "report.html").stat().st_size > 0


def _ensemble_out(results: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "mine"  # was silently ignored: the row went into the results folder
    assert main(["ensemble", str(results), "--max-utility-drop", "0.5", "--out", str(out)]) == 0
    assert list((out / "ensembles").rglob("*.parquet")) and not (results / "ensembles").exists()


def _read_only(results: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    read_only(results, monkeypatch)
    assert main(["frontier", str(results)]) == 2
    assert "pass --out DIR" in _one_line(capsys)


def _unknown_export(results: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    assert main(["export", str(results), "nope", str(tmp_path / "dest")]) == 2
    assert "t0-none" in _one_line(capsys)  # the saved trial ids are listed


RESULTS_CASES = {
    "another tool's Parquet under trials/": _foreign_parquet,
    "a truncated trials file": _truncated_trials,
    "report --out DIR": _report_out,
    "ensemble --out DIR": _ensemble_out,
    "a read-only results folder": _read_only,
    "export of an unknown trial": _unknown_export,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_config_trial_would_crash_on_is_one_line_from_validate(tmp_path, capsys, case):
    make, expected = CASES[case]
    assert main(["validate", _config(tmp_path, make(tmp_path))]) == 2
    assert expected.format(tmp=tmp_path) in _one_line(capsys)


def test_a_non_utf8_jsonl_is_one_line_from_trial_too(tmp_path, capsys):
    source = {"name": "files", "path": str(_bad_utf8(tmp_path, ".jsonl"))}
    raw = {**SMALL, "data": {**SMALL["data"], "source": source}, "runtime": {"cache_dir": str(tmp_path / "cache")}}
    assert main(["trial", _config(tmp_path, raw), "--out", str(tmp_path / "out")]) == 2
    assert "is not valid UTF-8" in _one_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", sorted(RESULTS_CASES))
def test_a_bad_results_folder_or_argument_is_one_line_or_a_clean_skip(results, tmp_path, capsys, monkeypatch, case):
    RESULTS_CASES[case](results, capsys, tmp_path, monkeypatch)
