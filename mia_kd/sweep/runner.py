"""A sweep, start to end, without Ray: check → prepare once → plan → search each method → keep what is asked.

The flow (docs/architecture.md §2): the config and the folder are checked before anything heavy starts;
the split, teacher and reference model are prepared once and shared by every trial, by a task that also
computes the methods' strength spaces, from which the plan is built (so the driver never imports torch); the Tune adapter
(:mod:`mia_kd.sweep.tune`, with the shadow tasks and trackers the only code that imports ray) runs the missing trials of each method's Optuna
study, each trial calling :func:`mia_kd.sweep.point.run_point` (the baseline first, and every other method's study is
given it instead of training it again); finally ``save_students: front`` removes students off the front.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from mia_kd.config import SweepConfig, load_sweep
from mia_kd.store import MANIFEST, SweepStorage
from mia_kd.attacks import required_passes
from mia_kd.sweep import shadow_tasks, students, tracking, tune
from mia_kd.sweep.plan import SweepPlan, folder_manifest
from mia_kd.sweep.study import stored_trials
from mia_kd.validate import check_sweep

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOutcome:
    out: str  # the results folder or URL
    journal: Path  # the Optuna journal (local to the driver)
    ran: int  # trials run by this invocation
    completed: int  # completed trials in the store for this sweep, all invocations
    failed: int
    seconds: float
    # Tune's ResultGrid of the experiment this invocation ran (none when nothing was left to run)
    result_grids: list[tune.ResultGrid] = field(default_factory=list)


def run_sweep(
    config: str | Path | SweepConfig,
    *,
    out: str | None = None,
    address: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    verbose: bool = False,
    allow_local_out: bool = False,
    callbacks: list | tuple = (),
) -> SweepOutcome:
    """Run (or resume) the sweep ``config`` (a file, or a loaded :class:`SweepConfig`) into ``out``.

    ``address`` is a Ray cluster's (default: an embedded local Ray); trials already in ``out`` are not run again.
    ``callbacks``: Ray Tune callbacks added to the experiment's ``RunConfig(callbacks=...)``.
    """
    start = time.perf_counter()
    config = check_sweep(config if isinstance(config, SweepConfig) else load_sweep(config, overrides))
    sweep_id, storage = config.base.sweep_id, SweepStorage.parse(out or config.sweep.out)
    manifest = folder_manifest(config, storage)  # refuses another sweep's folder before Ray starts

    tune.start(address=address, verbose=verbose)
    tune.check_shared(storage, allow_local_out)
    tracking.tracking_callbacks(config.sweep.tracking, sweep_id)  # a missing tracker or refused store: before any training
    storage.write_text(MANIFEST, json.dumps(manifest, indent=2, default=str))  # `mia-kd status`: preparing
    log.info("sweep %s: preparing the split, teacher and reference model once for all trials", sweep_id)
    prepared, summary = tune.prepare(config.base, storage, config.sweep.prepare_resources, list(config.sweep.methods))
    log.info("sweep %s: prepared on node %s in %.0f s (%s)", sweep_id, summary["node_id"],
             sum(summary["stage_times"].values()), ", ".join(f"{k} {v:.0f} s" for k, v in summary["stage_times"].items()))
    # The plan reads the methods' strength spaces from the preparation task (some need the student's model
    # code): the driver never imports torch.
    plan = SweepPlan.build(config, spaces=summary["spaces"])
    storage.write_text(MANIFEST, json.dumps(plan.manifest(manifest), indent=2, default=str))
    if required_passes(config.base.attacks).shadows:  # lira, rmia: shadow models as Ray tasks, once per sweep
        prepared, nodes = shadow_tasks.shadows(prepared, config.base, storage.out,
                                               config.sweep.shadow_resources or config.sweep.resources, quiet=verbose)
        log.info("sweep %s: shadow models trained on %d node(s)", sweep_id, len(nodes))

    stored = stored_trials(storage, sweep_id)
    already = sum(1 for r in stored if r["status"] in ("completed", "failed"))
    bar = tqdm(total=plan.total, initial=min(already, plan.total), desc="sweep", unit="trial", disable=verbose,
               dynamic_ncols=True)
    # One experiment: the baseline (if not stored yet) trains first, beside the methods that do not share it;
    # the methods that do are held until it completes and are then given it instead of training it again.
    ran, grid = tune.run(plan, prepared, storage, stored, bar=bar, verbose=verbose, callbacks=callbacks)
    bar.close()
    storage.push_journal()
    if config.sweep.save_students == "front":
        students.keep_front(storage, [r for r in stored_trials(storage, sweep_id) if r["status"] == "completed"])
    rows = stored_trials(storage, sweep_id)
    return SweepOutcome(
        out=storage.out, journal=storage.journal_file(), ran=ran, completed=sum(r["status"] == "completed" for r in rows),
        failed=sum(r["status"] == "failed" for r in rows), seconds=time.perf_counter() - start,
        result_grids=[] if grid is None else [grid],
    )
