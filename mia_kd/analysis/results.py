"""A sweep's results, read from the Parquet store: the one entry point of the analysis commands."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds

from mia_kd.config import AttackSpec, TrialConfig
from mia_kd.errors import UserError
from mia_kd.objectives import PRIVACY, REPORTED_COLUMNS, SELECTION_COLUMNS
from mia_kd.store import SHARED_ROLES, prepared_id, read_table

ROLES = ("teacher", "student")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Results:
    """The completed trials of one sweep and their ``metrics`` rows (``records`` are read on demand: they
    are large). Filtering happens in Arrow before pandas sees a row: a million trials read in seconds."""

    root: str
    sweep_id: str
    completed: pd.DataFrame  # completed trials, in the store's (path-sorted, deterministic) order
    n_failed: int
    metrics: pd.DataFrame  # metrics rows of completed trials

    @cached_property
    def privacy_objective(self) -> str:
        """The statistic the trials' privacy objective is (``auc`` unless the config said otherwise)."""
        stats = self.completed["privacy_objective"].dropna().unique()
        if len(stats) > 1:
            raise UserError(f"sweep {self.sweep_id!r} mixes privacy objectives {sorted(stats)}; analyse one at a time")
        return str(stats[0]) if len(stats) else "auc"

    @cached_property
    def config(self) -> TrialConfig:
        """The config of the sweep's first completed trial (the base every trial shares, docs/architecture.md §2)."""
        return TrialConfig.from_stored(self.completed["params"].iloc[0])

    @property
    def attacks(self) -> tuple[AttackSpec, ...]:
        """The configured attack specs (``.name``, ``.params``)."""
        return self.config.attacks

    def metric(self, role: str) -> pd.DataFrame:
        """Metrics rows of ``role`` (teacher | student)."""
        return self.metrics[self.metrics["model_role"] == role].reset_index(drop=True)

    def records(self, *, roles: tuple[str, ...], trial_ids: list[str] | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        """``records`` rows of ``roles`` (and ``trial_ids`` if given), only ``columns`` if given.

        Every trial's rows, whichever way they were stored: since schema 3 the teacher's and reference
        model's rows are stored once per prepared state (``trials.prepared_key``); they are read once and
        given to each trial prepared from it, so callers see the same rows as a per-trial store gives.
        """
        wanted = list(self.completed["trial_id"]) if trial_ids is None else list(trial_ids)
        read = None if columns is None else list(dict.fromkeys(["trial_id", *columns]))
        flt = ds.field("model_role").isin(list(roles)) & ds.field("trial_id").isin(wanted)
        frames = [read_table(self.root, "records", sweep_id=self.sweep_id, filter=flt, columns=read).to_pandas()]
        shared_roles = [role for role in roles if role in SHARED_ROLES]
        keys = self._prepared_keys(wanted) if shared_roles else {}
        if keys:
            # A trial whose own records file was skipped as unreadable (the store warned) has no rows at all,
            # as in a per-trial store: it gets no shared rows either.
            own = frames[0] if len(shared_roles) < len(roles) else self._with_own_records(list(keys))
            readable = set(own["trial_id"])
            keys = {trial: key for trial, key in keys.items() if trial in readable}
        if keys:
            flt = ds.field("model_role").isin(shared_roles) & ds.field("trial_id").isin(sorted(set(keys.values())))
            shared = read_table(self.root, "records", sweep_id=self.sweep_id, filter=flt, columns=read).to_pandas()
            by_key = dict(tuple(shared.groupby("trial_id", sort=False)))
            frames += [by_key[key].assign(trial_id=trial) for trial, key in keys.items() if key in by_key]
        frames = [frame for frame in frames if len(frame)] or frames[:1]
        records = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return records if columns is None or "trial_id" in columns else records.drop(columns="trial_id")

    def _with_own_records(self, trial_ids: list[str]) -> pd.DataFrame:
        """``trial_id`` of the trials among ``trial_ids`` whose own (student) rows read."""
        flt = (ds.field("model_role") == "student") & ds.field("trial_id").isin(trial_ids)
        return read_table(self.root, "records", sweep_id=self.sweep_id, filter=flt, columns=["trial_id"]).to_pandas()

    def _prepared_keys(self, trial_ids: list[str]) -> dict[str, str]:
        """trial id → the ``records`` id of its prepared state's shared rows (schema 3 on; older trials
        hold their teacher and reference rows under their own id)."""
        if "prepared_key" not in self.completed:
            return {}
        keys = self.completed.set_index("trial_id")["prepared_key"].dropna()
        return {t: prepared_id(keys[t]) for t in trial_ids if t in keys.index}

    def local_root(self) -> Path:
        """The results folder as a local path (analysis outputs are written beside the tables)."""
        if "://" in self.root:
            raise UserError(f"{self.root!r} is not a local folder: give --out for the analysis outputs")
        return Path(self.root)


def load_results(root: str, sweep_id: str | None = None) -> Results:
    """Read ``trials`` and ``metrics`` under ``root``; choose the sweep (the only one, or ``sweep_id``)."""
    if "://" not in root and not Path(root).is_dir():
        raise UserError(f"{root!r} is not a folder: give a results folder written by mia-kd sweep or mia-kd trial")
    trials = read_table(root, "trials")
    sweeps = sorted(s for s in pc.unique(trials["sweep_id"]).to_pylist() if s is not None)
    if sweep_id is None:
        if len(sweeps) != 1:
            raise UserError(f"{root!r} holds sweeps [{', '.join(sweeps) or 'none'}]: choose one with --sweep-id")
        sweep_id = sweeps[0]
    elif sweep_id not in sweeps:
        raise UserError(f"no sweep {sweep_id!r} under {root!r}; it holds: {', '.join(sweeps) or 'none'}")
    trials = trials.filter(pc.equal(trials["sweep_id"], sweep_id))
    completed = trials.filter(pc.equal(trials["status"], "completed"))
    n_failed = trials.num_rows - completed.num_rows
    if completed.num_rows == 0:
        raise UserError(f"sweep {sweep_id!r} under {root!r} has no completed trial yet (see mia-kd status)")
    metrics = read_table(root, "metrics", sweep_id=sweep_id)
    metrics = metrics.filter(pc.is_in(metrics["trial_id"], value_set=completed["trial_id"].combine_chunks()))
    # A trial whose metrics file was skipped (unreadable, warned about by the store) cannot be analysed;
    # the others can.
    bare = pc.invert(pc.is_in(completed["trial_id"], value_set=pc.unique(metrics["trial_id"])))
    if pc.any(bare).as_py():
        ids = completed.filter(bare)["trial_id"].to_pylist()
        log.warning("left out %d completed trial(s) without readable metrics rows: %s", len(ids), ", ".join(ids[:5]))
        completed = completed.filter(pc.invert(bare))
        if completed.num_rows == 0:
            raise UserError(f"sweep {sweep_id!r} under {root!r}: no completed trial has readable metrics rows")
    results = Results(root=root, sweep_id=sweep_id, completed=completed.to_pandas(),
                      n_failed=n_failed, metrics=metrics.to_pandas())
    if PRIVACY.column not in results.completed or results.completed[PRIVACY.column].isna().any():
        raise UserError(
            f"sweep {sweep_id!r} under {root!r} was written by mia-kd 0.1 (results schema 1), whose trials have no "
            f"calib selection objective ({PRIVACY.column}); fronts and ensembles must not choose on the eval fold. "
            "Rerun the sweep into a new --out with this version"
        )
    columns = list(dict.fromkeys([*SELECTION_COLUMNS, *REPORTED_COLUMNS]))
    objectives = results.completed[columns].to_numpy(np.float64)
    bad = ~np.isfinite(objectives).all(axis=1)
    if bad.any():
        ids = results.completed.loc[bad, "trial_id"].head(5)
        raise UserError(f"completed trials without finite objectives ({', '.join(ids)}, ...): the results are corrupt")
    return results
