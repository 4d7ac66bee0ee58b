"""Trial configuration: typed, range-checked, loaded from YAML with ``--set key=value`` overrides.

Every field carries its help text (``mia-kd`` prints it in errors and the README's reference is written
from it). Validation errors become one :class:`~mia_kd.errors.ConfigError` line that names the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mia_kd.errors import ConfigError

PrivacyObjective = Literal["auc", "balanced_accuracy", "tpr_at_fpr_1pct"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    source: str | dict[str, Any] = Field(
        "python-docs",
        description="record source: a name (python-docs) or a mapping {name: files, hf or python-docs, ...options}",
    )
    membership: Literal["finetune", "pretraining"] = Field(
        "finetune",
        description="finetune: the teacher is trained (or fine-tuned) on members drawn from source, so membership "
        "is exact; pretraining: source holds the teacher's training records and nonmember_source records it "
        "never saw (e.g. MIMIR, WikiMIA), the teacher is used as is",
    )
    nonmember_source: str | dict[str, Any] | None = Field(
        None,
        description="non-members from another source: required with membership pretraining (non-members, utility "
        "and public come from it); with finetune a shifted split, refused by the blind check unless allowed",
    )
    members: int = Field(1000, ge=2, description="member records (teacher training and transfer set)")
    nonmembers: int = Field(1000, ge=2, description="non-member records (the attacks' negatives)")
    utility: int = Field(500, ge=1, description="held-out records for task loss")
    public: int = Field(2000, ge=1, description="records for the tokenizer, reference model and ReCaLL prefixes")
    calib_fraction: float = Field(
        0.5, gt=0, lt=1, description="fraction of members/non-members in the calib fold (thresholds, attack settings)"
    )
    allow_shifted_split: bool = Field(
        False, description="accept a split the blind check can separate without a model (recorded in the results)"
    )
    blind_check_bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for the blind check's CI")

    @field_validator("source", "nonmember_source")
    @classmethod
    def _known_source(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if value is not None:
            from mia_kd.data import validate_source

            validate_source(value)
        return value


class TokenizerConfig(_Strict):
    pretrained: str | None = Field(
        None, description="Hugging Face id or local folder of a tokenizer; null trains a byte-level BPE on public"
    )
    vocab_size: int = Field(2048, ge=260, le=262144, description="vocabulary size of the trained BPE")
    max_length: int | None = Field(
        128, ge=4,
        description="tokens per record (longer records are cut and counted); null keeps whole records: those longer "
        "than the model's context are scored with a sliding window (counted) and cut for training",
    )


class TrainConfig(_Strict):
    epochs: int = Field(10, ge=0, description="passes over the training records (0: no training)")
    batch_size: int = Field(32, ge=1, description="records per step (length-bucketed; dp_sgd: the expected size of its Poisson-sampled batches)")
    lr: float = Field(1e-3, gt=0, le=1, description="AdamW learning rate (linear warm-up and decay)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="fraction of steps of linear warm-up")
    grad_clip: float = Field(1.0, gt=0, description="gradient norm clipping")


class ModelConfig(_Strict):
    pretrained: str | None = Field(None, description="Hugging Face id or local folder; null builds from `config`")
    model_type: str = Field("gpt2", description="transformers model type used to build from `config`")
    config: dict[str, Any] = Field(
        default_factory=lambda: {"n_layer": 2, "n_embd": 128, "n_head": 4},
        description="architecture fields passed to transformers' AutoConfig.for_model(model_type, ...)",
    )
    trust_remote_code: bool = Field(False, description="allow code shipped with a pretrained model")


class TeacherConfig(ModelConfig):
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=30, lr=3e-3),
        description="training on the members (a pretrained teacher is fine-tuned; epochs 0 keeps it as is)",
    )


class DistillConfig(TrainConfig):
    epochs: int = Field(10, ge=1, description="passes over the transfer set")
    temperature: float = Field(2.0, gt=0, description="softening temperature T of the KD term (scaled by T²)")
    alpha: float = Field(0.5, ge=0, le=1, description="loss = (1 − alpha)·CE + alpha·KD")


class AttackSpec(_Strict):
    name: str = Field(description="attack registry name")
    params: dict[str, Any] = Field(
        default_factory=dict, description="hyper-parameters; a list is a grid searched on calib"
    )


DEFAULT_ATTACKS: tuple[Any, ...] = (
    "loss",
    "zlib",
    "lowercase",
    {"name": "min_k", "k": [0.05, 0.1, 0.2, 0.3, 0.5]},
    {"name": "min_k_pp", "k": [0.05, 0.1, 0.2, 0.3, 0.5]},
    {"name": "recall", "shots": 4},
    "reference",
)


class MetricsConfig(_Strict):
    n_bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for every 95% CI")
    privacy_objective: PrivacyObjective = Field(
        "auc", description="per attack statistic whose worst case (max) over attacks is the privacy objective"
    )


class PrivacyConfig(_Strict):
    method: str = Field("none", description="privacy-preserving distillation method (mia-kd methods lists them)")
    strength: float | None = Field(None, description="the method's strength (null: its neutral value)")
    stage: Literal["train", "serve"] = Field(
        "train", description="train: act during distillation; serve: wrap the student's logits when it is scored"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="the method's extra parameters")
    vulnerability_attack: str = Field(
        "loss", description="teacher attack whose flagged members form the vulnerable subset (one of `attacks`)"
    )
    vulnerable_tokens: Literal["all", "over_represented"] = Field(
        "all",
        description="vulnerable tokens: every token id in vulnerable records, or only those more frequent there "
        "than in the other members",
    )

    @model_validator(mode="before")
    @classmethod
    def _inline_params(cls, value: Any) -> Any:
        # `privacy: {method: dp_sgd, strength: 1, max_grad_norm: 0.5}` puts unknown keys into params.
        if isinstance(value, dict):
            known = set(cls.model_fields)
            extra = {k: v for k, v in value.items() if k not in known}
            if extra:
                value = {k: v for k, v in value.items() if k in known}
                value["params"] = {**value.get("params", {}), **extra}
        return value

    @model_validator(mode="after")
    def _known_method(self) -> PrivacyConfig:
        from mia_kd.privacy._methods import check_method, method_class

        if self.strength is None:
            object.__setattr__(self, "strength", method_class(self.method).neutral)
        check_method(self.method, self.strength, self.params, self.stage)
        return self


class RuntimeConfig(_Strict):
    device: str = Field("auto", description="torch device: auto (cuda if available), cpu, cuda, cuda:N")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: all cores)")
    cache_dir: str | None = Field(
        None, description="where trained teachers and reference models are cached (null: ~/.cache/mia_kd)"
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="training precision: auto (bf16 autocast on a CUDA GPU that supports it, else fp32), fp32, bf16; scoring is always fp32"
    )
    score_batch_size: int = Field(64, ge=1, description="records per scoring forward pass")
    progress: bool = Field(True, description="show progress bars on a terminal")


class TrialConfig(_Strict):
    sweep_id: str = Field("adhoc", pattern=r"^[A-Za-z0-9_.-]+$", description="results partition this trial belongs to")
    seed: int = Field(0, ge=0, description="seeds the split, the models' initialisation and batch order")
    student_seed: int | None = Field(
        None, ge=0, description="seeds the student (init, batch order, method noise); null: seed + 1. Sweep repeats vary it"
    )
    data: DataConfig = Field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: ModelConfig = Field(
        default_factory=lambda: ModelConfig(config={"n_layer": 1, "n_embd": 128, "n_head": 4})
    )
    reference: TrainConfig = Field(
        default_factory=TrainConfig, description="training of the reference model (student architecture) on public"
    )
    distill: DistillConfig = Field(default_factory=DistillConfig)
    attacks: tuple[AttackSpec, ...] = Field(
        default=DEFAULT_ATTACKS,
        validate_default=True,
        description="attacks run on teacher and student (names or {name, ...params})",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @field_validator("attacks", mode="before")
    @classmethod
    def _attack_specs(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        specs = []
        for item in value:
            if isinstance(item, str):
                specs.append({"name": item})
            elif isinstance(item, dict) and "params" not in item and "name" in item:
                specs.append({"name": item["name"], "params": {k: v for k, v in item.items() if k != "name"}})
            else:
                specs.append(item)
        return specs

    @model_validator(mode="after")
    def _attacks_known(self) -> TrialConfig:
        from mia_kd.attacks import check_attack_spec

        names = [spec.name for spec in self.attacks]
        if not names:
            raise ValueError("attacks: at least one attack is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"attacks: duplicate names in {names}")
        for spec in self.attacks:
            check_attack_spec(spec.name, spec.params)
        if self.privacy.vulnerability_attack not in names:
            raise ValueError(
                f"privacy.vulnerability_attack: got {self.privacy.vulnerability_attack!r}, "
                f"must be one of the configured attacks: {', '.join(names)}"
            )
        return self

    @model_validator(mode="after")
    def _low_fpr_resolvable(self) -> TrialConfig:
        if self.metrics.privacy_objective == "tpr_at_fpr_1pct":
            # Both folds must resolve a 1 % FPR: selection reads calib, reporting reads eval.
            calib = round(self.data.nonmembers * self.data.calib_fraction)
            smallest = min(calib, self.data.nonmembers - calib)
            if smallest < 100:
                raise ValueError(
                    f"metrics.privacy_objective: tpr_at_fpr_1pct needs at least 100 non-members in each of calib and "
                    f"eval to resolve a 1% FPR; data.nonmembers {self.data.nonmembers} with calib_fraction "
                    f"{self.data.calib_fraction} gives {smallest}: raise data.nonmembers or use auc"
                )
        return self

    @model_validator(mode="after")
    def _models_and_membership(self) -> TrialConfig:
        pretrained = [m.pretrained for m in (self.teacher, self.student) if m.pretrained is not None]
        if pretrained and self.tokenizer.pretrained is None:
            # A pretrained model comes with its vocabulary: a BPE trained here would not match its embeddings.
            object.__setattr__(self, "tokenizer", self.tokenizer.model_copy(update={"pretrained": pretrained[0]}))
        if self.data.membership == "pretraining":
            if self.data.nonmember_source is None:
                raise ValueError(
                    "data.nonmember_source: missing; membership pretraining needs the records the teacher never saw"
                )
            if self.teacher.pretrained is None or self.teacher.train.epochs != 0:
                raise ValueError(
                    "teacher: membership pretraining uses a pretrained teacher as is: set teacher.pretrained and "
                    "teacher.train.epochs: 0 (to train the teacher on members yourself, use membership finetune)"
                )
        return self

    def config_hash(self) -> str:
        """Hash of everything that determines the trial's results (runtime settings excluded)."""
        payload = self.model_dump(mode="json", exclude={"runtime"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """Read a YAML trial config, apply ``key.path=value`` overrides, validate.

    A ``sweep:`` section (see :mod:`mia_kd.sweep.config`) is ignored here: the rest is the base trial.
    """
    raw = read_yaml(path)
    raw.pop("sweep", None)
    for override in overrides:
        apply_override(raw, override)
    return validate_config(raw)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass the path of a YAML file such as sweeps/quickstart.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {' '.join(first[:3])}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, got {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply ``a.b.c=value`` in place; the value is parsed as YAML (``3``, ``0.5``, ``true``, ``[1, 2]``)."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected key.path=value, e.g. --set teacher.train.epochs=5")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {override!r}: the value is not a valid YAML scalar or list") from None
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {part!r} holds a value, not a mapping of keys")
        node = child
    node[parts[-1]] = value


def validate_config(raw: dict[str, Any]) -> TrialConfig:
    try:
        return TrialConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, TrialConfig)) from None


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line for the first problem (and a count of the others)."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    key = ".".join(loc) or "config"
    if first["type"] == "extra_forbidden":
        parent = ".".join(loc[:-1])
        allowed = ", ".join(_allowed_keys(model, loc[:-1]))
        where = f" under {parent!r}" if parent else ""
        message = f"unknown key {loc[-1]!r}{where}; allowed: {allowed}"
    else:
        text = first["msg"]
        if text.startswith("Value error, "):
            text = text[len("Value error, ") :]
        got = first.get("input")
        got_text = "" if isinstance(got, dict | list) else f"; got {got!r}"
        message = f"{key}: {text}{got_text}"
        # An error raised by a nested validator already names its key.
        if first["type"] == "value_error" and ": " in text:
            message = text
    more = len(errors) - 1
    return message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _allowed_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ["(see the config reference)"]
        model = annotation
    return sorted(model.model_fields)


# -------------------------------------------------------------------------------------------- reference


def config_reference(instance: BaseModel | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key, default, description)`` for every leaf field: the README's config reference is this table."""
    instance = instance if instance is not None else TrialConfig()
    rows: list[tuple[str, str, str]] = []
    for name, field in type(instance).model_fields.items():
        value = getattr(instance, name)
        if isinstance(value, BaseModel):
            rows += config_reference(value, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", _show(value), field.description or ""))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], AttackSpec):
        return "all seven, see below"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=lambda v: v.model_dump(exclude_defaults=True) if isinstance(v, BaseModel) else str(v))


def reference_markdown() -> str:
    """The config reference as a Markdown table (README.md holds a copy; a test keeps them equal)."""
    from mia_kd.sweep.config import SweepSection

    rows = config_reference() + config_reference(SweepSection(), "sweep.")
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {text.replace('|', '/')} |" for key, default, text in rows]
    return "\n".join(lines)
