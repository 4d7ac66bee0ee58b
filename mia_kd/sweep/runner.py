"""Ray Tune schedules the trials, Optuna searches each method's strength; the only module that imports ray.

The flow: validate the sweep file → prepare once (split, teacher, reference model, the teacher's scores;
shared with every trial through the object store) → for each method, reconcile its Optuna study with the
store and run the missing trials with ``OptunaSearch(metric=[privacy, utility], mode=[min, min])``. The
trainable is a thin adapter: ``dict → TrialConfig → run_student → write rows → tune.report``.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from mia_kd.config import validate_config
from mia_kd.errors import ConfigError
from mia_kd.store import SCHEMA_VERSION, TRIALS, read_table, write_result, write_trial
from mia_kd.sweep.config import MethodSearch, SweepSection, load_sweep, trial_config
from mia_kd.sweep.storage import MANIFEST, SweepStorage
from mia_kd.sweep.study import DIRECTIONS, journal_storage, make_sampler, reconcile, study_name

if TYPE_CHECKING:
    from mia_kd.privacy import StrengthSpace

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SweepOutcome:
    out: str  # the results folder or URL
    journal: Path  # the Optuna journal (local to the driver)
    ran: int  # trials run by this invocation
    completed: int  # completed trials in the store for this sweep, all invocations
    failed: int
    seconds: float


def run_sweep(
    config_path: str | Path,
    *,
    out: str | None = None,
    address: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    verbose: bool = False,
    allow_local_out: bool = False,
) -> SweepOutcome:
    start = time.perf_counter()
    raw, base, sweep = load_sweep(config_path, overrides)
    storage = SweepStorage.parse(out or sweep.out)
    spaces = _spaces(sweep, base)
    plan = _plan(sweep, spaces)
    manifest = _manifest(storage, raw, base, sweep, plan, config_path)  # refuses another sweep's folder

    import ray
    from ray import tune

    if not verbose:
        # Tune's experiment boxes and end-of-run hints: the sweep prints its own lines instead.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
        )
    _check_shared(storage, allow_local_out)
    storage.write_text(MANIFEST, json.dumps(manifest, indent=2, default=str))

    from mia_kd.trial import prepare

    log.info("sweep %s: preparing the split, teacher and reference model once for all trials", base.sweep_id)
    prepared = prepare(base)
    prepared_ref = ray.put(prepared)
    journal = journal_storage(storage.journal_file())
    total = sum(plan.values())
    stored = _stored_trials(storage, base.sweep_id)
    already = sum(1 for r in stored if r["status"] in ("completed", "failed"))
    bar = tqdm(total=total, initial=min(already, total), desc="sweep", unit="trial", disable=verbose, dynamic_ncols=True)
    searchers, remaining = {}, {}
    for index, (name, search) in enumerate(sweep.methods.items()):
        searchers[name], remaining[name] = _method_searcher(
            name, search, index, plan[name], space=spaces[name], sweep=sweep, base=base, storage=journal,
            stored=[r for r in stored if r["method"] == name],
        )
    ran = sum(remaining.values())
    if ran:
        _run_trials(searchers, remaining, spaces, sweep=sweep, raw=raw, base=base, storage=storage,
                    prepared_ref=prepared_ref, bar=bar, verbose=verbose, tune=tune)
    bar.close()
    storage.push_journal()
    if sweep.save_students == "front":
        _keep_front_students(storage, base.sweep_id)
    rows = _stored_trials(storage, base.sweep_id)
    return SweepOutcome(
        out=storage.out, journal=storage.journal_file(), ran=ran, completed=sum(r["status"] == "completed" for r in rows),
        failed=sum(r["status"] == "failed" for r in rows), seconds=time.perf_counter() - start,
    )


def _spaces(sweep: SweepSection, base) -> dict[str, StrengthSpace]:
    """The strengths searched per method: the method's space for this student (where it starts acting, as
    integers where its effect is discrete), narrowed by ``methods.NAME.strength`` when given."""
    from mia_kd.privacy import method_class

    spaces = {}
    for name, search in sweep.methods.items():
        space = method_class(name).strength_space(base)
        if search.strength is not None:
            space = replace(space, low=float(search.strength[0]), high=float(search.strength[1]))
        spaces[name] = space
    return spaces


def _plan(sweep: SweepSection, spaces: dict[str, StrengthSpace]) -> dict[str, int]:
    """Trials per method: one where the space is one point (the baseline), at most one per integer value."""
    plan = {}
    for name, search in sweep.methods.items():
        space = spaces[name]
        trials = search.trials or sweep.trials_per_method
        if space.integer:
            trials = min(trials, math.floor(space.high) - math.ceil(space.low) + 1)
        plan[name] = 1 if space.low == space.high else trials
    return plan


def _grid(space: StrengthSpace, trials: int) -> list[float]:
    """``trials`` evenly spaced strengths over the space (distinct whole numbers for an integer space)."""
    points = [space.low + (space.high - space.low) * i / max(1, trials - 1) for i in range(trials)]
    return sorted({float(round(p)) for p in points}) if space.integer else points


def _method_searcher(name, search, index, trials, *, space, sweep, base, storage, stored):
    """The method's OptunaSearch over its reconciled study, and how many of its trials are still missing."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from mia_kd.privacy import method_class

    cls = method_class(name)
    low, high = space.low, space.high
    grid = {"strength": _grid(space, trials)} if low < high else {}
    sampler = make_sampler(sweep.sampler, seed=sweep.sampler_seed + index, trials=trials, grid=grid)
    study = optuna.create_study(
        storage=storage, study_name=study_name(base.sweep_id, name), directions=DIRECTIONS, sampler=sampler,
        load_if_exists=True,
    )
    state = reconcile(study, stored, neutral=cls.neutral)
    remaining = max(0, trials - state.done)
    if remaining:
        log.info("%s: %d of %d trials to run (strength in [%g, %g])", name, remaining, trials, low, high)
    # The grid sampler's first point is the range's low end: where that is the neutral value, the grid
    # already evaluates it and enqueueing it too would run it twice.
    in_grid = sweep.sampler == "grid" and cls.neutral in grid.get("strength", [])
    neutral_first = low < high and low <= cls.neutral <= high and not state.neutral_done and not in_grid
    searcher = OptunaSearch(
        space=_Space(method=name, low=low, high=high, integer=space.integer, shared=dict(sweep.shared)),
        metric=["privacy", "utility"],
        mode=["min", "min"],
        points_to_evaluate=[{"strength": cls.neutral}] if neutral_first else None,
        sampler=sampler,
        study_name=study_name(base.sweep_id, name),
        storage=storage,
    )
    return searcher, remaining


