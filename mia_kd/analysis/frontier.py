"""Privacy-utility frontiers: Pareto fronts per method and across methods, their hypervolume and knee.

Both objectives are minimised: privacy and utility (task loss, nats/token). Every *choice* here (which
trials are on a front, the knee, the hypervolume ranking) reads the **selection** privacy objective: the
student's worst-case attack statistic on the calib fold, the attack chosen there (``selection_privacy``).
What is *reported* next to each point is the eval value of that same attack with its CI
(``objective_privacy``): picking the best of many trials on the fold that is then reported would overstate
the winner (a winner's curse). Hypervolumes are taken against one reference point per sweep, recorded in
``<results>/frontier.json`` (``<out>/frontier.json`` with ``--out``) the first time it is computed, so fronts
of different methods, and of the same sweep analysed again after more trials, compare.

A sweep trains its baseline (the neutral strength, plain distillation) once, as one method, and gives it to
the study of every other method whose space holds the neutral strength (``baseline`` in ``sweep.json``):
each of those methods' fronts includes it too, as it would have had the method trained it itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mia_kd.analysis.pareto import hypervolume, knee_index, pareto_mask
from mia_kd.analysis.results import Results
from mia_kd.errors import UserError
from mia_kd.objectives import PRIVACY, REPORTED_PRIVACY, SELECTION_COLUMNS, UTILITY, selection_points
from mia_kd.store import MANIFEST, SweepStorage

SHOWN = (REPORTED_PRIVACY.column, REPORTED_PRIVACY.low, REPORTED_PRIVACY.high)  # eval, beside the selection values
DEFAULT_MARGIN = 0.5
REFERENCE_FILE = "frontier.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """The hypervolume reference point ``(privacy, utility)`` and how it was set."""

    point: tuple[float, float]
    basis: str  # e.g. "none baseline (1 trial) x (1 + 0.5)" or "given"
    margin: float | None


@dataclass(frozen=True)
class Frontier:
    """``points``: one row per completed trial with ``on_front``, ``on_method_front``, ``is_knee`` (all of
    ``selection_privacy``, calib) and the reported eval privacy with its CI (``objective_privacy``,
    ``privacy_low``/``privacy_high``); ``fronts``: one row per method plus ``all``, whose hypervolume and
    ``knee_privacy`` are of the selection objective (``knee_reported_privacy``: the knee's eval value)."""

    sweep_id: str
    points: pd.DataFrame
    fronts: pd.DataFrame
    reference: Reference
    privacy_label: str


def reference_point(
    results: Results, *, margin: float | None = None, given: tuple[float, float] | None = None, out: Path | None = None,
) -> Reference:
    """The sweep's recorded reference point, or a new one recorded now.

    New: ``given``, else the mean objectives of the sweep's completed ``none`` trials times ``1 + margin``
    (default :data:`DEFAULT_MARGIN`). A recorded point is reused; asking for a different one is refused.
    It is recorded in the results folder, or in ``out`` when given (``--out``: nothing is written to the
    results folder, which may be read-only); a point the results folder records is reused either way.
    """
    storage = SweepStorage.parse(results.root)
    if out is not None and results.sweep_id not in _read_json(storage, storage.url(REFERENCE_FILE)):
        storage = SweepStorage.parse(str(out))
    path = storage.url(REFERENCE_FILE)
    recorded = _read_json(storage, path)
    if results.sweep_id in recorded and recorded[results.sweep_id].get("privacy") != PRIVACY.column:
        # Recorded by mia-kd 0.1 from eval values, which fronts no longer read: set it anew.
        log.warning("%s: the reference point of sweep %r was set from eval values; setting it anew from calib",
                    path, results.sweep_id)
        recorded.pop(results.sweep_id)
    if results.sweep_id in recorded:
        entry = recorded[results.sweep_id]
        ref = Reference(point=tuple(entry["point"]), basis=entry["basis"], margin=entry.get("margin"))
        if (given is not None and tuple(given) != ref.point) or (margin is not None and margin != ref.margin):
            raise UserError(
                f"sweep {results.sweep_id!r} already has the reference point {list(ref.point)} ({ref.basis}) in "
                f"{path}; drop --reference-point/--margin to reuse it, or delete its entry to set a new one"
            )
        return ref
    if given is not None:
        ref = Reference(point=(float(given[0]), float(given[1])), basis="given", margin=None)
    else:
        margin = DEFAULT_MARGIN if margin is None else margin
        if not margin >= 0:
            raise UserError(f"--margin: got {margin}, must be >= 0")
        none = results.completed[results.completed["method"] == "none"]
        if none.empty:
            raise UserError(
                f"sweep {results.sweep_id!r} has no completed 'none' trial to set the hypervolume reference point; "
                "give one with --reference-point PRIVACY,UTILITY"
            )
        base = none[list(SELECTION_COLUMNS)].mean().to_numpy()
        point = base + margin * np.abs(base)
        ref = Reference(
            point=(float(point[0]), float(point[1])), margin=margin,
            basis=f"none baseline ({len(none)} trial{'s' * (len(none) > 1)}) + {margin:g} x |baseline|",
        )
    recorded[results.sweep_id] = {
        "point": list(ref.point), "basis": ref.basis, "margin": ref.margin, "privacy": PRIVACY.column,
    }
    storage.write_text(REFERENCE_FILE, json.dumps(recorded, indent=2))
    return ref


def compute_frontier(results: Results, reference: Reference) -> Frontier:
    """Fronts, hypervolumes and knees of ``results``' completed trials against ``reference``."""
    stat = results.privacy_objective
    points = results.completed[
        ["trial_id", "sweep_id", "method", "strength", "epsilon", PRIVACY.attack,
         REPORTED_PRIVACY.attack, *SELECTION_COLUMNS, *SHOWN]
    ].rename(columns={REPORTED_PRIVACY.low: "privacy_low", REPORTED_PRIVACY.high: "privacy_high"})
    values = selection_points(points)  # minimised form: what fronts, knees and hypervolumes compare
    ref = np.array(reference.point)
    points["on_front"] = pareto_mask(values)
    points["on_method_front"] = False
    points["is_knee"] = False
    rows = []
    own = {m: g.index.to_numpy() for m, g in points.groupby("method", sort=True, observed=True)}
    given, shared_with = baseline_rows(results, points)
    groups = [("all", points.index.to_numpy())] + [
        (m, np.union1d(own.get(m, []), given).astype(int) if m in shared_with else own[m])
        for m in sorted(set(own) | (set(shared_with) if len(given) else set()))
    ]
    for method, idx in groups:
        on = pareto_mask(values[idx]) if method != "all" else points["on_front"].to_numpy()
        if method != "all":  # on_method_front: on the front of the row's own method
            points.loc[np.intersect1d(idx[on], own.get(method, [])), "on_method_front"] = True
        front = idx[on]
        knee = front[knee_index(values[front])]
        if method == "all":
            points.loc[knee, "is_knee"] = True
        rows.append({
            "method": method, "n_trials": len(idx), "n_front": len(front),
            "hypervolume": hypervolume(values[front], ref), "knee_trial_id": points.at[knee, "trial_id"],
            "knee_privacy": points.at[knee, PRIVACY.column], "knee_utility": points.at[knee, UTILITY.column],
            "knee_reported_privacy": points.at[knee, REPORTED_PRIVACY.column],
        })
    fronts = pd.DataFrame(rows)
    fronts = pd.concat([fronts.iloc[:1], fronts.iloc[1:].sort_values("hypervolume", ascending=False, kind="stable")])
    return Frontier(sweep_id=results.sweep_id, points=points, fronts=fronts.reset_index(drop=True),
                    reference=reference, privacy_label=stat)


def baseline_rows(results: Results, points: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The index in ``points`` of the sweep's baseline rows and the methods it was given to (``sweep.json``'s
    ``baseline``); none where the results have no such manifest (a store of single trials, an older sweep)."""
    text = SweepStorage.parse(results.root).read_text(MANIFEST)
    try:
        manifest = json.loads(text) if text is not None else {}
    except json.JSONDecodeError:
        manifest = {}
    baseline = manifest.get("baseline") if manifest.get("sweep_id") == results.sweep_id else None
    if not baseline:
        return np.array([], dtype=int), []
    rows = (points["method"].astype(str) == baseline["method"]) & (points["strength"] == float(baseline["strength"]))
    return points.index[rows].to_numpy(), list(baseline["shared_with"])


def write_frontier(frontier: Frontier, out: Path, *, teacher: pd.DataFrame | None = None) -> list[Path]:
    """``frontier.parquet`` (the rows on any front), ``frontier.png`` and ``frontier.html`` under ``out``;
    ``teacher`` (:func:`mia_kd.analysis.sweep_tables.teacher_points`) is drawn as a marker."""
    from mia_kd.analysis import plots

    out.mkdir(parents=True, exist_ok=True)
    rows = frontier.points[frontier.points["on_front"] | frontier.points["on_method_front"]].copy()
    rows["reference_privacy"], rows["reference_utility"] = frontier.reference.point
    parquet = out / "frontier.parquet"
    rows.to_parquet(parquet, index=False)
    args = (frontier.points, frontier.fronts, frontier.reference.point, frontier.privacy_label)
    png = plots.frontier_png(*args, out / "frontier.png", teacher=teacher)
    html = out / "frontier.html"
    plots.frontier_figure(*args, teacher=teacher).write_html(html, include_plotlyjs=True, full_html=True)
    return [parquet, png, html]


def format_frontier(frontier: Frontier) -> str:
    """The terminal summary: methods ranked by hypervolume, then the all-methods front by utility."""
    ref = frontier.reference
    fronts = frontier.fronts.copy()
    fronts["knee"] = fronts.apply(
        lambda r: f"{r.knee_trial_id} ({r.knee_privacy:.3f}, {r.knee_utility:.3f})", axis=1
    )
    front = frontier.points[frontier.points["on_front"]].sort_values(UTILITY.column)
    front = front.assign(
        privacy=[_ci(v, lo, hi)
                 for v, lo, hi in front[[REPORTED_PRIVACY.column, "privacy_low", "privacy_high"]].to_numpy()],
        knee=np.where(front["is_knee"], "*", ""),
    )
    return "\n".join([
        f"sweep {frontier.sweep_id}: fronts, knees and hypervolumes are of the selection objective (worst-case "
        f"attack {frontier.privacy_label} on the student, calib fold) and task loss (nats/token), both lower is "
        "better; 'privacy' below is the eval value of the attack chosen on calib, with its 95% CI",
        f"hypervolume reference point: ({ref.point[0]:.4f}, {ref.point[1]:.4f}) = {ref.basis}",
        "",
        fronts[["method", "n_trials", "n_front", "hypervolume", "knee"]].to_string(index=False, float_format="{:.4f}".format),
        "",
        "Pareto front across methods (* = knee):",
        front[["knee", "trial_id", "method", "strength", PRIVACY.column, "privacy", REPORTED_PRIVACY.attack,
               UTILITY.column]]
        .rename(columns={PRIVACY.column: "calib", "privacy": "privacy (eval)",
                         REPORTED_PRIVACY.attack: "attack", UTILITY.column: "task_loss"})
        .to_string(index=False, float_format="{:.4f}".format),
    ])


def _ci(value: float, low: float, high: float) -> str:
    return f"{value:.3f}" if np.isnan(low) else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _read_json(storage: SweepStorage, path: str) -> dict:
    text = storage.read_text(REFERENCE_FILE)
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); fix or delete it") from None
