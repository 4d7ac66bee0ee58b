"""Frontier at scale: Pareto fronts (per method and across), hypervolumes and knees on synthetic trials.

For each size, a ``trials`` and a ``metrics`` table of that many completed trials (10 methods, objectives
drawn from a noisy trade-off curve) are written as one Parquet file each, then timed: reading them back
through the store (``load_results``) and ``compute_frontier``. Prints a Markdown table, writes JSON.
Target: under 5 s at 1M rows on the project's 2-core machine.

    python benchmarks/analysis_scale.py            # 10k, 100k, 1M rows
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mia_kd.analysis.frontier import Reference, compute_frontier
from mia_kd.analysis.results import load_results

PARAMS = json.dumps({"attacks": [{"name": "loss", "params": {}}], "metrics": {"n_bootstrap": 10}, "seed": 0})


def write_synthetic(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    methods = np.array([f"m{i}" for i in range(10)])[rng.integers(0, 10, n)]
    utility = 5 + rng.exponential(1.0, n)
    privacy = np.clip(0.5 + 0.45 * np.exp(-(utility - 5)) + rng.normal(0, 0.05, n), 0, 1)
    ids = np.char.add("t", np.arange(n).astype(str))
    trials = pa.table({
        "sweep_id": ["bench"] * n, "trial_id": ids, "status": ["completed"] * n, "method": methods,
        "strength": rng.random(n), "epsilon": np.full(n, np.nan), "params": [PARAMS] * n,
        "privacy_objective": ["auc"] * n, "selection_privacy": privacy, "selection_privacy_attack": ["loss"] * n,
        "objective_privacy": privacy, "objective_privacy_low": privacy - 0.02, "objective_privacy_high": privacy + 0.02,
        "objective_privacy_attack": ["loss"] * n, "objective_utility": utility,
    })
    metrics = pa.table({
        "trial_id": ids, "model_role": ["student"] * n, "attack": ["loss"] * n, "auc": privacy,
        "auc_low": privacy - 0.02, "auc_high": privacy + 0.02,
    })
    for name, table in (("trials", trials), ("metrics", metrics)):
        folder = root / name / "sweep_id=bench" / "method=all"
        folder.mkdir(parents=True)
        pq.write_table(table.drop_columns(["sweep_id"]) if "sweep_id" in table.column_names else table, folder / "part.parquet")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", default="benchmarks/results/analysis_scale.json")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="mia_kd_scale_") as tmp:
            write_synthetic(Path(tmp), n)
            start = time.perf_counter()
            results = load_results(tmp)
            loaded = time.perf_counter()
            front = compute_frontier(results, Reference(point=(1.0, 12.0), basis="fixed", margin=None))
            done = time.perf_counter()
        rows.append({
            "rows": n, "read_s": loaded - start, "frontier_s": done - loaded, "total_s": done - start,
            "front_size": int(front.points["on_front"].sum()),
            "hypervolume_all": float(front.fronts.iloc[0]["hypervolume"]),
        })
    print(f"Frontier at scale ({date.today()}, `python benchmarks/analysis_scale.py`); target < 5 s at 1M rows\n")
    print("| trial rows | read Parquet (s) | fronts + hypervolume + knee (s) | total (s) | front size | target |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in rows:
        verdict = "met" if r["total_s"] < 5 else "NOT met"
        target = verdict if r["rows"] >= 1_000_000 else ""
        print(f"| {r['rows']:,} | {r['read_s']:.2f} | {r['frontier_s']:.2f} | {r['total_s']:.2f} | {r['front_size']} | {target} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"date": str(date.today()), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