def _run_trials(searchers, remaining, spaces, *, sweep, raw, base, storage, prepared_ref, bar, verbose, tune) -> None:
    """One Tune experiment for every method: actors are reused across methods, which run side by side."""
    from ray.tune import FailureConfig, RunConfig

    fixed = {name: space.low if space.low == space.high else None for name, space in spaces.items()}
    cpus = sweep.resources.cpu
    trainable = tune.with_parameters(
        _trainable, prepared=prepared_ref, raw=raw, searches=dict(sweep.methods), sweep=sweep, out=storage.out,
        fixed_strengths=fixed, threads=max(1, math.floor(cpus)),
    )
    trainable = tune.with_resources(trainable, {"cpu": cpus, "gpu": sweep.resources.gpu})
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=_MethodRouter(searchers, remaining), num_samples=sum(remaining.values()),
            max_concurrent_trials=sweep.max_concurrent, reuse_actors=True,
        ),
        run_config=RunConfig(
            name=f"{base.sweep_id}-{stamp}",
            storage_path=storage.url("tune"),
            failure_config=FailureConfig(max_failures=sweep.max_failures),
            verbose=1 if verbose else 0,
            callbacks=[_Progress(bar, storage=storage, base=base, searches=dict(sweep.methods))],
        ),
    )
    tuner.fit()


@dataclass(frozen=True)
class _Space:
    """Define-by-run search space (a class, not a closure: Tune pickles the searcher into its checkpoints).

    The strength (and any shared knobs) are searched; the method and the Optuna trial number travel to the
    trainable as constants, so each stored row names the study trial it belongs to.
    """

    method: str
    low: float
    high: float
    integer: bool
    shared: dict[str, tuple[float, float]]

    def __call__(self, trial) -> dict[str, Any]:
        if self.low < self.high and self.integer:  # a discrete effect: fractions between would repeat a point
            trial.suggest_int("strength", math.ceil(self.low), math.floor(self.high))
        elif self.low < self.high:
            trial.suggest_float("strength", self.low, self.high)
        for key, (lo, hi) in self.shared.items():
            trial.suggest_float(key, lo, hi)
        return {"method": self.method, "optuna_trial": trial.number}


