"""Sweep overhead: the same trials through `mia-kd sweep` (Ray Tune + Optuna) and in a plain Python loop.

Both run one method at the same strengths (the sweep with the grid sampler, one trial at a time, all
CPUs per trial), after the same one-off preparation (split, teacher, reference model; cached on disk).
Prints a Markdown table and writes JSON. Target: overhead <= 5% of trial time at quickstart size.

    python benchmarks/sweep_overhead.py sweeps/quickstart.yaml --method red_list --trials 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import yaml  # noqa: E402

from mia_kd.config import read_yaml, validate_config  # noqa: E402
from mia_kd.privacy import method_class  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="sweeps/quickstart.yaml")
    parser.add_argument("--method", default="red_list")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--out", default="benchmarks/results/sweep_overhead.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="mia_kd_overhead_"))
    raw = read_yaml(args.config)
    raw.pop("sweep", None)
    raw.setdefault("runtime", {}).update(progress=False, cache_dir=str(work / "cache"), threads=max(1, int(args.cpus)))
    cls = method_class(args.method)
    strengths = [cls.low + (cls.high - cls.low) * i / max(1, args.trials - 1) for i in range(args.trials)]

    from mia_kd.trial import prepare, run_student

    # Warm the model cache so both sides start from the same state (the teacher is trained once per sweep).
    start = time.perf_counter()
    prepare(validate_config(raw))
    warm = time.perf_counter() - start

    # ---- plain loop: prepare (cache hit) + the trials, one after the other
    start = time.perf_counter()
    base = validate_config(raw)
    prepared = prepare(base)
    plain_prepare = time.perf_counter() - start
    trial_times = []
    for strength in strengths:
        t0 = time.perf_counter()
        run_student(prepared, base.for_trial(method=args.method, strength=strength))
        trial_times.append(time.perf_counter() - t0)
    plain = time.perf_counter() - start

    # ---- the sweep: same trials, grid sampler, one at a time with all CPUs
    sweep_file = work / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({**raw, "sweep": {
        "methods": {args.method: {}}, "trials_per_method": args.trials, "sampler": "grid", "max_concurrent": 1,
        "resources": {"cpu": args.cpus}, "save_students": "none", "out": str(work / "out"),
    }}))
    ray_tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    os.environ["RAY_TMPDIR"] = ray_tmp
    from mia_kd.sweep.runner import run_sweep

    start = time.perf_counter()
    outcome = run_sweep(sweep_file)
    swept = time.perf_counter() - start

    n = len(strengths)
    mean_trial = sum(trial_times) / n
    overhead = (swept - plain) / n
    rows = {
        "date": str(date.today()), "config": args.config, "method": args.method, "trials": n, "cpus": args.cpus,
        "first_prepare_s": warm, "plain_total_s": plain, "plain_prepare_s": plain_prepare, "mean_trial_s": mean_trial,
        "sweep_total_s": swept, "overhead_per_trial_s": overhead, "overhead_fraction": overhead / mean_trial,
        "sweep_completed": outcome.completed,
    }
    print(f"\n{rows['date']}, {args.config}, {args.method} x {n} trials, {args.cpus:g} CPUs per trial, one at a time\n")
    print("| | wall-clock (s) | per trial (s) |")
    print("|---|---|---|")
    print(f"| plain loop (prepare + trials) | {plain:.1f} | {mean_trial:.1f} |")
    print(f"| mia-kd sweep (Ray init, prepare, Tune + Optuna, trials) | {swept:.1f} | {swept / n:.1f} |")
    print(f"| overhead | {swept - plain:.1f} | {overhead:.1f} ({100 * overhead / mean_trial:.1f}% of a trial) |")
    verdict = "met" if overhead / mean_trial <= 0.05 else "NOT met"
    print(f"\ntarget overhead <= 5% of trial time: {verdict}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
