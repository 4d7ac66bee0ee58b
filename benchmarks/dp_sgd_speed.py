"""DP-SGD at plain speed: a ``dp_sgd`` distillation run against a plain (``none``) one, side by side.

Quickstart size (``sweeps/quickstart.yaml``): its members tokenised by its tokenizer (max_length 96), its
student (GPT-2, 1 layer, n_embd 96) distilled from its teacher's architecture (2 layers, n_embd 128; random
weights: the teacher's values do not change the time) with its distillation settings (batch 32), for
``--epochs`` epochs. Three runs, each ``--repeats`` times, in turn: plain distillation, ``dp_sgd`` (σ = 1,
C = 1) with per-sample gradients by the per-record loop, and the same with the vectorised path
(:mod:`mia_kd.privacy.dp_sgd`; its one-off check against the loop on the first batch is timed too).
Target: vectorised ``dp_sgd`` at most 1.5 × plain (median times).

    python benchmarks/dp_sgd_speed.py [--epochs 1] [--repeats 3] [--loop-repeats N] [--records N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from pathlib import Path

import torch

from mia_kd.config import load_config
from mia_kd.data import prepare_split
from mia_kd.distill.trainer import distill
from mia_kd.models.build import build_model
from mia_kd.models.tokenizer import build_tokenizer, encode
from mia_kd.privacy import MethodContext, build_method

TARGET = 1.5
RUNS = ("plain", "dp_sgd loop", "dp_sgd vectorised")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sweeps/quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-repeats", type=int, default=None,
                        help="repeats of the (slow) per-record loop run; default --repeats")
    parser.add_argument("--records", type=int, default=None,
                        help="distil on the first this many members only (default all: the time per step is the same)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/dp_sgd_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    config = load_config(args.config)
    split, _, _ = prepare_split(config)
    tokenizer = build_tokenizer(config.tokenizer, [r.text for r in split.public])
    rows, _ = encode(tokenizer, [r.text for r in split.members], max_length=config.tokenizer.max_length)
    rows = rows[: args.records]
    record_ids = [r.record_id for r in split.members][: len(rows)]
    teacher = build_model(config.teacher, tokenizer, seed=0, role="teacher").eval()
    schedule = config.distill.model_copy(update={"epochs": args.epochs})

    def run(name: str) -> tuple[float, dict]:
        method = None
        if name != "plain":
            context = MethodContext(vulnerability=None, vocab_size=len(tokenizer), seed=0, n_records=len(rows))
            method = build_method("dp_sgd", 1.0, {"max_grad_norm": 1.0}, context)
            if name == "dp_sgd loop":
                method._path = "loop"  # skip the choice: the per-record loop throughout
        student = build_model(config.student, tokenizer, seed=1, role="student")
        start = time.perf_counter()
        distill(student, teacher, rows, schedule, seed=0, pad_id=tokenizer.pad_token_id, device=device,
                method=method, record_ids=record_ids)
        seconds = time.perf_counter() - start
        return seconds, (method.report() if method is not None else {})

    times: dict[str, list[float]] = {name: [] for name in RUNS}
    reports: dict[str, dict] = {}
    loop_repeats = args.repeats if args.loop_repeats is None else args.loop_repeats
    for repeat in range(args.repeats):
        for name in RUNS:  # interleaved, so that load on the machine hits every run alike
            if name == "dp_sgd loop" and repeat >= loop_repeats:
                continue
            seconds, reports[name] = run(name)
            times[name].append(seconds)
            print(f"  {name}: {seconds:.1f} s", flush=True)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = {name: median[name] / median["plain"] for name in RUNS}
    assert reports["dp_sgd vectorised"].get("per_sample_gradients") == "vectorised", reports["dp_sgd vectorised"]
    same_epsilon = reports["dp_sgd loop"]["epsilon"] == reports["dp_sgd vectorised"]["epsilon"]

    steps = -(-len(rows) // schedule.batch_size) * args.epochs
    lines = [
        f"DP-SGD speed ({date.today()}, `python benchmarks/dp_sgd_speed.py --epochs {args.epochs} "
        f"--repeats {args.repeats}{f' --loop-repeats {loop_repeats}' if loop_repeats != args.repeats else ''}"
        f"{f' --records {args.records}' if args.records else ''}`; "
        f"{len(rows)} records, batch {schedule.batch_size}, {steps} steps, "
        f"{args.device}, {torch.get_num_threads()} threads)",
        "",
        "| run | median s | runs (s) | × plain |",
        "|---|---:|---|---:|",
    ]
    for name in RUNS:
        lines.append(f"| {name} | {median[name]:.1f} | {', '.join(f'{t:.1f}' for t in times[name])} | "
                     f"{ratio[name]:.2f} |")
    verdict = "met" if ratio["dp_sgd vectorised"] <= TARGET else "NOT met"
    lines += [
        "",
        f"Vectorised dp_sgd: {ratio['dp_sgd vectorised']:.2f} × plain (target ≤ {TARGET}: {verdict}); "
        f"{median['dp_sgd loop'] / median['dp_sgd vectorised']:.1f} × faster than the loop. "
        f"ε the same on both paths: {same_epsilon} ({reports['dp_sgd vectorised']['epsilon']:.4g}).",
    ]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": str(date.today()), "config": args.config, "records": len(rows), "epochs": args.epochs,
        "steps": steps, "device": args.device, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "loop_repeats": loop_repeats,
        "seconds": times, "median": median, "ratio_to_plain": ratio, "target": TARGET,
        "met": ratio["dp_sgd vectorised"] <= TARGET, "same_epsilon": same_epsilon,
        "epsilon": reports["dp_sgd vectorised"]["epsilon"],
    }, indent=2))
    out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