def _trainable(
    config: dict[str, Any],
    *,
    prepared,
    raw: dict[str, Any],
    searches: dict[str, MethodSearch],
    sweep: SweepSection,
    out: str,
    fixed_strengths: dict[str, float | None],
    threads: int,
) -> None:
    """One Tune trial: ``repeats`` students at the suggested strength; rows written, mean objectives reported."""
    import ray
    import torch
    from ray import tune

    from mia_kd.models.student import save_student
    from mia_kd.trial import run_student

    torch.set_num_threads(threads)
    os.environ["MIA_KD_NODE_ID"] = ray.get_runtime_context().get_node_id()
    tune_id = tune.get_context().get_trial_id()
    if isinstance(prepared, ray.ObjectRef):  # with_parameters resolves it; a plain call may not
        prepared = ray.get(prepared)
    method = config["method"]
    search = searches[method]
    fixed = fixed_strengths[method]
    strength = fixed if fixed is not None else float(config["strength"])
    shared = {k: v for k, v in config.items() if k.startswith("distill.")}
    privacy, reported, utility, start = [], [], [], time.perf_counter()
    for repeat in range(sweep.repeats):
        trial_raw = trial_config(
            raw, method, strength, search, shared,
            student_seed=None if repeat == 0 else raw.get("seed", 0) + 1 + repeat,
        )
        trial_raw.setdefault("runtime", {}).update(threads=threads, progress=False)
        trial_id = tune_id if sweep.repeats == 1 else f"{tune_id}-r{repeat}"
        result = run_student(prepared, validate_config(trial_raw), trial_id=trial_id)
        result.trial.update(optuna_trial=config["optuna_trial"], tune_trial_id=tune_id)
        if sweep.save_students != "none":
            _save(SweepStorage.parse(out), result, save_student)
        write_result(out, result)
        privacy.append(result.trial["selection_privacy"])  # calib: what the search may read
        reported.append(result.trial["objective_privacy"])  # eval: for the progress line only
        utility.append(result.trial["objective_utility"])
        del result
    if torch.cuda.is_available():  # the actor is reused: hand this trial's GPU memory back before the next
        gc.collect()
        torch.cuda.empty_cache()
    tune.report(
        {
            "privacy": sum(privacy) / len(privacy),
            "reported_privacy": sum(reported) / len(reported),
            "utility": sum(utility) / len(utility),
            "mia_trial_id": tune_id,
            "method": config["method"],
            "strength": strength,
            "seconds": time.perf_counter() - start,
        }
    )


from ray.tune import Callback  # noqa: E402  (this module is the sweep's Ray boundary)
from ray.tune.search import Searcher  # noqa: E402


class _MethodRouter(Searcher):
    """One Tune search algorithm over every method's own OptunaSearch (one Optuna study per method).

    Suggestions go round-robin over the methods that still have trials to run, so methods run side by side
    and Tune reuses its actors across them; results are routed back to the study they came from.
    """

    def __init__(self, searchers: dict[str, Searcher], remaining: dict[str, int]) -> None:
        super().__init__(metric=["privacy", "utility"], mode=["min", "min"])
        self.searchers = searchers
        self.remaining = {name: n for name, n in remaining.items() if n > 0}
        self.owner: dict[str, str] = {}
        self._turn = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # each method's searcher was built with its own space, metric and mode

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self.owner:
            return self.searchers[self.owner[trial_id]].suggest(trial_id)
        names = [n for n in self.remaining if self.remaining[n] > 0]
        if not names:
            return Searcher.FINISHED
        name = names[self._turn % len(names)]
        self._turn += 1
        self.remaining[name] -= 1
        self.owner[trial_id] = name
        return self.searchers[name].suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)


