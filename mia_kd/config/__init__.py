"""Configuration: one typed config, validated once where it enters and passed down (docs/architecture.md §2).

Structure and ranges are checked here; plug-in names and options by :func:`mia_kd.validate.check_config`.
Importing this package imports neither torch nor ray, nor any plug-in package.
"""

from mia_kd.config._load import (
    apply_override,
    format_validation_error,
    load_config,
    load_sweep,
    read_yaml,
    validate_config,
    validation_problems,
)
from mia_kd.config._sweep import (
    MethodSearch,
    MlflowTracking,
    PrepareResources,
    Resources,
    Sampler,
    SweepConfig,
    SweepSection,
    Tracking,
    WandbTracking,
)
from mia_kd.config._trial import (
    DEFAULT_ATTACKS,
    AttackSpec,
    DataConfig,
    DistillConfig,
    MetricsConfig,
    ModelConfig,
    PrivacyConfig,
    PrivacyObjective,
    RuntimeConfig,
    ShadowsConfig,
    Strict,
    TeacherConfig,
    TokenizerConfig,
    TrainConfig,
    TrialConfig,
)

__all__ = [
    "DEFAULT_ATTACKS", "AttackSpec", "DataConfig", "DistillConfig", "MethodSearch", "MetricsConfig", "ModelConfig",
    "MlflowTracking", "PrepareResources", "PrivacyConfig", "PrivacyObjective", "Resources", "RuntimeConfig", "Sampler", "ShadowsConfig",
    "Strict", "SweepConfig", "SweepSection", "TeacherConfig", "TokenizerConfig", "Tracking", "TrainConfig", "TrialConfig", "WandbTracking",
    "apply_override", "format_validation_error", "load_config", "load_sweep", "read_yaml", "validate_config",
    "validation_problems",
]
