"""Measure each privacy method at its neutral, middle and maximum strength on a trial config.

Prints a Markdown table (student AUC of the loss attack and of the worst attack, with 95% CIs, and task
loss) and writes the rows as JSON. The teacher and reference model are trained once and cached; the
neutral strength of every method is exactly plain distillation (tested), so it is run once, as `none`.

    python benchmarks/methods_effect.py sweeps/quickstart.yaml --out benchmarks/results/methods_effect.json

The table also goes to the ``.md`` beside ``--out``; ``python docs/update_readme.py`` copies it into the README.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # before transformers is imported
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from mia_kd.config import apply_override, read_yaml, validate_config
from mia_kd.privacy import method_classes
from mia_kd.trial import prepare, run_student


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="sweeps/quickstart.yaml")
    parser.add_argument("--out", default="benchmarks/results/methods_effect.json")
    parser.add_argument("--methods", nargs="*", help="only these methods (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    raw = read_yaml(args.config)
    raw.pop("sweep", None)  # a sweep file is also a trial config
    for override in args.overrides:
        apply_override(raw, override)
    raw.setdefault("runtime", {})["progress"] = False

    # Each method at the middle and the top of the space a sweep searches for this student (where it starts
    # acting; whole numbers where its effect is discrete).
    base = validate_config(raw)
    runs = [("none", 0.0)]
    for cls in method_classes():
        if cls.name == "none" or (args.methods and cls.name not in args.methods):
            continue
        space = cls.strength_space(base)
        middle = (space.low + space.high) / 2
        middle = float(round(middle)) if space.integer else round(middle, 4)
        runs += [(cls.name, s) for s in dict.fromkeys([middle, space.high])]

    rows = []
    prepared = prepare(base)  # the teacher's side once: privacy methods change the student only
    for name, strength in runs:
        start = time.perf_counter()
        result = run_student(prepared, validate_config({**raw, "privacy": {"method": name, "strength": strength}}))
        metrics = pd.DataFrame(result.metrics).query("model_role == 'student'").set_index("attack")
        loss, worst = metrics.loc["loss"], metrics.loc[result.trial["selection_privacy_attack"]]
        rows.append({
            "method": name, "strength": strength,
            "loss_auc": loss.auc, "loss_auc_low": loss.auc_low, "loss_auc_high": loss.auc_high,
            "worst_attack": worst.name, "worst_calib_auc": worst.calib_auc, "worst_auc": worst.auc,
            "worst_auc_low": worst.auc_low, "worst_auc_high": worst.auc_high,
            "worst_tpr_at_1pct_fpr": worst.tpr_at_fpr_1pct, "task_loss": result.trial["student_task_loss"],
            "n_transfer": result.trial["n_transfer"], "epsilon": result.trial["epsilon"],
            "seconds": round(time.perf_counter() - start, 1),
        })
        print(f"{name} {strength:g}: loss AUC {loss.auc:.3f}, task loss {rows[-1]['task_loss']:.3f} "
              f"({rows[-1]['seconds']:.0f} s)", file=sys.stderr)

    lines = [
        f"{date.today()}, `{args.config}`, {platform.node()} ({os.cpu_count()} CPUs), student only; the worst attack is "
        "chosen on calib and its AUC reported on eval; neutral strength = `none`.",
        "",
        "| method | strength | student loss-attack AUC [95% CI] | worst attack (calib AUC): eval AUC [95% CI] "
        "| its TPR@1% FPR | task loss | records distilled | ε |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        eps = f"{r['epsilon']:.3g}" if r["epsilon"] is not None else "–"
        lines.append(
            f"| {r['method']} | {r['strength']:g} | {r['loss_auc']:.3f} [{r['loss_auc_low']:.3f}, {r['loss_auc_high']:.3f}] "
            f"| {r['worst_attack']} ({r['worst_calib_auc']:.3f}): {r['worst_auc']:.3f} [{r['worst_auc_low']:.3f}, "
            f"{r['worst_auc_high']:.3f}] | {r['worst_tpr_at_1pct_fpr']:.3f} | {r['task_loss']:.3f} | {r['n_transfer']} | {eps} |"
        )
    print("\n" + "\n".join(lines))
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
