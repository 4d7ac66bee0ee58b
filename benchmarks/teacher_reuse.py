"""Teacher reuse: what a sweep's trials spend on the teacher after the one-off preparation.

Reads a sweep's ``trials`` table (``stage_times``: the shared ``prepare`` stages, run once per sweep, and
each trial's own stages). The teacher (and the reference model) are trained and scored once in
``prepare`` and shared through Ray's object store; a trial trains and scores its student only. Target:
teacher time inside trials < 2% of trial time. Also quotes, from ``benchmarks/results/stages.json`` if
present, the share of a distillation run the teacher's forward passes take where its logits are recomputed
(``distill.teacher_logits: recompute``; by default they are cached once per prepared state).

    python benchmarks/teacher_reuse.py [RESULTS_DIR]     # default results/quickstart (mia-kd sweep's output)
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from mia_kd.store import read_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results/quickstart")
    parser.add_argument("--out", default="benchmarks/results/teacher_reuse.json")
    args = parser.parse_args()
    if not Path(args.results, "trials").is_dir():
        raise SystemExit(f"no sweep results in {args.results!r}: run `mia-kd sweep sweeps/quickstart.yaml` first, "
                         "or give the results folder of another sweep")
    trials = read_table(args.results, "trials").to_pandas()
    trials = trials[trials["status"] == "completed"]
    times = [json.loads(s) for s in trials["stage_times"]]
    prepare = times[0]["prepare"]
    trial_total = sum(t["trial"]["total"] for t in times)
    in_trials = sum(t["trial"].get("teacher", 0.0) + t["trial"].get("reference", 0.0) for t in times)
    share = in_trials / trial_total
    print(f"Teacher reuse ({date.today()}, `python benchmarks/teacher_reuse.py {args.results}`)\n")
    print("| | seconds |\n|---|---:|")
    print(f"| teacher trained once in prepare | {prepare.get('teacher', 0):.1f} |")
    print(f"| reference model trained once in prepare | {prepare.get('reference', 0):.1f} |")
    print(f"| teacher scored once in prepare (with the reference) | {prepare.get('scoring', 0):.1f} |")
    print(f"| {len(times)} trials, their own time | {trial_total:.1f} ({trial_total / len(times):.1f} a trial) |")
    print(f"| teacher or reference work inside trials | {in_trials:.1f} |")
    verdict = "met" if share < 0.02 else "NOT met"
    print(f"\nTeacher time inside trials: {100 * share:.1f}% of trial time (target < 2%: {verdict}).")
    stages = Path("benchmarks/results/stages.json")
    forward = None
    if stages.exists():
        forward = json.loads(stages.read_text())["distillation"]["teacher_forward_share"]
        print(f"Not counted above: where the teacher's logits are recomputed per batch (distill.teacher_logits: "
              f"recompute), its forward passes are {100 * forward:.0f}% of a distillation run (benchmarks/stages.py); "
              "by default they are cached once per prepared state (benchmarks/teacher_logits.py).")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"date": str(date.today()), "prepare": prepare, "trials": len(times),
                                          "trial_seconds": trial_total, "teacher_in_trials_seconds": in_trials,
                                          "share": share, "teacher_forward_share_in_distillation": forward}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
