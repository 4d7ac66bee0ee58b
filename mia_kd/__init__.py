"""mia_kd: distil language models and measure what they leak to membership-inference attacks.

The public API (:mod:`mia_kd.api`): :func:`load_config` / :func:`load_sweep` read and check a config,
:func:`run_trial` runs one trial, :func:`run_sweep` a sweep (a :class:`SweepOutcome`), :func:`load_results` reads
a sweep's results back (a :class:`SweepResults`: trials, metrics, fronts, asymmetry, ensembles),
:func:`load_ensemble` loads an exported ensemble; the ``mia-kd`` command line drives everything else. Heavy
libraries (torch, transformers, ray) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "EnsembleResult", "SweepConfig", "SweepOutcome", "SweepResults", "TrialConfig", "TrialResult", "load_config",
    "load_ensemble", "load_results", "load_sweep", "run_sweep", "run_trial",
]

if TYPE_CHECKING:
    from mia_kd.api import EnsembleResult, SweepResults, load_config, load_results, load_sweep, run_sweep, run_trial
    from mia_kd.config import SweepConfig, TrialConfig
    from mia_kd.distill.ensemble import load_ensemble
    from mia_kd.sweep.runner import SweepOutcome
    from mia_kd.trial import TrialResult


def __getattr__(name: str) -> Any:
    # Lazy, so `import mia_kd` (and the analysis side) does not pull in torch.
    if name in ("TrialConfig", "SweepConfig"):
        from mia_kd import config

        return getattr(config, name)
    if name in ("EnsembleResult", "SweepResults", "load_config", "load_results", "load_sweep", "run_trial", "run_sweep"):
        from mia_kd import api

        return getattr(api, name)
    if name == "SweepOutcome":
        from mia_kd.sweep.runner import SweepOutcome

        return SweepOutcome
    if name == "TrialResult":
        from mia_kd.trial import TrialResult

        return TrialResult
    if name == "load_ensemble":
        from mia_kd.distill.ensemble import load_ensemble

        return load_ensemble
    raise AttributeError(f"module 'mia_kd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
