"""Time the smoke preset from a fresh clone: `mia-kd sweep sweeps/smoke.yaml`, then `mia-kd frontier`.

    python benchmarks/smoke.py                 # clone HEAD into a temp folder, empty model cache, time both
    python benchmarks/smoke.py --install       # also time the README's install command in the clone

The clone runs with the ``mia-kd`` of the environment that runs this script (unless ``--install``), so the
times are the preset's own: the teacher and reference model are trained (their cache is empty), every trial
runs, and the frontier is drawn. Writes ``benchmarks/results/smoke.md``; ``python docs/update_readme.py``
copies it into the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "smoke.md"
TARGET_S = 240.0
INSTALL = ("python3 -m venv .venv && .venv/bin/pip install -q uv==0.13.9 && .venv/bin/uv pip install -q -p .venv "
           '${PIP_FIND_LINKS:+--find-links "$PIP_FIND_LINKS"} -c .ci/constraints.txt -e \'.[sweep]\'')


def _timed(cmd: list[str] | str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, shell=isinstance(cmd, str), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="also time the README's install command")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mia-kd-smoke-"))
    try:
        clone = work / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                                  text=True, check=True).stdout.strip()
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        install_s = None
        if args.install:
            install_s, _ = _timed(INSTALL, clone, env)
            bin_dir = clone / ".venv" / "bin"
        else:
            bin_dir = Path(sys.executable).parent
        cache = ["--set", f"runtime.cache_dir={work / 'cache'}"]  # nothing trained before
        sweep_s, sweep_log = _timed([str(bin_dir / "mia-kd"), "sweep", "sweeps/smoke.yaml", *cache, "-q"], clone, env)
        frontier_s, frontier_log = _timed([str(bin_dir / "mia-kd"), "frontier", "results/smoke"], clone, env)
        import pandas as pd

        trials = pd.read_parquet(clone / "results" / "smoke" / "trials")
        front = pd.read_parquet(clone / "results" / "smoke" / "analysis" / "frontier.parquet")
        drawn = (clone / "results" / "smoke" / "analysis" / "frontier.png").is_file()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = sweep_s + frontier_s
    verdict = "met" if total <= TARGET_S and drawn else "NOT met"
    lines = [
        f"Measured {date.today()} on {platform.node()} ({os.cpu_count()} CPUs) with `python benchmarks/smoke.py` on a "
        f"fresh clone of {revision}, empty model cache: `mia-kd sweep sweeps/smoke.yaml` ran "
        f"{(trials['status'] == 'completed').sum()} trials ({(trials['status'] == 'failed').sum()} failed) in "
        f"{sweep_s:.0f} s, teacher and reference model trained; `mia-kd frontier results/smoke` took "
        f"{frontier_s:.1f} s and drew `frontier.png`: {int(front['on_front'].sum())} trials on the front across methods. "
        f"Together {total / 60:.1f} min (target ≤ {TARGET_S / 60:.0f} min: {verdict})"
        + (f"; the README's install command took {install_s:.0f} s before that." if install_s is not None else "."),
    ]
    text = "\n".join(lines) + "\n"
    OUT.write_text(text)
    print(text)
    print(frontier_log[-2000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
