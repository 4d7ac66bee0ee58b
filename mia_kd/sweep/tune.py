"""The sweep's Ray boundary, with :mod:`~mia_kd.sweep.shadow_tasks` and :mod:`~mia_kd.sweep.tracking` the only
code that imports ray (docs/architecture.md §2).

Ray Tune schedules the trials, one Optuna study per method suggests their strengths
(``OptunaSearch(metric=[privacy, utility], mode=[min, min])``, the objectives of :mod:`mia_kd.objectives`).
The trainable is a thin adapter: ``suggestion → run_point → tune.report``; the prepared split and models
travel to the workers through the object store. Experiment trackers are Tune's own logger callbacks
(``sweep.tracking``: MLflow, W&B, in :mod:`mia_kd.sweep.tracking`) fed by that report; the Parquet store stays the record.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import optuna
import pyarrow as pa
import ray
from ray import tune
from ray.tune import Callback, FailureConfig, ResultGrid, RunConfig
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from tqdm.auto import tqdm

from mia_kd.attacks import required_passes
from mia_kd.config import PrepareResources, TrialConfig
from mia_kd.errors import ConfigError
from mia_kd.objectives import MODES, NAMES, PRIVACY, REPORTED_PRIVACY, UTILITY
from mia_kd.store import TRIALS, SweepStorage, write_trial
from mia_kd.store.rows import failed_row
from mia_kd.sweep.plan import MethodPlan, SweepPlan
from mia_kd.sweep.shadow_tasks import fetch, trial_students
from mia_kd.sweep.tracking import tracking_callbacks
from mia_kd.sweep.study import add_baseline, journal_storage, method_study, stored_baseline, stored_trials, study_name

if TYPE_CHECKING:  # the driver never imports torch: the pipeline runs in the tasks and trials below
    from mia_kd.prepared import Prepared

METRIC, MODE = list(NAMES), list(MODES)  # Tune wants lists

log = logging.getLogger(__name__)


def start(*, address: str | None, verbose: bool) -> None:
    """Join the Ray cluster at ``address`` (default: start an embedded local Ray), quietly unless ``verbose``."""
    if not verbose:
        # Tune's experiment boxes and end-of-run hints: the sweep prints its own lines instead.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.ERROR)


def check_shared(storage: SweepStorage, allow_local_out: bool) -> None:
    """On a multi-node cluster every node writes results: refuse a path only this machine sees."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if storage.local is not None and len(nodes) > 1 and not allow_local_out:
        raise ConfigError(
            f"--out {storage.out!r} is a local path and this Ray cluster has {len(nodes)} nodes: trials on other "
            "nodes could not write there. Give an s3:// or gs:// URL, or a path on a mount every node sees "
            "together with --allow-local-out"
        )


def prepare(
    config: TrialConfig, storage: SweepStorage, resources: PrepareResources, methods: list[str]
) -> tuple[ray.ObjectRef, dict[str, Any]]:
    """Run the sweep's preparation (:func:`~mia_kd.sweep.preparation.prepare_for_sweep`) as a Ray task with
    ``resources``; the prepared state's object reference (trials read it from the object store, the driver
    never holds it) and the task's summary (with the strength spaces of ``methods``). The task's own error
    is raised as itself."""
    cpu, gpu = prepare_shape(resources, [n["Resources"] for n in ray.nodes() if n.get("Alive")])
    log.info("preparing as a Ray task: %g CPU, %g GPU%s", cpu, gpu,
             "".join(f", {k} {v:g}" for k, v in resources.resources.items()))
    task = ray.remote(_prepare_task).options(
        num_cpus=cpu, num_gpus=gpu, resources=dict(resources.resources), num_returns=2, name="mia_kd.prepare",
    )
    summary, prepared = task.remote(config, storage.out, threads=max(1, math.floor(cpu)), methods=methods)
    return prepared, fetch(summary)


def _prepare_task(config: TrialConfig, out: str, *, threads: int, methods: list[str]) -> tuple[dict[str, Any], Prepared]:
    from mia_kd.sweep.preparation import prepare_for_sweep

    os.environ["MIA_KD_NODE_ID"] = ray.get_runtime_context().get_node_id()  # the rows say where it ran
    return prepare_for_sweep(config, out, threads=threads, methods=methods)


