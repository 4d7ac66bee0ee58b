"""Teacher leakage through the student: distilled on the members (the study's setting) or on a disjoint pool.

    python benchmarks/transfer_leakage.py                      # about 3 minutes here (teacher cached)
    python benchmarks/transfer_leakage.py --config sweeps/strong.yaml --pool 1000

Two trials of the quickstart config with the same split, teacher and attacks, one after the other: the
student distilled on the teacher's members (``distill.transfer: members``), then on ``--pool`` records of the
same source that no model trained on (``distill.transfer: disjoint``). Both attack the teacher's
membership. Writes ``benchmarks/results/transfer_leakage.md`` (section ``transfer-leakage``, copied into the
README by ``python docs/update_readme.py``) and its JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "transfer_leakage.md"


def _ci(value: float, low: float, high: float) -> str:
    return "n/a" if value != value else f"{value:.3f} [{low:.2f}, {high:.2f}]"


def main() -> int:
    import pandas as pd

    from mia_kd.config import read_yaml, validate_config
    from mia_kd.trial import prepare, run_student

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sweeps/quickstart.yaml")
    parser.add_argument("--pool", type=int, default=1000, help="data.transfer: records in the disjoint pool")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    raw = read_yaml(args.config)
    raw.pop("sweep", None)
    raw["data"]["transfer"] = args.pool
    raw.setdefault("runtime", {})["progress"] = False
    members = validate_config(raw)
    disjoint = validate_config({**raw, "distill": {**raw.get("distill", {}), "transfer": "disjoint"}})
    prepared = prepare(members)  # one preparation: the transfer mode changes only what is distilled
    rows = []
    for config in (members, disjoint):
        start = time.perf_counter()
        result = run_student(prepared, config)
        seconds = time.perf_counter() - start
        trial = result.trial
        metrics = pd.DataFrame(result.metrics).set_index(["model_role", "attack"])
        attack = trial["leakage_transfer_attack"]
        rows.append({
            "transfer": config.distill.transfer, "n_transfer": trial["n_transfer"], "attack": attack,
            "teacher_tpr": float(metrics.at[("teacher", attack), "tpr_at_fpr_1pct"]),
            "student_tpr": float(metrics.at[("student", attack), "tpr_at_fpr_1pct"]),
            "student_auc": float(metrics.at[("student", attack), "auc"]),
            "ratio": trial["leakage_transfer_ratio"], "low": trial["leakage_transfer_ratio_low"],
            "high": trial["leakage_transfer_ratio_high"], "task_loss": trial["student_task_loss"],
            "worst_auc": trial["objective_privacy"], "worst_attack": trial["objective_privacy_attack"], "seconds": seconds,
        })
    lines = [
        f"Measured {date.today()} on {platform.node()} ({os.cpu_count()} CPUs) with `python benchmarks/transfer_leakage.py` "
        f"(`{args.config}`, data.transfer {args.pool}): one split, teacher and attack set; the student distilled on "
        "the teacher's members, then on a pool of the same source no model trained on. The leakage transfer ratio "
        "is the student's TPR@1% FPR over the teacher's (eval) for the attack strongest on the teacher's calib "
        "fold, with a paired bootstrap 95% CI.",
        "",
        "| distill.transfer | records distilled on | attack | teacher TPR@1% FPR | student TPR@1% FPR | leakage transfer ratio | "
        "student AUC (that attack) | student worst-case AUC | student task loss |",
        "|---|---:|---|---:|---:|---|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['transfer']} | {r['n_transfer']} | {r['attack']} | {r['teacher_tpr']:.3f} | {r['student_tpr']:.3f} | "
            f"{_ci(r['ratio'], r['low'], r['high'])} | {r['student_auc']:.3f} | {r['worst_auc']:.3f} ({r['worst_attack']}) | "
            f"{r['task_loss']:.3f} |"
        )
    text = "## transfer-leakage\n" + "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"date": str(date.today()), "rows": rows}, indent=1,
                                                              default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
