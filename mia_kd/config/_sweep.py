"""The ``sweep:`` section of a config: which methods to search, how, with what resources, and where to.

A sweep file is a trial config (the base every trial starts from) plus this section; ``mia-kd trial``
ignores the section, so the same file runs one trial or the whole sweep. Method names and their strength
ranges are checked by :func:`mia_kd.validate.check_sweep` (the config imports no plug-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from mia_kd.config._trial import Strict, TrialConfig

Sampler = Literal["front", "tpe", "nsga2", "gp", "random", "grid"]


class MethodSearch(Strict):
    trials: int | None = Field(None, ge=1, description="trials for this method (null: sweep.trials_per_method)")
    strength: tuple[float, float] | None = Field(
        None, description="strength range searched [low, high] (null: the method's whole range)"
    )
    stage: Literal["train", "serve"] = Field("train", description="train-time or serve-time method")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's fixed extra parameters")


class Resources(Strict):
    cpu: float = Field(1.0, gt=0, description="CPUs per trial (torch threads = max(1, floor(cpu)))")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; fractions pack several trials on one GPU")


class PrepareResources(Strict):
    """Where ``prepare`` (split, tokenizer, teacher, reference model, teacher scores) runs: a Ray task of its own,
    so a CPU-only head node only orchestrates."""

    cpu: float | None = Field(
        None, gt=0, description="CPUs for prepare (torch threads = max(1, floor(cpu))); null: all of the largest node's"
    )
    gpu: float | None = Field(None, ge=0, description="GPUs for prepare; null: 1 when the cluster has a GPU, else 0")
    resources: dict[str, float] = Field(
        default_factory=dict, description="custom Ray resources it needs, e.g. {gpu_node: 1} to pin it to such nodes"
    )


class MlflowTracking(Strict):
    """Ray Tune's ``MLflowLoggerCallback``: one MLflow run per Tune trial (its config as params, every reported
    value as a metric)."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI: http(s)://server, sqlite:///PATH/mlflow.db (offline), or file:///PATH "
        "(MLflow 3 needs MLFLOW_ALLOW_FILE_STORE=true for that); null: MLflow's default (MLFLOW_TRACKING_URI)",
    )
    experiment_name: str | None = Field(None, description="MLflow experiment (created if missing); null: the sweep id")
    tags: dict[str, str] = Field(default_factory=dict, description="tags added to every run")


class WandbTracking(Strict):
    """Ray Tune's ``WandbLoggerCallback``: one W&B run per Tune trial. The API key comes from the environment
    (``WANDB_API_KEY`` or ``wandb login``), never from the config, which is copied into ``sweep.json``."""

    project: str | None = Field(None, description="W&B project; null: the sweep id")
    group: str | None = Field(None, description="W&B run group; null: the Tune experiment's name")
    entity: str | None = Field(None, description="W&B team or user; null: the logged-in user's default")
    mode: Literal["online", "offline", "disabled"] = Field(
        "online", description="online, offline (sync later with wandb sync) or disabled"
    )
    tags: list[str] = Field(default_factory=list, description="tags added to every run")


class Tracking(Strict):
    """Experiment trackers that follow the sweep's Tune trials as they report (the store stays the record)."""

    mlflow: MlflowTracking | None = Field(
        None, description="log trials to MLflow (pip install mlflow-skinny): {tracking_uri, experiment_name, tags}"
    )
    wandb: WandbTracking | None = Field(
        None, description="log trials to Weights & Biases (pip install wandb): {project, group, entity, mode, tags}"
    )


class SweepSection(Strict):
    methods: dict[str, MethodSearch] = Field(
        default_factory=lambda: {"none": MethodSearch()}, description="methods to search, each with its search"
    )
    trials_per_method: int = Field(4, ge=1, description="Optuna trials per method (none: 1)")
    repeats: int = Field(1, ge=1, description="student seeds per configuration; objectives are averaged")
    shared: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="knobs searched for every method, e.g. {distill.temperature: [1, 4], distill.alpha: [0.2, 0.8]}",
    )
    sampler: Sampler = Field(
        "front",
        description="Optuna sampler: front (bisects one strength's privacy-utility front where its hypervolume can "
        "still grow; TPE when sweep.shared adds knobs), tpe, nsga2, gp, random or grid",
    )
    sampler_seed: int = Field(0, ge=0, lt=2**31, description="seeds the sampler (each method's study gets seed + index)")
    resources: Resources = Field(default_factory=Resources)
    prepare_resources: PrepareResources = Field(default_factory=PrepareResources)
    shadow_resources: Resources | None = Field(
        None, description="resources of each shadow model's Ray task (lira, rmia; see shadows); null: sweep.resources"
    )
    max_concurrent: int = Field(2, ge=1, description="trials running at once")
    max_failures: int = Field(1, ge=0, description="retries of a failing trial before it is recorded as failed")
    out: str = Field("results", description="results folder or URL (s3://, gs://, ...): on a cluster, storage every node reaches (--out overrides)")
    save_students: Literal["all", "front", "none"] = Field(
        "all", description="save each trial's student (save_pretrained) in the sweep folder: all, front only, none"
    )
    tracking: Tracking = Field(
        default_factory=Tracking,
        description="experiment trackers fed by every trial's report: per-attack student AUC and TPR@1% FPR, both "
        "objectives, epsilon (dp_sgd) and the trial id",
    )

    @model_validator(mode="after")
    def _check(self) -> SweepSection:
        if not self.methods:
            raise ValueError("methods: name at least one method")
        for name, search in self.methods.items():
            if search.strength is not None and search.strength[0] > search.strength[1]:
                low, high = search.strength
                raise ValueError(f"methods.{name}.strength: got [{low:g}, {high:g}], low must be <= high")
        for key, (low, high) in self.shared.items():
            if not key.startswith("distill.") or low > high:
                raise ValueError(
                    f"shared.{key}: only distill.* knobs with low <= high can be shared, got [{low}, {high}]"
                )
        if self.sampler == "grid" and self.shared:
            raise ValueError("sampler: grid searches the strength only; remove sweep.shared or pick another")
        return self


@dataclass(frozen=True)
class SweepConfig:
    """A sweep file, typed: the base every trial starts from, and the ``sweep:`` section."""

    base: TrialConfig
    sweep: SweepSection
    path: str | None = None  # the file it was read from, if any (recorded in sweep.json)

    def trial(
        self, method: str, strength: float | None, *, shared: dict[str, float] | None = None,
        student_seed: int | None = None, runtime: dict[str, Any] | None = None,
    ) -> TrialConfig:
        """The config of one trial of ``method`` at ``strength`` (its stage and params from ``sweep.methods``)."""
        search = self.sweep.methods[method]
        return self.base.for_trial(
            method=method, strength=strength, stage=search.stage, params=search.params, shared=shared,
            student_seed=student_seed, runtime=runtime,
        )
