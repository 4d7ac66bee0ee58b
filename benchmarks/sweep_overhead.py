"""Sweep overhead: the same trials through `mia-kd sweep` (Ray Tune + Optuna) and in a plain Python loop.

Both run one method at the same strengths (the sweep with the grid sampler, one trial at a time, all
CPUs per trial), after the same one-off preparation (split, teacher, reference model; cached on disk).
Prints a Markdown table and writes JSON and the table (``.md``) beside it. Target (issue 15): overhead <= 10%
of trial time at 4 trials, quickstart size.

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

TARGET = 0.10

from mia_kd.config import read_yaml, validate_config  # noqa: E402
from mia_kd.privacy import method_class  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="sweeps/quickstart.yaml")
    parser.add_argument("--method", default="red_list")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--out", default="benchmarks/results/sweep_overhead.json")
    parser.add_argument("--render", action="store_true", help="only print and write the Markdown of the recorded --out")
    args = parser.parse_args()
    if args.render:
        return render(Path(args.out))
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
        "sweep_completed": outcome.completed, "sweep_trial_s": _sweep_trial_seconds(work / "out"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return render(Path(args.out))


def _sweep_trial_seconds(out: Path) -> list[float]:
    """Each sweep trial's own time (its ``wall_time_s``: distillation, scoring, attacks), in start order."""
    import pyarrow.parquet as pq

    trials = pq.read_table(out / "trials").to_pandas().sort_values("started_at")
    return [round(float(s), 2) for s in trials["wall_time_s"]]


def render(path: Path) -> int:
    """Print the table of a recorded run (``path``, this script's JSON) and write it beside as Markdown."""
    rows = json.loads(path.read_text())
    n, plain, swept, mean_trial = rows["trials"], rows["plain_total_s"], rows["sweep_total_s"], rows["mean_trial_s"]
    overhead = rows["overhead_per_trial_s"]
    verdict = "met" if rows["overhead_fraction"] <= TARGET else "NOT met"
    lines = [
        f"{rows['date']}, `python benchmarks/sweep_overhead.py {rows['config']} --method {rows['method']} --trials {n}`: "
        f"{n} trials, {rows['cpus']:g} CPUs per trial, one at a time, teacher cached",
        "",
        "| | wall-clock (s) | per trial (s) |",
        "|---|---:|---:|",
        f"| plain loop (prepare + trials) | {plain:.1f} | {mean_trial:.1f} |",
        f"| mia-kd sweep (Ray start, prepare task, Tune + Optuna, trials) | {swept:.1f} | {swept / n:.1f} |",
        f"| overhead | {swept - plain:.1f} | {overhead:.1f} ({100 * overhead / mean_trial:.1f}% of a trial) |",
    ]
    if rows.get("sweep_trial_s"):
        lines += ["", "The sweep's trials on their own (distil, score, attack): "
                  + ", ".join(f"{s:.1f}" for s in rows["sweep_trial_s"]) + " s; the plain loop's mean "
                  + f"{mean_trial:.1f} s."]
    lines += ["", f"Target overhead <= {TARGET:.0%} of trial time: {verdict}"]
    text = "\n".join(lines)
    print(text)
    path.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
