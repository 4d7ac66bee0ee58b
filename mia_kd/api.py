"""The Python API: what ``mia_kd`` exports, each checked where it enters (docs/architecture.md §2).

``import mia_kd`` stays light: these load torch, transformers or ray only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mia_kd.config import SweepConfig, TrialConfig
from mia_kd.config import load_config as _load_config
from mia_kd.config import load_sweep as _load_sweep

if TYPE_CHECKING:
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
    """One trial; write its rows with ``mia_kd.store.write_trial(out, ..., tables=result.tables())``."""
    from mia_kd.trial import run_trial as _run_trial

    return _run_trial(config)


def run_sweep(config: str | Path | SweepConfig, **options) -> SweepOutcome:
    """Run or resume a sweep (see :func:`mia_kd.sweep.runner.run_sweep` for the options)."""
    from mia_kd.sweep.runner import run_sweep as _run_sweep

    return _run_sweep(config, **options)
