"""``mia-kd status``: what a sweep folder holds, read from its manifest and the store (no ray, no torch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mia_kd.errors import ConfigError, UserError
from mia_kd.objectives import PRIVACY, REPORTED_PRIVACY, UTILITY, Objective
from mia_kd.store import MANIFEST, SweepStorage, read_table


@dataclass(frozen=True)
class SweepStatus:
    sweep_id: str
    per_method: pd.DataFrame  # method, planned, completed, failed
    best: pd.DataFrame  # the best completed trial per objective
    elapsed_s: float
    eta_s: float | None
    privacy_objective: str
    preparing: bool = False  # the plan is not known yet: the preparation task is running (or it failed)


def sweep_status(out: str | Path) -> SweepStatus:
    """Status of the sweep in ``out`` (a folder or a URL, as given to ``mia-kd sweep --out``)."""
    try:
        storage = SweepStorage.parse(str(out))
    except ConfigError as exc:
        raise UserError(str(exc).replace("--out", "the sweep folder", 1)) from None
    text = storage.read_text(MANIFEST)
    if text is None:
        raise UserError(f"{str(out)!r} has no {MANIFEST}: is it the --out folder of a mia-kd sweep?")
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError:
        raise UserError(f"{storage.url(MANIFEST)} is not valid JSON; the sweep folder is damaged") from None
    # Before its plan is known (the sweep prepares) the manifest names only the sweep and its methods.
    sweep_id, plan = manifest["sweep_id"], manifest.get("plan")
    preparing = plan is None
    if preparing:
        plan = dict.fromkeys(manifest["sweep"]["methods"], 0)
    trials = (
        read_table(storage.out, "trials", sweep_id=sweep_id).to_pandas()
        if storage.exists("trials") else pd.DataFrame(columns=["method", "status", "trial_id"])
    )
    counts = []
    for method, planned in plan.items():
        rows = trials[trials["method"].astype(str) == method]
        counts.append({
            "method": method, "planned": planned,
            "completed": int((rows["status"] == "completed").sum()), "failed": int((rows["status"] == "failed").sum()),
        })
    per_method = pd.DataFrame(counts)
    done = trials[trials["status"] == "completed"]
    best = pd.DataFrame()
    if len(done):
        # Chosen on calib (PRIVACY), shown with the eval value of the attack chosen there. Trials
        # of mia-kd 0.1 (schema 1) have no calib value: no privacy pick for them rather than one made on eval.
        done = done.reindex(columns=[*done.columns.drop(PRIVACY.column, errors="ignore"), PRIVACY.column])
        cols = ["trial_id", "method", "strength", PRIVACY.column, REPORTED_PRIVACY.column, UTILITY.column]
        best = pd.concat([
            _best(done.dropna(subset=[PRIVACY.column]), PRIVACY)[cols].assign(best=PRIVACY.name),
            _best(done, UTILITY)[cols].assign(best=UTILITY.name),
        ]).rename(columns={PRIVACY.column: "privacy_calib", REPORTED_PRIVACY.column: "privacy_eval"})
    started = datetime.fromisoformat(manifest["started_at"])
    elapsed = (datetime.now(UTC) - started).total_seconds()
    finished = int(per_method[["completed", "failed"]].to_numpy().sum())
    remaining = int(per_method["planned"].sum()) - finished
    eta = None
    if finished and remaining > 0 and "wall_time_s" in done:
        eta = remaining * float(done["wall_time_s"].mean()) / max(1, manifest["sweep"]["max_concurrent"])
    objective = manifest["config"].get("metrics", {}).get("privacy_objective", "auc")
    if preparing:
        return SweepStatus(sweep_id, per_method.drop(columns="planned"), best, elapsed, None, objective, preparing=True)
    return SweepStatus(sweep_id, per_method, best, elapsed, 0.0 if remaining <= 0 else eta, objective)


def _best(trials: pd.DataFrame, objective: Objective) -> pd.DataFrame:
    """The trial best on ``objective`` (the first on ties), as a one-row frame."""
    if objective.direction == "minimize":
        return trials.nsmallest(1, objective.column)
    return trials.nlargest(1, objective.column)


def format_status(status: SweepStatus) -> str:
    lines = [f"sweep {status.sweep_id}", "", status.per_method.to_string(index=False), ""]
    if status.preparing:
        lines[0] += (": preparing (split, teacher, reference model, the methods' strength spaces); the trials are "
                     "planned once that is done")
    if len(status.best):
        lines.append(
            f"best so far (privacy = worst-case student {status.privacy_objective}, chosen on calib, eval value "
            "beside it; utility = task loss):"
        )
        lines.append(status.best.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        lines.append("")
    eta = "unknown" if status.eta_s is None else f"{status.eta_s / 60:.1f} min"
    lines.append(f"elapsed since the sweep started: {status.elapsed_s / 60:.1f} min; remaining (estimate): {eta}")
    return "\n".join(lines)
