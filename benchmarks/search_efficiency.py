"""Search efficiency: how many trials each Optuna sampler needs to find a method's privacy-utility front.

A recorded surface of real trials stands in for the pipeline so the comparison runs in minutes: for each
method, CI-sized trials (prepared once) at a dense grid of strengths give (privacy, utility) per strength;
a sampler's suggested strength is answered by linear interpolation between the two nearest grid points.
Each sampler (the sweep's own settings from ``mia_kd.sweep.samplers.make_sampler``, neutral strength first
as in a sweep) runs the grid's number of trials, 5 seeds; the hypervolume of the front found so far is
compared with the dense grid's. The dense grid itself is the baseline, evaluated in a seeded random order;
'oracle' is the fewest trials any search could need (the best subsets of the grid's strengths, knowing the
surface). Objectives are scaled to [0, 1] over the grid and the reference point is (1.1, 1.1). Prints
Markdown tables and writes them to the ``.md`` beside ``--out``, curves and all to the JSON.
Target: the default sampler (``sweep.sampler``) reaches 95% of the grid's hypervolume within 25% of the grid's
trials.

    python benchmarks/search_efficiency.py [--methods temperature vulnerable_filter] [--grid 21] [--samplers ...]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
from datetime import date
from pathlib import Path

import numpy as np
import optuna

from mia_kd.analysis.pareto import hypervolume, pareto_mask
from mia_kd.config import SweepSection
from mia_kd.sweep.samplers import SAMPLERS, make_sampler

CURVE_AT = (3, 5, 7, 10, 15, 21)
DEFAULT = SweepSection.model_fields["sampler"].default
CI = {
    "sweep_id": "search", "seed": 0,
    "data": {"members": 200, "nonmembers": 200, "utility": 100, "public": 400, "blind_check_bootstrap": 200},
    "tokenizer": {"vocab_size": 1024, "max_length": 80},
    "teacher": {"config": {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 256},
                "train": {"epochs": 20, "batch_size": 16, "lr": 5e-3}},
    "student": {"config": {"n_layer": 1, "n_embd": 64, "n_head": 4, "n_positions": 256}},
    "distill": {"epochs": 4, "batch_size": 16, "lr": 3e-3},
    "reference": {"epochs": 2, "batch_size": 32, "lr": 3e-3},
    "metrics": {"n_bootstrap": 100},
    "runtime": {"progress": False},
}


def record_surface(methods: list[str], n_grid: int) -> dict:
    from mia_kd.config import validate_config
    from mia_kd.privacy import method_class
    from mia_kd.trial import prepare, run_student

    prepared = prepare(validate_config(CI))
    surface = {}
    for method in methods:
        cls = method_class(method)
        strengths = np.linspace(cls.low, cls.high, n_grid).tolist()
        points = []
        for s in strengths:
            raw = copy.deepcopy(CI) | {"privacy": {"method": method, "strength": s}}
            row = run_student(prepared, validate_config(raw)).trial
            points.append([row["selection_privacy"], row["objective_utility"]])  # what a search sees (calib)
            print(f"  {method} {s:.3f}: privacy {points[-1][0]:.3f} utility {points[-1][1]:.3f}", flush=True)
        surface[method] = {"strengths": strengths, "points": points, "neutral": cls.neutral}
    return surface


def _objectives(entry: dict, strength: float) -> np.ndarray:
    s, p = np.array(entry["strengths"]), np.array(entry["points"])
    return np.array([np.interp(strength, s, p[:, 0]), np.interp(strength, s, p[:, 1])])


def _curve(points: list[np.ndarray], ref: np.ndarray) -> list[float]:
    out = []
    for k in range(1, len(points) + 1):
        found = np.array(points[:k])
        out.append(hypervolume(found[pareto_mask(found)], ref))
    return out


def oracle_trials(entry: dict, ref: np.ndarray, level: float, most: int = 8) -> int | None:
    """The fewest trials, the neutral one first, whose front reaches ``level``: the best subsets of the grid's
    strengths, searched exhaustively up to ``most`` trials (None: more are needed)."""
    neutral = _objectives(entry, entry["neutral"])
    points = np.array(entry["points"])
    for k in range(1, most + 1):
        for chosen in itertools.combinations(range(len(points)), k - 1):
            found = np.vstack([neutral, points[list(chosen)]])
            if hypervolume(found[pareto_mask(found)], ref) >= level - 1e-12:
                return k
    return None


def run_sampler(name: str, entry: dict, trials: int, seed: int, ref: np.ndarray) -> list[float]:
    low, high = entry["strengths"][0], entry["strengths"][-1]
    if name == "grid":  # the dense grid in a seeded random order, neutral first
        order = np.random.default_rng(seed).permutation(len(entry["strengths"]))
        strengths = [entry["neutral"]] + [entry["strengths"][i] for i in order if entry["strengths"][i] != entry["neutral"]]
        return _curve([_objectives(entry, s) for s in strengths[:trials]], ref)
    sampler = make_sampler(name, seed=seed, trials=trials)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.enqueue_trial({"strength": entry["neutral"]})  # as a sweep does
    points = []
    for _ in range(trials):
        trial = study.ask()
        value = _objectives(entry, trial.suggest_float("strength", low, high))
        study.tell(trial, value.tolist())
        points.append(value)
    return _curve(points, ref)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["temperature", "vulnerable_filter"])
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    parser.add_argument("--surface", default="benchmarks/results/search_surface.json")
    parser.add_argument("--refresh", action="store_true", help="run the trials again instead of the recorded surface")
    parser.add_argument("--out", default="benchmarks/results/search_efficiency.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = Path(args.surface)
    surface = json.loads(path.read_text()) if path.exists() and not args.refresh else {}
    missing = [m for m in args.methods if m not in surface or len(surface[m]["strengths"]) != args.grid]
    if missing:
        print(f"recording the surface of {missing} ({args.grid} CI-sized trials each)", flush=True)
        surface |= record_surface(missing, args.grid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(surface, indent=2))
    results = {}
    lines = [f"{date.today()}, `python benchmarks/search_efficiency.py`: trials to reach 90% / 95% of the dense grid's "
             f"hypervolume ({args.grid} trials), median over {args.seeds} seeds ('>N': not within N), and the median "
             f"share of it found after {', '.join(map(str, CURVE_AT))} trials. 'oracle': the fewest trials that could "
             "reach it, the neutral one first, knowing the surface (best subsets of the grid's strengths)."]
    budget = 0.25 * args.grid
    fmt = lambda v: f">{args.grid}" if v is None else f"{v:g}"  # noqa: E731
    for method in args.methods:
        entry = surface[method]
        # Both objectives scaled to [0, 1] over the grid, reference (1.1, 1.1): the hypervolume then measures
        # how much of the front was found (against a far reference, the neutral point alone scores ~95%).
        grid = np.array(entry["points"])
        low, span = grid.min(axis=0), np.ptp(grid, axis=0)
        entry = {**entry, "points": ((grid - low) / span).tolist()}
        ref = np.array([1.1, 1.1])
        target = hypervolume(np.array(entry["points"]), ref)
        rows = {}
        for name in args.samplers:
            curves = [run_sampler(name, entry, args.grid, seed, ref) for seed in range(args.seeds)]
            reach = {}
            for level in (0.9, 0.95):
                needed = [next((k + 1 for k, hv in enumerate(c) if hv >= level * target - 1e-12), None) for c in curves]
                done = [n for n in needed if n is not None]
                reach[level] = float(np.median(done)) if len(done) > len(needed) / 2 else None
            curve = np.median(np.array(curves) / target, axis=0)
            rows[name] = {"reach_90": reach[0.9], "reach_95": reach[0.95], "final_fraction": float(curve[-1]),
                          "curve": curve.tolist()}
        oracle = {f"reach_{round(100 * level)}": oracle_trials(entry, ref, level * target) for level in (0.9, 0.95)}
        results[method] = {"grid_hypervolume": target, "reference": ref.tolist(), "oracle": oracle, "samplers": rows}
        lines += [f"\n**{method}** (grid hypervolume {target:.4f})\n",
                  "| sampler | trials to 90% | trials to 95% | " + " | ".join(f"after {k}" for k in CURVE_AT) + " |",
                  "|---|---:|---:|" + "---:|" * len(CURVE_AT)]
        for name, r in rows.items():
            lines.append(f"| {name}{' (default)' if name == DEFAULT else ''} | {fmt(r['reach_90'])} | "
                         f"{fmt(r['reach_95'])} | " + " | ".join(f"{100 * r['curve'][k - 1]:.1f}%" for k in CURVE_AT
                                                                 if k <= args.grid) + " |")
        lines.append(f"| oracle | {fmt(oracle['reach_90'])} | {fmt(oracle['reach_95'])} |" + " |" * len(CURVE_AT))
        if DEFAULT in rows:
            default = rows[DEFAULT]["reach_95"]
            lines.append(f"\nTarget (the default sampler, {DEFAULT}, reaches 95% within {budget:g} trials): "
                         f"{'met' if default is not None and default <= budget else 'NOT met'} ({fmt(default)} trials; "
                         f"knowing the surface takes {fmt(oracle['reach_95'])})")
    print("\n".join(lines))
    Path(args.out).write_text(json.dumps({"date": str(date.today()), "grid": args.grid, "seeds": args.seeds,
                                          "default": DEFAULT, "results": results}, indent=2))
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