def prepare_shape(resources: PrepareResources, nodes: list[dict[str, float]]) -> tuple[float, float]:
    """``(cpu, gpu)`` of the preparation task: as configured, else one GPU if any node (of ``nodes``'
    resources) has one, and all the CPUs of the largest such node."""
    gpu = resources.gpu if resources.gpu is not None else float(any(n.get("GPU", 0) >= 1 for n in nodes))
    fitting = [n for n in nodes if n.get("GPU", 0) >= gpu] or nodes
    cpu = resources.cpu if resources.cpu is not None else max((n.get("CPU", 0.0) for n in fitting), default=1.0)
    return float(cpu or 1.0), float(gpu)


def run(
    plan: SweepPlan, prepared: Prepared | ray.ObjectRef, storage: SweepStorage, stored: list[dict[str, Any]], *, bar, verbose: bool,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
) -> tuple[int, ResultGrid | None]:
    """Run every method's missing trials in one Tune experiment; the number of trials run and Tune's
    ``ResultGrid`` (None where nothing was left to run).

    The baseline (the plan's baseline method at its neutral strength), when not stored yet, is suggested
    first; the methods that share it are held until it completes and their studies are then given it
    (:mod:`mia_kd.sweep.study`), while the methods that do not share it run beside it.
    ``callbacks``: more Tune callbacks (the user's), after the progress line and ``sweep.tracking``'s loggers.
    """
    sweep, sweep_id = plan.config.sweep, plan.config.base.sweep_id
    journal = journal_storage(storage.journal_file())
    baseline = stored_baseline(plan, journal, stored)
    pending = baseline is None and plan.baseline is not None and not plan.baseline_rows(stored)
    order = sorted(plan.methods, key=lambda name: name != plan.baseline)  # the baseline's method first
    searchers, remaining, held = {}, {}, set()
    for name in order:
        method, index = plan.methods[name], list(plan.methods).index(name)
        shares = plan.shares_baseline(name)
        study = method_study(
            method, index, sweep, sweep_id, journal, [r for r in stored if r["method"] == name],
            trains_baseline=name == plan.baseline, baseline=baseline if shares else None,
            baseline_pending=pending and shares,
        )
        if name == plan.baseline:
            pending = pending and study.remaining > 0  # its budget may be spent on other points (a resume)
        remaining[name] = study.remaining
        held |= {name} if pending and shares and study.remaining else set()
        searchers[name] = OptunaSearch(
            space=_Space(method=name, low=method.space.low, high=method.space.high, integer=method.space.integer,
                         shared=dict(sweep.shared)),
            metric=METRIC, mode=MODE, sampler=study.sampler, study_name=study_name(sweep_id, name), storage=journal,
            points_to_evaluate=[{"strength": method.neutral}] if study.neutral_first else None,
        )
    ran = sum(remaining.values())
    if not ran:
        return 0, None
    if not isinstance(prepared, ray.ObjectRef):
        prepared = ray.put(prepared)
    trainable = tune.with_parameters(
        _trainable, plan=plan, prepared=prepared, out=storage.out, threads=max(1, math.floor(sweep.resources.cpu))
    )
    trainable = tune.with_resources(trainable, {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu})
    give = _GiveBaseline(plan, storage.out, str(storage.journal_file())) if held else None
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=_MethodRouter(searchers, remaining, held=held, give=give), num_samples=ran,
            max_concurrent_trials=sweep.max_concurrent, reuse_actors=True,
        ),
        run_config=RunConfig(
            name=f"{sweep_id}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}", storage_path=storage.url("tune"),
            failure_config=FailureConfig(max_failures=sweep.max_failures), verbose=1 if verbose else 0,
            callbacks=[_Progress(bar, storage=storage, plan=plan), *tracking_callbacks(sweep.tracking, sweep_id),
                       CSVLoggerCallback(), JsonLoggerCallback(), *callbacks],
        ),
    )
    # Tune's own CSV and JSON results are kept (given above), its TensorBoard logger is not: tensorboardX
    # imports torch, 3 s in the driver as the experiment starts, and nothing here reads its event files.
    with mock.patch.dict(os.environ, {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}):
        return ran, tuner.fit()


