"""The quickstart sweep, this checkout against an earlier commit, one after the other on the same machine.

Issue 15's bar: the quickstart sweep trains each distinct configuration once and its wall time falls by at
least 30% against the commit before the throughput work (98d56e2). Both sides run `mia-kd sweep` on the same
config into fresh folders with the teacher and reference model already cached (the README's quickstart time
is quoted that way), the old one from a `git worktree` of its commit with this environment's packages.

    python benchmarks/sweep_speedup.py                       # about 25 minutes here
    python benchmarks/sweep_speedup.py --before 98d56e2 --config sweeps/quickstart.yaml
    python benchmarks/sweep_speedup.py --now HEAD            # the 'now' side from a worktree of HEAD

Prints a Markdown table and writes it to benchmarks/results/sweep_speedup.md (JSON beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "sweep_speedup.md"
RUN = "import sys; from mia_kd.cli import main; sys.exit(main())"


def _sweep(code: Path, config: str, out: Path, cache: Path) -> dict:
    """``mia-kd sweep`` with the package at ``code``; wall seconds and what the trials table says."""
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", RUN, "sweep", str(code / config), "--out", str(out), "-q",
           "--set", f"runtime.cache_dir={cache}", "--set", "sweep.save_students=none"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the sweep at {code} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    trials = pq.read_table(out / "trials").to_pandas()
    done_trials = trials[trials["status"] == "completed"]
    return {
        "seconds": seconds, "students": len(done_trials), "failed": int((trials["status"] == "failed").sum()),
        "teacher_cache_hit": bool(done_trials["teacher_cache_hit"].all()),
        "objectives": sorted(zip(done_trials["method"].astype(str), done_trials["strength"].round(6),
                                 done_trials["objective_utility"].round(6), strict=True)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="98d56e2", help="the earlier commit (default: before issue 15's work)")
    parser.add_argument("--now", default=None,
                        help="run the 'now' side from this commit's worktree (default: this checkout as it is)")
    parser.add_argument("--config", default="sweeps/quickstart.yaml")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mia_kd_speedup_"))
    old = work / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(old), args.before], cwd=REPO, check=True,
                   capture_output=True)
    now_code = REPO
    if args.now:  # a worktree of that commit, so the checkout can change while this runs
        now_code = work / "now"
        subprocess.run(["git", "worktree", "add", "--detach", str(now_code), args.now], cwd=REPO, check=True,
                       capture_output=True)
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=now_code, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "mia_kd"], cwd=now_code,
                                capture_output=True, text=True).stdout.strip())  # the code that ran, not the docs
    cache = work / "cache"
    try:
        # Warm the model cache with a one-trial run of each side (cache keys may differ between versions).
        for code in (old, now_code):
            warm = work / f"warm-{code.name}"
            subprocess.run([sys.executable, "-c", RUN, "trial", str(code / args.config), "--out", str(warm), "-q",
                            "--set", f"runtime.cache_dir={cache}"], cwd=code, check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
        before = _sweep(old, args.config, work / "out-before", cache)
        after = _sweep(now_code, args.config, work / "out-after", cache)
    finally:
        for tree in {old, now_code} - {REPO}:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    ratio = after["seconds"] / before["seconds"]
    verdict = "met" if ratio <= 0.7 else "NOT met"
    now = f"{revision}{' + uncommitted changes' if dirty else ''}"
    lines = [
        f"Measured {date.today()} on {platform.node()} ({os.cpu_count()} CPUs) with "
        f"`python benchmarks/sweep_speedup.py` (`{args.config}`, teacher and reference model cached, students not "
        "saved), one sweep after the other.",
        "",
        "| | commit | students trained | failed | wall time |",
        "|---|---|---:|---:|---:|",
        f"| before | {args.before} | {before['students']} | {before['failed']} | {before['seconds'] / 60:.1f} min |",
        f"| now | {now} | {after['students']} | {after['failed']} | {after['seconds'] / 60:.1f} min |",
        "",
        f"Wall time now / before: **{ratio:.2f}** ({100 * (1 - ratio):.0f}% less; target at least 30% less: {verdict}).",
    ]
    if not (before["teacher_cache_hit"] and after["teacher_cache_hit"]):
        lines.append("\nA side trained its teacher (cache miss): the comparison is not like for like.")
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"date": str(date.today()), "before": {"commit": args.before, **before}, "now": {"commit": now, **after},
         "ratio": ratio}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
