"""The ``sweep:`` section of a config: which methods to search, how, with what resources, and where to.

A sweep file is a trial config (the base every trial starts from) plus this section; ``mia-kd trial``
ignores the section, so the same file runs one trial or the whole sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mia_kd.config import TrialConfig, apply_override, format_validation_error, read_yaml, validate_config
from mia_kd.errors import ConfigError

Sampler = Literal["tpe", "nsga2", "gp", "random", "grid"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodSearch(_Strict):
    trials: int | None = Field(None, ge=1, description="trials for this method (null: sweep.trials_per_method)")
    strength: tuple[float, float] | None = Field(
        None, description="strength range searched [low, high] (null: the method's whole range)"
    )
    stage: Literal["train", "serve"] = Field("train", description="train-time or serve-time method")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's fixed extra parameters")


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0, description="CPUs per trial (torch threads = max(1, floor(cpu)))")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; fractions pack several trials on one GPU")


class SweepSection(_Strict):
    methods: dict[str, MethodSearch] = Field(
        default_factory=lambda: {"none": MethodSearch()}, description="methods to search, each with its search"
    )
    trials_per_method: int = Field(4, ge=1, description="Optuna trials per method (none: 1)")
    repeats: int = Field(1, ge=1, description="student seeds per configuration; objectives are averaged")
    shared: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="knobs searched for every method, e.g. {distill.temperature: [1, 4], distill.alpha: [0.2, 0.8]}",
    )
    sampler: Sampler = Field("tpe", description="Optuna sampler: tpe, nsga2, gp, random or grid")
    sampler_seed: int = Field(0, ge=0, description="seeds the sampler (each method's study gets seed + index)")
    resources: Resources = Field(default_factory=Resources)
    max_concurrent: int = Field(2, ge=1, description="trials running at once")
    max_failures: int = Field(1, ge=0, description="retries of a failing trial before it is recorded as failed")
    out: str = Field("results", description="results folder or URL (s3://, gs://, ...): on a cluster, storage every node reaches (--out overrides)")
    save_students: Literal["all", "front", "none"] = Field(
        "all", description="save each trial's student (save_pretrained) in the sweep folder: all, front only, none"
    )

    @model_validator(mode="after")
    def _check(self) -> SweepSection:
        from mia_kd.privacy import method_class

        if not self.methods:
            raise ValueError("methods: name at least one method")
        for name, search in self.methods.items():
            try:
                cls = method_class(name)
            except ConfigError as exc:
                raise ValueError(f"methods: {str(exc).split(': ', 1)[1]}") from None
            if search.strength is not None:
                low, high = search.strength
                if not cls.low <= low <= high <= cls.high:
                    raise ValueError(
                        f"methods.{name}.strength: got [{low:g}, {high:g}], must lie within "
                        f"[{cls.low:g}, {cls.high:g}] with low <= high"
                    )
        for key, (low, high) in self.shared.items():
            if not key.startswith("distill.") or low > high:
                raise ValueError(
                    f"shared.{key}: only distill.* knobs with low <= high can be shared, got [{low}, {high}]"
                )
        if self.sampler == "grid" and self.shared:
            raise ValueError("sampler: grid searches the strength only; remove sweep.shared or pick another")
        return self


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[dict[str, Any], TrialConfig, SweepSection]:
    """``(raw base config, validated base TrialConfig, SweepSection)``; ``--set`` reaches both parts."""
    raw = read_yaml(path)
    for override in overrides:
        apply_override(raw, override)
    section = raw.pop("sweep", None) or {}
    base = validate_config(raw)
    try:
        sweep = SweepSection.model_validate(section)
    except ValidationError as exc:
        raise ConfigError("sweep." + format_validation_error(exc, SweepSection)) from None
    for name, search in sweep.methods.items():
        trial_raw = trial_config(raw, name, None, search, {}, student_seed=None)
        validate_config(trial_raw)  # the method's params and stage, checked now rather than in a worker
    return raw, base, sweep


def trial_config(
    raw: dict[str, Any],
    method: str,
    strength: float | None,
    search: MethodSearch,
    shared: dict[str, float],
    *,
    student_seed: int | None,
) -> dict[str, Any]:
    """The raw trial config for one suggestion (validated by the caller)."""
    import copy

    trial = copy.deepcopy(raw)
    trial["privacy"] = {
        **trial.get("privacy", {}),
        "method": method,
        "strength": strength,
        "stage": search.stage,
        "params": dict(search.params),
    }
    for key, value in shared.items():
        apply_override(trial, f"{key}={value}")
    if student_seed is not None:
        trial["student_seed"] = student_seed
    return trial
