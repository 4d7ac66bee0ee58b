"""Teacher outputs once: distillation reading the cached teacher logits against one running the teacher per batch.

Quickstart size (``sweeps/quickstart.yaml``): ``prepare`` runs once (models cached in a temporary folder
unless ``--cache-dir``; its attacks cut to ``loss`` and its teacher trained for ``--teacher-epochs``, which
change neither the size of the teacher's logits nor the time of its forward pass) and builds the cache
(``distill.teacher_logits: cache``); then the quickstart's student is distilled from its
teacher on its members for ``--epochs`` epochs, with the cache and with ``recompute``, alternating,
``--repeats`` times each. Target: recompute / cache ≥ 1.3 (median times), with the same student (the
largest absolute difference between the two students' weights is printed: not bit for bit, see
:mod:`mia_kd.distill.teacher_cache`). The cache's build time is paid once per prepared state, not per
trial; the table also gives the ratio if one trial paid for all of it.

    python benchmarks/teacher_logits.py [--epochs 3] [--repeats 3] [--teacher-epochs 2] [--threads N] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from mia_kd.config import load_config
from mia_kd.distill.trainer import distill
from mia_kd.models.build import build_model
from mia_kd.trial import prepare

TARGET = 1.3
RUNS = ("recompute", "cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sweeps/quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=3, help="distillation epochs per run (quickstart: 10)")
    parser.add_argument("--teacher-epochs", type=int, default=2, help="teacher training epochs (quickstart: 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--cache-dir", default=None, help="model cache (default: a temporary folder)")
    parser.add_argument("--out", default="benchmarks/results/teacher_logits.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(args.config)
        config = config.model_validate({
            **config.model_dump(), "attacks": ["loss"],
            "teacher": {**config.teacher.model_dump(), "train": {**config.teacher.train.model_dump(),
                                                                 "epochs": args.teacher_epochs}},
            "distill": {**config.distill.model_dump(), "teacher_logits": "cache", "epochs": args.epochs},
            "runtime": {**config.runtime.model_dump(), "device": "cpu", "progress": False,
                        "cache_dir": args.cache_dir or tmp, "threads": args.threads},
        })
        start = time.perf_counter()
        p = prepare(config)
        prepare_s = time.perf_counter() - start
        cache = p.teacher_logits
        assert cache is not None
        device = torch.device("cpu")
        teacher = p.teacher.model

        def run(name: str) -> tuple[float, float, torch.nn.Module]:
            student = build_model(config.student, p.tokenizer, seed=1, role="student")
            start, start_cpu = time.perf_counter(), time.process_time()
            result = distill(student, teacher, p.member_rows, config.distill, seed=1, pad_id=p.tokenizer.pad_token_id,
                             device=device, teacher_cache=cache if name == "cache" else None)
            return time.perf_counter() - start, time.process_time() - start_cpu, result.student

        times: dict[str, list[float]] = {name: [] for name in RUNS}
        cpu_times: dict[str, list[float]] = {name: [] for name in RUNS}
        students: dict[str, torch.nn.Module] = {}
        for _ in range(args.repeats):
            for name in RUNS:  # interleaved, so that load on the machine hits both alike
                seconds, cpu_seconds, students[name] = run(name)
                times[name].append(seconds)
                cpu_times[name].append(cpu_seconds)
                print(f"  {name}: {seconds:.1f} s ({cpu_seconds:.1f} s CPU)", flush=True)

    a, b = dict(students["recompute"].named_parameters()), dict(students["cache"].named_parameters())
    with torch.no_grad():
        max_diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    median_cpu = {name: statistics.median(ts) for name, ts in cpu_times.items()}
    cpu_ratio = median_cpu["recompute"] / median_cpu["cache"]
    ratio = median["recompute"] / median["cache"]
    ratio_with_build = median["recompute"] / (median["cache"] + cache.seconds)
    tokens = sum(len(row) for row in p.member_rows)
    lines = [
        f"Teacher logits cached ({date.today()}, `python benchmarks/teacher_logits.py --epochs {args.epochs} "
        f"--repeats {args.repeats} --teacher-epochs {args.teacher_epochs}`; {len(p.member_rows)} records ({tokens} tokens), vocabulary {cache.vocab}, "
        f"batch {config.distill.batch_size}, {args.epochs} epochs, cpu, {torch.get_num_threads()} threads)",
        "",
        "| distillation | median s | runs (s) | × cache | median CPU s | × cache (CPU) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name in RUNS:
        lines.append(f"| {name} | {median[name]:.1f} | {', '.join(f'{t:.1f}' for t in times[name])} | "
                     f"{median[name] / median['cache']:.2f} | {median_cpu[name]:.1f} | "
                     f"{median_cpu[name] / median_cpu['cache']:.2f} |")
    verdict = "met" if ratio >= TARGET else "NOT met"
    lines += [
        "",
        f"Cached: {ratio:.2f} × faster in wall time (target ≥ {TARGET}: {verdict}), {cpu_ratio:.2f} × in CPU time "
        f"(this process's, which other load on the machine changes less); {ratio_with_build:.2f} × if one trial paid "
        f"for the whole cache. Cache: {cache.nbytes / 2**20:.0f} MiB, built in {cache.seconds:.1f} s once per "
        f"prepared state (prepare took {prepare_s:.0f} s). Students: max |Δ weight| {max_diff:.2g} "
        f"({'identical' if max_diff == 0 else 'equal up to float rounding, not bit for bit'}).",
    ]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": str(date.today()), "config": args.config, "records": len(p.member_rows), "tokens": tokens,
        "vocab": cache.vocab, "epochs": args.epochs, "batch_size": config.distill.batch_size, "device": "cpu",
        "threads": torch.get_num_threads(), "repeats": args.repeats, "teacher_epochs": args.teacher_epochs, "seconds": times, "median": median,
        "cpu_seconds": cpu_times, "median_cpu": median_cpu, "cpu_ratio": cpu_ratio, "ratio": ratio, "ratio_with_build": ratio_with_build, "target": TARGET, "met": ratio >= TARGET,
        "cache_mb": cache.nbytes / 2**20, "cache_build_s": cache.seconds, "prepare_s": prepare_s,
        "max_weight_diff": max_diff, "identical": max_diff == 0,
    }, indent=2))
    out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