@dataclass(frozen=True)
class _GiveBaseline:
    """Once the baseline trained in this experiment is stored, add it to the held methods' studies
    (a class, not a closure: Tune pickles the search algorithm into its checkpoints)."""

    plan: SweepPlan
    out: str
    journal: str

    def __call__(self, studies: dict[str, optuna.Study]) -> bool:
        """Give each of ``studies`` the stored baseline; False where there is none to give (it failed)."""
        stored = stored_trials(SweepStorage.parse(self.out), self.plan.config.base.sweep_id)
        baseline = stored_baseline(self.plan, journal_storage(Path(self.journal)), stored)
        if baseline is None:
            return False
        for name, study in studies.items():
            add_baseline(study, baseline, self.plan.methods[name], self.plan.config.sweep)
        return True


def _trainable(config: dict[str, Any], *, plan: SweepPlan, prepared, out: str, threads: int) -> None:
    """One Tune trial: the suggested point through :func:`run_point`, its mean objectives reported; with
    ``shadows.online``, its own shadow students first, as Ray tasks."""
    import torch

    from mia_kd.sweep.point import run_point

    torch.set_num_threads(threads)
    os.environ["MIA_KD_NODE_ID"] = ray.get_runtime_context().get_node_id()
    if isinstance(prepared, ray.ObjectRef):  # with_parameters resolves it; a plain call may not
        prepared = ray.get(prepared)
    method: MethodPlan = plan.methods[config["method"]]
    strength = method.fixed if method.fixed is not None else float(config["strength"])
    tune_id = tune.get_context().get_trial_id()
    result = run_point(
        plan, prepared, method=method.name, strength=strength, trial_id=tune_id, optuna_trial=config["optuna_trial"],
        shared={k: v for k, v in config.items() if k.startswith("distill.")}, out=out, threads=threads,
        shadow_students=_online_shadows(plan, prepared, trial_students),
    )
    # What trackers (sweep.tracking, the user's callbacks) see: both objectives, the student's per-attack eval
    # metrics (nested: loggers flatten them to student/<attack>/auc), DP-SGD's epsilon, and the trial id.
    extra = {"epsilon": result.epsilon} if result.epsilon is not None else {}
    tune.report({**result.values, "student": result.student, **extra, "method": method.name, "strength": strength,
                 "seconds": result.seconds, "mia_trial_id": tune_id})


def _online_shadows(plan: SweepPlan, prepared: Prepared, train):
    """``config -> its shadow students`` where the sweep's attacks read per-trial shadows, else None."""
    base, sweep = plan.config.base, plan.config.sweep
    if not (base.shadows.online and required_passes(base.attacks).shadows):
        return None
    return lambda config: train(prepared, config, sweep.shadow_resources or sweep.resources)


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


