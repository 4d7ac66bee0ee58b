"""Search efficiency: how many trials each Optuna sampler needs to find a method's privacy-utility front.

A recorded surface of real trials stands in for the pipeline so the comparison runs in minutes: for each
method, CI-sized trials (prepared once) at a dense grid of strengths give (privacy, utility) per strength;
a sampler's suggested strength is answered by linear interpolation between the two nearest grid points.
Each sampler (the sweep's own settings from ``mia_kd.sweep.study.make_sampler``, neutral strength first as
in a sweep) runs the grid's number of trials, 5 seeds; the hypervolume of the front found so far is
compared with the dense grid's. The dense grid itself is the baseline, evaluated in a seeded random order.
Objectives are scaled to [0, 1] over the grid and the reference point is (1.1, 1.1). Prints Markdown tables, writes JSON.
Target: the default sampler (TPE) reaches 95% of the grid's hypervolume within 25% of the grid's trials.

    python benchmarks/search_efficiency.py [--methods temperature vulnerable_filter] [--grid 21] [--refresh]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from datetime import date
from pathlib import Path

import numpy as np
import optuna

from mia_kd.analysis.pareto import hypervolume, pareto_mask
from mia_kd.sweep.study import make_sampler

SAMPLERS = ["tpe", "nsga2", "gp", "random", "grid"]
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
    print(f"\nSearch efficiency ({date.today()}, `python benchmarks/search_efficiency.py`): trials to reach 90% / 95% "
          f"of the dense grid's hypervolume ({args.grid} trials), median over {args.seeds} seeds; '>N' = not within N")
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
        for name in SAMPLERS:
            curves = [run_sampler(name, entry, args.grid, seed, ref) for seed in range(args.seeds)]
            reach = {}
            for level in (0.9, 0.95):
                needed = [next((k + 1 for k, hv in enumerate(c) if hv >= level * target - 1e-12), None) for c in curves]
                done = [n for n in needed if n is not None]
                reach[level] = float(np.median(done)) if len(done) > len(needed) / 2 else None
            rows[name] = {"reach_90": reach[0.9], "reach_95": reach[0.95],
                          "final_fraction": float(np.median([c[-1] / target for c in curves]))}
        results[method] = {"grid_hypervolume": target, "reference": ref.tolist(), "samplers": rows}
        print(f"\n**{method}** (grid hypervolume {target:.4f})\n")
        print("| sampler | trials to 90% | trials to 95% | hypervolume after all trials |\n|---|---:|---:|---:|")
        for name, r in rows.items():
            fmt = lambda v: f">{args.grid}" if v is None else f"{v:g}"  # noqa: E731
            print(f"| {name}{' (default)' if name == 'tpe' else ''} | {fmt(r['reach_90'])} | {fmt(r['reach_95'])} | "
                  f"{100 * r['final_fraction']:.1f}% |")
        tpe = rows["tpe"]["reach_95"]
        budget = 0.25 * args.grid
        print(f"\nTarget (TPE reaches 95% within {budget:g} trials): "
              f"{'met' if tpe is not None and tpe <= budget else 'NOT met'} ({fmt(tpe)} trials)")
    Path(args.out).write_text(json.dumps({"date": str(date.today()), "grid": args.grid, "seeds": args.seeds,
                                          "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