class _Progress(Callback):
    """One line per finished trial; failed trials become ``status=failed`` rows; the overall bar moves."""

    def __init__(self, bar, *, storage: SweepStorage, base, searches: dict[str, MethodSearch]) -> None:
        self.bar, self.storage, self.base, self.searches = bar, storage, base, searches

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config for Tuner.restore; the terminal's progress bar stays behind.
        return {**self.__dict__, "bar": tqdm(disable=True)}

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        if "privacy" in result:
            stat = self.base.metrics.privacy_objective
            self.bar.write(
                f"{result['method']:<18} strength {result['strength']:<8.4g} {stat} calib (selection) "
                f"{result['privacy']:.3f} eval {result['reported_privacy']:.3f}  task loss {result['utility']:.3f}  "
                f"{result['seconds']:.0f} s"
            )
        self.storage.push_journal()
        self.bar.update()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _error_text(trial)
        method = trial.config["method"]
        search = self.searches[method]
        strength = trial.config.get("strength", 0.0)
        row = {name: None for name in TRIALS.names}
        row.update(
            schema_version=SCHEMA_VERSION, sweep_id=self.base.sweep_id, trial_id=trial.trial_id, status="failed",
            error=error, method=method, strength=float(strength), privacy_stage=search.stage,
            privacy_params=json.dumps(search.params, sort_keys=True), seed=self.base.seed,
            optuna_trial=trial.config.get("optuna_trial"), tune_trial_id=trial.trial_id,
            config_hash=self.base.config_hash(), started_at=datetime.now(UTC),
        )
        import pyarrow as pa

        write_trial(
            self.storage.out, sweep_id=self.base.sweep_id, method=method, trial_id=trial.trial_id,
            tables={"trials": pa.Table.from_pylist([row], schema=TRIALS)},
        )
        self.bar.write(f"{method:<18} strength {strength:<8.4g} FAILED: {error}")
        self.bar.update()


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    text = ""
    if path and os.path.exists(path):
        text = Path(path).read_text(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "the trial failed (no error text)"


def _stored_trials(storage: SweepStorage, sweep_id: str) -> list[dict[str, Any]]:
    if not storage.exists("trials"):
        return []
    table = read_table(storage.out, "trials", sweep_id=sweep_id)
    wanted = [c for c in ("trial_id", "method", "status", "strength", "optuna_trial", "selection_privacy",
                          "objective_utility") if c in table.column_names]
    return table.select(wanted).to_pylist()


def _keep_front_students(storage: SweepStorage, sweep_id: str) -> None:
    """``save_students: front``: remove the students of trials off the privacy-utility Pareto front (of the
    calib selection objective: which students are kept is a choice, so it never reads eval)."""
    from mia_kd.analysis.pareto import pareto_mask

    rows = [r for r in _stored_trials(storage, sweep_id) if r["status"] == "completed"]
    if not rows:
        return
    import numpy as np

    points = np.array([[r["selection_privacy"], r["objective_utility"]] for r in rows])
    keep = {r["trial_id"] for r, on in zip(rows, pareto_mask(points), strict=True) if on}
    # Each repeat writes its own row under the folder's name, so names match trial ids one to one.
    for name in storage.subdirs("students"):
        if name not in keep:
            storage.delete_dir(f"students/{name}")


def _save(storage: SweepStorage, result, save_student) -> None:
    """The trial's student under ``out/students/<trial_id>/`` (written locally first when ``out`` is a URL)."""
    if storage.local is not None:
        save_student(storage.local / "students", result)
        return
    with tempfile.TemporaryDirectory(prefix="mia_kd-student-") as tmp:
        folder = save_student(Path(tmp), result)
        storage.upload_dir(folder, f"students/{folder.name}")


def _check_shared(storage: SweepStorage, allow_local_out: bool) -> None:
    """On a multi-node cluster every node writes results: refuse a path only this machine sees."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if storage.local is not None and len(nodes) > 1 and not allow_local_out:
        raise ConfigError(
            f"--out {storage.out!r} is a local path and this Ray cluster has {len(nodes)} nodes: trials on other "
            "nodes could not write there. Give an s3:// or gs:// URL, or a path on a mount every node sees "
            "together with --allow-local-out"
        )


def _manifest(storage: SweepStorage, raw, base, sweep: SweepSection, plan: dict[str, int], config_path) -> dict:
    """``sweep.json``'s content: what this folder holds; a different sweep in the same folder is refused."""
    from mia_kd.trial import prepare_key

    key = prepare_key(base)
    text = storage.read_text(MANIFEST)
    if text is not None:
        try:
            old = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError(f"{storage.url(MANIFEST)} is not valid JSON; restore it or use another --out") from None
        if old.get("sweep_id") != base.sweep_id or old.get("prepare_key") != key:
            raise ConfigError(
                f"--out {storage.out!r} holds sweep {old.get('sweep_id')!r} with a different data/teacher setup; "
                "use another --out (or the same config) to resume"
            )
        started = old.get("started_at")
    else:
        started = datetime.now(UTC).isoformat()
    return {
        "sweep_id": base.sweep_id, "prepare_key": key, "config_path": str(config_path), "started_at": started,
        "plan": plan, "sweep": sweep.model_dump(mode="json"), "config": raw,
    }
