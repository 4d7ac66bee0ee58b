"""The Python API: what ``mia_kd`` exports, each checked where it enters (docs/architecture.md §2).

``import mia_kd`` stays light: these load torch, transformers or ray only when called. :func:`load_results`
and :class:`SweepResults` are the analysis commands (``mia-kd frontier | asymmetry | ensemble``) as values:
the same computations, returned as DataFrames and dataclasses, nothing written unless asked.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mia_kd.config import SweepConfig, TrialConfig
from mia_kd.config import load_config as _load_config
from mia_kd.config import load_sweep as _load_sweep
from mia_kd.errors import UserError
from mia_kd.objectives import REPORTED_PRIVACY, UTILITY

if TYPE_CHECKING:
    import pandas as pd

    from mia_kd.analysis.asymmetry import Asymmetry
    from mia_kd.analysis.frontier import Frontier
    from mia_kd.analysis.results import Results
    from mia_kd.sweep.runner import SweepOutcome
    from mia_kd.trial import TrialResult


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """A trial config from YAML with ``key.path=value`` overrides, checked against the plug-ins."""
    from mia_kd.validate import check_config

    return check_config(_load_config(path, overrides))


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """A sweep file (base trial config and ``sweep:`` section), checked against the plug-ins."""
    from mia_kd.validate import check_sweep

    return check_sweep(_load_sweep(path, overrides))


def run_trial(config: TrialConfig) -> TrialResult:
    """One trial; write its rows with ``mia_kd.store.write_trial(out, ..., tables=result.tables())``. Shadow
    models (for ``lira``, ``rmia``) train as tasks on an embedded local Ray, as in a sweep."""
    from mia_kd.attacks import required_passes

    if required_passes(config.attacks).shadows:
        from mia_kd.sweep import shadow_tasks, tune

        tune.start(address=None, verbose=False)  # an embedded local Ray
        return shadow_tasks.run_trial(config)
    from mia_kd.trial import run_trial as _run_trial

    return _run_trial(config)


def run_sweep(
    config: str | Path | SweepConfig,
    *,
    out: str | Path | None = None,
    address: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    callbacks: list | tuple = (),
    verbose: bool = False,
    allow_local_out: bool = False,
) -> SweepOutcome:
    """Run or resume the sweep ``config`` (a file with ``overrides``, or a :class:`SweepConfig`) into ``out``
    (default ``sweep.out``), on the Ray cluster at ``address`` (default: an embedded local Ray).

    ``callbacks`` are Ray Tune callbacks added to the sweep's Tune experiment (its first trial is the shared
    baseline); ``sweep.tracking`` adds MLflow or W&B loggers the same way. The outcome holds the store's
    location (``out``), the trial counts and Tune's ``result_grids``; read the trials back with
    :func:`load_results`.
    """
    from mia_kd.sweep.runner import run_sweep as _run_sweep

    if isinstance(config, SweepConfig) and overrides:
        raise UserError("run_sweep: overrides apply to a config file; change a SweepConfig with model_copy instead")
    return _run_sweep(config, out=None if out is None else str(out), address=address, overrides=overrides,
                      verbose=verbose, allow_local_out=allow_local_out, callbacks=callbacks)


def load_results(root: str | Path, sweep_id: str | None = None) -> SweepResults:
    """The completed trials of the sweep under ``root`` (the only one there, or ``sweep_id``), to analyse."""
    from mia_kd.analysis.results import load_results as _load_results

    return SweepResults(_load_results(str(root), sweep_id))


@dataclass(frozen=True)
class EnsembleResult:
    """The mixture ``mia-kd ensemble`` would choose, with everything it reports (docs/architecture.md §5)."""

    members: list[str]  # trial ids, in the order chosen
    weights: list[float]  # mixture weights, same order, sum 1
    row: dict[str, Any]  # the ``ensembles`` table row (objectives with CIs, constraint, best single student)
    attacks: pd.DataFrame  # one row per attack: the mixture's eval-fold metrics
    vote: pd.DataFrame  # one row per attack: the study's majority vote, eval-fold TPR, TNR, balanced accuracy
    steps: pd.DataFrame  # greedy selection: the candidate added, calib objective and task loss after each step
    excluded: dict[str, str]  # trial id -> why it could not be a candidate

    @property
    def privacy(self) -> float:
        """The mixture's reported privacy: the eval value of the attack chosen on calib (CI in ``row``)."""
        return float(self.row[REPORTED_PRIVACY.column])

    @property
    def utility(self) -> float:
        """The mixture's task loss on the utility records' report half, nats/token (CI in ``row``)."""
        return float(self.row[UTILITY.column])


