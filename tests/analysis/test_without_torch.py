"""The analysis side installs and runs without torch and Ray: a real venv with the base install only.

The results are written by a real (CI-sized) trial store in this environment; a second venv gets
``pip install -e .`` (the base dependencies, no extras) from the same pins, and every analysis command runs
there through its ``mia-kd`` script. What needs the ``sweep`` extra says so in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analysis_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("analysis-venv") / "venv"
    uv = Path(sys.executable).parent / "uv"
    assert uv.is_file(), "the README's install puts uv in the venv; this test uses it to build a second venv"
    env = {**os.environ, "UV_FIND_LINKS": os.environ.get("PIP_FIND_LINKS", "")}
    subprocess.run([str(uv), "venv", "-q", "-p", sys.executable, str(venv)], check=True, env=env)
    subprocess.run([str(uv), "pip", "install", "-q", "-p", str(venv), "-c", str(REPO / ".ci" / "constraints.txt"),
                    "-e", str(REPO)], check=True, env=env, cwd=REPO)
    return venv


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([str(venv / "bin" / "mia-kd"), *args], capture_output=True, text=True, env=env, timeout=300)


def test_the_base_install_has_neither_torch_nor_ray(analysis_venv):
    probe = "import importlib.util as u; print([m for m in ('torch', 'ray', 'transformers', 'optuna') if u.find_spec(m)])"
    found = subprocess.run([str(analysis_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "[]"


def test_analysis_commands_run_without_torch_and_ray(analysis_venv, trial_store, tmp_path):
    root, _ = trial_store
    for command, written in [("frontier", "frontier.png"), ("asymmetry", "asymmetry.png"),
                             ("ensemble", None), ("report", "report.html")]:
        out = tmp_path / command
        done = _run(analysis_venv, command, str(root), "--out", str(out))
        assert done.returncode == 0, f"mia-kd {command}: {done.stderr[-2000:]}"
        if written:
            assert (out / written).is_file(), f"mia-kd {command} wrote {sorted(p.name for p in out.iterdir())}"


def test_what_needs_the_sweep_extra_says_so(analysis_venv, tmp_path):
    done = _run(analysis_venv, "trial", str(REPO / "sweeps" / "smoke.yaml"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "mia-kd[sweep]" in done.stderr, done.stderr
