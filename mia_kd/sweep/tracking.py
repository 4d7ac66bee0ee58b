"""Experiment trackers for a sweep: Ray Tune's own logger callbacks (MLflow, W&B) for ``sweep.tracking``,
fed by each trial's ``tune.report``; the Parquet store stays the record (docs/architecture.md §2). With
:mod:`mia_kd.sweep.tune` and :mod:`mia_kd.sweep.shadow_tasks`, the only code that imports Ray.
"""

from __future__ import annotations

from ray.tune import Callback

from mia_kd.config import Tracking
from mia_kd.errors import UserError


def tracking_callbacks(tracking: Tracking, sweep_id: str) -> list[Callback]:
    """Ray Tune's own logger callbacks for ``sweep.tracking`` (fresh ones per experiment: they hold runs)."""
    callbacks: list[Callback] = []
    if tracking.mlflow is not None:
        try:
            import mlflow  # noqa: F401  (Ray's callback imports it only once Tune sets it up)
            from ray.air.integrations.mlflow import MLflowLoggerCallback
        except ImportError:
            raise UserError("sweep.tracking.mlflow needs MLflow: pip install mlflow-skinny") from None
        given = tracking.mlflow
        _check_mlflow(given.tracking_uri)
        callbacks.append(MLflowLoggerCallback(
            tracking_uri=given.tracking_uri, experiment_name=given.experiment_name or sweep_id, tags=dict(given.tags),
        ))
    if tracking.wandb is not None:
        try:
            import wandb  # noqa: F401
            from ray.air.integrations.wandb import WandbLoggerCallback
        except ImportError:
            raise UserError("sweep.tracking.wandb needs Weights & Biases: pip install wandb") from None
        given = tracking.wandb
        extra = {k: v for k, v in (("entity", given.entity), ("tags", list(given.tags))) if v}
        callbacks.append(WandbLoggerCallback(project=given.project or sweep_id, group=given.group, mode=given.mode,
                                             **extra))
    return callbacks


def _check_mlflow(uri: str | None) -> None:
    """Open the tracking store now, so a store MLflow refuses is one line before any trial runs, not a Tune
    traceback after the first (MLflow 3 refuses ``file:`` stores unless MLFLOW_ALLOW_FILE_STORE=true)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as exc:
        first = str(exc).strip().split(". ")[0]
        raise UserError(
            f"sweep.tracking.mlflow.tracking_uri {uri!r}: {first}. Give sqlite:///PATH/mlflow.db or an http(s):// "
            "server (or set MLFLOW_ALLOW_FILE_STORE=true for a file: store)"
        ) from None