@dataclass(frozen=True)
class SweepResults:
    """One sweep's results as DataFrames; :meth:`frontier`, :meth:`asymmetry` and :meth:`ensemble` compute what
    the commands of the same name print, without writing files unless asked."""

    results: Results  # the analysis' own view (mia_kd.analysis.results.Results)

    @property
    def root(self) -> str:
        return self.results.root

    @property
    def sweep_id(self) -> str:
        return self.results.sweep_id

    @property
    def trials(self) -> pd.DataFrame:
        """One row per completed trial (the ``trials`` table's columns)."""
        return self.results.completed

    @property
    def n_failed(self) -> int:
        return self.results.n_failed

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per completed trial, model role (teacher | student) and attack (the ``metrics`` table)."""
        return self.results.metrics

    def frontier(
        self, *, margin: float | None = None, reference: tuple[float, float] | None = None, record: bool = False,
    ) -> Frontier:
        """Pareto fronts, hypervolumes and knees (``.points`` and ``.fronts`` DataFrames), as ``mia-kd frontier``.

        The hypervolume reference point recorded in ``frontier.json`` is reused; where none is, one is set from
        ``reference`` or ``margin`` and recorded only with ``record=True`` (the command always records it, so
        later analyses of the sweep compare).
        """
        from mia_kd.analysis import frontier as fr

        if record:
            return fr.compute_frontier(self.results, fr.reference_point(self.results, margin=margin, given=reference))
        with tempfile.TemporaryDirectory(prefix="mia_kd_frontier_") as scratch:
            # A point the results folder records is reused; a new one is recorded in scratch, then dropped.
            ref = fr.reference_point(self.results, margin=margin, given=reference, out=Path(scratch))
        return fr.compute_frontier(self.results, ref)

    def asymmetry(self, attack: str | None = None) -> Asymmetry:
        """Teacher vs student TPR/TNR per trial and the per-record agreement (``.rates``, ``.agreement``) for
        ``attack`` (default ``loss``), as ``mia-kd asymmetry``."""
        from mia_kd.analysis import asymmetry as asym

        return asym.compute_asymmetry(self.results, [asym.check_attack(self.results, attack)])

    def ensemble(
        self, *, max_task_loss: float | None = None, max_utility_drop: float | None = None, max_size: int | None = None,
        with_replacement: bool = True, candidates: list[str] | None = None, save: bool = False,
    ) -> EnsembleResult:
        """The ensemble ``mia-kd ensemble`` chooses (greedy on calib, reported on eval) among ``candidates``
        (default: every completed trial); ``save=True`` also appends its row to the ``ensembles`` table."""
        import pandas as pd
        import pyarrow as pa

        from mia_kd.analysis import ensemble as ens
        from mia_kd.store import ENSEMBLES, write_trial

        chosen = ens.choose(self.results, candidates, max_task_loss=max_task_loss, max_utility_drop=max_utility_drop,
                            max_size=ens.DEFAULT_MAX_SIZE if max_size is None else max_size,
                            with_replacement=with_replacement)
        row, choice = chosen.row, chosen.choice
        if save:
            write_trial(self.root, sweep_id=self.sweep_id, method="ensemble", trial_id=row["ensemble_id"],
                        tables={"ensembles": pa.Table.from_pylist([row], schema=ENSEMBLES)})
        return EnsembleResult(
            members=list(choice.members), weights=list(choice.weights), row=row,
            attacks=pd.DataFrame(list(chosen.evaluation["attack_metrics"].values())),
            vote=pd.DataFrame([{"attack": a, **v} for a, v in chosen.vote.items()]), steps=pd.DataFrame(choice.steps),
            excluded=dict(chosen.pool.excluded),
        )
