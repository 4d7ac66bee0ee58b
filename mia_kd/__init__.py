"""mia_kd: distil language models and measure what they leak to membership-inference attacks.

The public API is small: :func:`run_trial` runs one trial from a :class:`TrialConfig`; the ``mia-kd``
command line drives everything else. Heavy libraries (torch, transformers, ray) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TrialConfig", "TrialResult", "load_config", "load_ensemble", "run_trial"]

if TYPE_CHECKING:
    from mia_kd.config import TrialConfig, load_config
    from mia_kd.models.ensemble import load_ensemble
    from mia_kd.trial import TrialResult, run_trial


def __getattr__(name: str) -> Any:
    # Lazy, so `import mia_kd` (and the analysis side) does not pull in torch.
    if name in ("TrialConfig", "load_config"):
        from mia_kd import config

        return getattr(config, name)
    if name in ("TrialResult", "run_trial"):
        from mia_kd import trial

        return getattr(trial, name)
    if name == "load_ensemble":
        from mia_kd.models.ensemble import load_ensemble

        return load_ensemble
    raise AttributeError(f"module 'mia_kd' has no attribute {name!r}")
