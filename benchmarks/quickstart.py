"""Measure the quickstart: one trial's per-attack table, and the analysis of a finished quickstart sweep.

    python benchmarks/quickstart.py trial                               # about 2 minutes here
    python benchmarks/quickstart.py sweep results/quickstart           # after mia-kd sweep sweeps/quickstart.yaml

Each writes its section (``## quickstart-trial`` / ``## quickstart-sweep``) of
``benchmarks/results/quickstart.md`` (``sweep`` also draws the README's picture, ``docs/img/frontier.png``); ``python docs/update_readme.py`` copies them into the README. Every
number is read from the run or the store, with the date and the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import time
from datetime import date
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "quickstart.md"
PICTURE = Path(__file__).resolve().parent.parent / "docs" / "img" / "frontier.png"


def _machine() -> str:
    return f"{platform.node()}, {os.cpu_count()} CPUs, {platform.machine()}"


def _ci(value: float, low: float, high: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} [{low:.{digits - 1}f}, {high:.{digits - 1}f}]"


def trial_section(config: str) -> str:
    import pandas as pd

    from mia_kd.config import read_yaml, validate_config
    from mia_kd.trial import run_trial

    raw = read_yaml(config)
    raw.pop("sweep", None)
    raw.setdefault("runtime", {})["progress"] = False
    start = time.perf_counter()
    result = run_trial(validate_config(raw))
    seconds = time.perf_counter() - start
    row = result.trial
    metrics = pd.DataFrame(result.metrics).set_index(["model_role", "attack"])
    lines = [
        f"Measured {date.today()} on {_machine()} with `python benchmarks/quickstart.py trial` (`{config}`; "
        f"the trial took {seconds:.0f} s, {'with' if row['teacher_cache_hit'] else 'without'} a cached teacher). Eval fold, {int(metrics['n_members'].iloc[0])} + "
        f"{int(metrics['n_nonmembers'].iloc[0])} records, 95% bootstrap CIs; attacks oriented and thresholds fit "
        "on calib. TPR@1% FPR is the largest TPR at ≤ 1% FPR (the eval non-members resolve steps of "
        f"{metrics['fpr_step'].iloc[0]:.1%}).",
        "",
        "| attack | teacher AUC | teacher TPR / TNR | teacher TPR@1% FPR | student AUC | student TPR / TNR | "
        "student TPR@1% FPR |",
        "|---|---|---|---|---|---|---|",
    ]
    for attack in dict.fromkeys(a for _, a in metrics.index):
        cells = []
        for role in ("teacher", "student"):
            m = metrics.loc[(role, attack)]
            flipped = " (oriented −1)" if m["orientation"] == -1 else ""
            cells += [
                _ci(m["auc"], m["auc_low"], m["auc_high"]) + flipped, f"{m['tpr']:.3f} / {m['tnr']:.3f}",
                _ci(m["tpr_at_fpr_1pct"], m["tpr_at_fpr_1pct_low"], m["tpr_at_fpr_1pct_high"]),
            ]
        lines.append(f"| {attack} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Task loss on utility: teacher {row['teacher_task_loss']:.3f}, student {row['student_task_loss']:.3f} "
        f"nats/token. Blind check AUC {_ci(row['blind_auc'], row['blind_auc_low'], row['blind_auc_high'])}. "
        f"The student's selection objective (worst attack on calib): {row['selection_privacy_attack']} at "
        f"{row['selection_privacy']:.3f}; its eval AUC {_ci(row['objective_privacy'], row['objective_privacy_low'], row['objective_privacy_high'])}.",
    ]
    return "\n".join(lines)


def sweep_section(out: str) -> str:
    import numpy as np
    import pandas as pd

    from mia_kd.analysis import asymmetry as asym
    from mia_kd.analysis import ensemble as ens
    from mia_kd.analysis import frontier as fr
    from mia_kd.analysis.results import load_results

    results = load_results(out)
    timings = {}
    start = time.perf_counter()
    front = fr.compute_frontier(results, fr.reference_point(results))
    timings["frontier"] = time.perf_counter() - start
    # The README's picture: this sweep's front as `mia-kd frontier` draws it.
    from mia_kd.analysis import plots
    from mia_kd.analysis.sweep_tables import teacher_points

    plots.frontier_png(front.points, front.fronts, front.reference.point, front.privacy_label, PICTURE,
                       teacher=teacher_points(results))
    start = time.perf_counter()
    rates = asym.compute_asymmetry(results, ["loss"]).rates
    timings["asymmetry"] = time.perf_counter() - start
    start = time.perf_counter()
    pool = ens.build_pool(results)
    limit, _ = ens.resolve_limit(pool, max_task_loss=None, max_utility_drop=0.2)
    choice = ens.select(pool, max_task_loss=limit)
    chosen = ens.evaluate(pool, choice.members, np.array(choice.weights))
    single = ens.evaluate(pool, [choice.steps[0]["added"]], np.ones(1))
    timings["ensemble"] = time.perf_counter() - start

    p = front.points.set_index("trial_id")
    on = p[p["on_front"]].sort_values("objective_utility")
    knee = p[p["is_knee"]].iloc[0]
    best = front.fronts.iloc[1]
    ref = front.reference.point
    done = results.completed
    wall = done["wall_time_s"]
    manifest = json.loads((Path(out) / "sweep.json").read_text())
    ends = pd.to_datetime(done["started_at"], utc=True) + pd.to_timedelta(wall, unit="s")
    minutes = (ends.max() - pd.Timestamp(manifest["started_at"])).total_seconds() / 60
    teacher = "a cached teacher" if done["teacher_cache_hit"].all() else "the teacher trained"

    def point(r) -> str:
        return (f"`{r.method}` at {r.strength:.3g} (calib {r.selection_privacy:.3f}; eval AUC "
                f"{_ci(r.objective_privacy, r.privacy_low, r.privacy_high)}, task loss {r.objective_utility:.3f})")

    mean = rates.groupby("role")[["tpr", "tnr"]].mean()
    members = ", ".join(f"`{p.at[t, 'method']}` at {p.at[t, 'strength']:.3g} × {w:.2g}"
                        for t, w in zip(choice.members, choice.weights, strict=True))
    return "\n".join([
        f"Measured {date.today()} on {_machine()} with `python benchmarks/quickstart.py sweep {out}` on the "
        f"results of `mia-kd sweep sweeps/quickstart.yaml` ({len(done)} completed and {results.n_failed} failed "
        f"trials; the sweep ran {minutes:.1f} min from its start to its last trial's end, preparation ({teacher}) included; a "
        f"trial took {wall.min():.0f} to {wall.max():.0f} s). Fronts, knees and rankings are chosen on "
        "calib (the worst attack's calib AUC); the AUCs shown are the eval values of the attacks chosen there.",
        "",
        f"- The front across methods holds {int(p['on_front'].sum())} of {len(p)} trials, from "
        f"{point(on.iloc[0])} to {point(on.iloc[-1])}.",
        f"- The knee is {point(knee)}.",
        f"- `{best['method']}` has the largest hypervolume ({best['hypervolume']:.3f} against the reference point "
        f"({ref[0]:.3f}, {ref[1]:.3f})).",
        f"- Teacher vs student (loss attack, eval, mean over the trials): TPR {mean.at['teacher', 'tpr']:.3f} vs "
        f"{mean.at['student', 'tpr']:.3f}, TNR {mean.at['teacher', 'tnr']:.3f} vs {mean.at['student', 'tnr']:.3f}.",
        f"- With `--max-utility-drop 0.2` the ensemble is {members}: worst-case eval AUC "
        f"{_ci(chosen['objective_privacy'], chosen['objective_privacy_low'], chosen['objective_privacy_high'])} "
        f"at task loss {chosen['objective_utility']:.3f} (report half of utility), against "
        f"{single['objective_privacy']:.3f} at {single['objective_utility']:.3f} for the best single student "
        "under the same limit.",
        "- Analysis times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ".",
    ])


def write_section(name: str, body: str) -> None:
    text = OUT.read_text() if OUT.is_file() else ""
    sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    sections[name] = body.strip() + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(f"## {k}\n{v}\n" for k, v in sorted(sections.items())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("trial")
    t.add_argument("config", nargs="?", default="sweeps/quickstart.yaml")
    s = sub.add_parser("sweep")
    s.add_argument("out", nargs="?", default="results/quickstart")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    name = f"quickstart-{args.what}"
    body = trial_section(args.config) if args.what == "trial" else sweep_section(args.out)
    write_section(name, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