class _MethodRouter(Searcher):
    """One Tune search algorithm over every method's own OptunaSearch (one Optuna study per method).

    Suggestions go to the method whose trials are expected to take longest (the mean ``seconds`` of its
    completed trials, else of all completed trials), round-robin in config order among equals, so methods run
    side by side, Tune reuses its actors across them, and the long trials (DP-SGD's) start early instead of
    ending the sweep with one slot idle; results are routed back to the study they came from. The
    ``held`` methods get no suggestion until the baseline (the first trial of the first method) completes
    and ``give`` has added it to their studies; if it fails instead, they run without it (a failed trial
    counts in the budget, as everywhere in a sweep).
    """

    def __init__(self, searchers: dict[str, Searcher], remaining: dict[str, int], *, held: set[str] | None = None,
                 give: _GiveBaseline | None = None) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.searchers = searchers
        self.remaining = {name: n for name, n in remaining.items() if n > 0}
        self.held = set(held or ())
        self.give = give
        self.baseline_trial: str | None = None
        self.owner: dict[str, str] = {}
        self.seconds: dict[str, list[float]] = {}  # each method's completed trials' durations
        self._turn = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # each method's searcher was built with its own space, metric and mode

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self.owner:
            return self.searchers[self.owner[trial_id]].suggest(trial_id)
        order = list(self.remaining)  # the config's order (the baseline's method first), fixed
        ready = [i for i in range(len(order)) if self.remaining[order[i]] > 0 and order[i] not in self.held]
        if not ready:
            return None if self.held else Searcher.FINISHED  # None: ask again once the baseline is in
        # Longest expected trials first (the classic list-scheduling rule: the sweep ends when its last trial
        # does); among equals the next method at or after the turn, so a method that runs out does not shift
        # the others' turns.
        index = min(ready, key=lambda i: (-self._expected(order[i]), (i - self._turn) % len(order)))
        name, self._turn = order[index], index + 1
        self.remaining[name] -= 1
        self.owner[trial_id] = name
        if self.held and self.baseline_trial is None:
            self.baseline_trial = trial_id  # the first suggestion: the baseline method's neutral point
        suggestion = self.searchers[name].suggest(trial_id)
        # The Optuna trial names its Tune trial (= its rows' tune_trial_id), as the given baseline does, so
        # optuna-dashboard links a point to the store. OptunaSearch keeps the live trial in _ot_trials.
        trial = getattr(self.searchers[name], "_ot_trials", {}).get(trial_id)
        if trial is not None and isinstance(suggestion, dict):
            trial.set_user_attr("trial_id", trial_id)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)
        if not error and result and "seconds" in result:
            self.seconds.setdefault(self.owner[trial_id], []).append(float(result["seconds"]))
        if trial_id == self.baseline_trial and self.held:
            self._release(given=not error)

    def _expected(self, name: str) -> float:
        """Seconds a trial of ``name`` is expected to take: its own completed trials' mean, else all methods'
        (0 before any completes: plain round-robin)."""
        seen = self.seconds.get(name) or [s for durations in self.seconds.values() for s in durations]
        return sum(seen) / len(seen) if seen else 0.0

    def _release(self, *, given: bool) -> None:
        """Let the held methods run, given the stored baseline (unless it failed)."""
        studies = {name: self.searchers[name]._ot_study for name in self.held}  # OptunaSearch's own study
        if not (given and self.give is not None and self.give(studies)):
            log.warning("the baseline failed: %s search without it", ", ".join(sorted(self.held)))
        self.held = set()


class _Progress(Callback):
    """One line per finished trial; failed trials become ``status=failed`` rows; the overall bar moves."""

    def __init__(self, bar, *, storage: SweepStorage, plan: SweepPlan) -> None:
        self.bar, self.storage, self.plan = bar, storage, plan

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config for Tuner.restore; the terminal's progress bar stays behind.
        return {**self.__dict__, "bar": tqdm(disable=True)}

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        if PRIVACY.name in result:
            stat = self.plan.config.base.metrics.privacy_objective
            self.bar.write(
                f"{result['method']:<18} strength {result['strength']:<8.4g} {stat} calib (selection) "
                f"{result[PRIVACY.name]:.3f} eval {result[REPORTED_PRIVACY.name]:.3f}  task loss "
                f"{result[UTILITY.name]:.3f}  {result['seconds']:.0f} s"
            )
        self.storage.push_journal()
        self.bar.update()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error, method = _error_text(trial), trial.config["method"]
        base, search = self.plan.config.base, self.plan.methods[method].search
        strength = trial.config.get("strength", 0.0)
        row = failed_row(
            sweep_id=base.sweep_id, trial_id=trial.trial_id, error=error, method=method, strength=strength,
            stage=search.stage, params=search.params, seed=base.seed, optuna_trial=trial.config.get("optuna_trial"),
            tune_trial_id=trial.trial_id, config_hash=base.config_hash(),
        )
        write_trial(self.storage.out, sweep_id=base.sweep_id, method=method, trial_id=trial.trial_id,
                    tables={"trials": pa.Table.from_pylist([row], schema=TRIALS)})
        self.bar.write(f"{method:<18} strength {strength:<8.4g} FAILED: {error}")
        self.bar.update()


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    text = Path(path).read_text(errors="replace").strip() if path and os.path.exists(path) else ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "the trial failed (no error text)"
