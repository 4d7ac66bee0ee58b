"""The trial configuration: typed, range-checked values with their help text (docs/architecture.md §2).

Every field carries its help text (``mia-kd`` prints it in errors and the README's reference is written
from it). This module checks structure and ranges only: names of attacks, methods and sources, and each
plug-in's own options, are checked by :func:`mia_kd.validate.check_config` (the config imports no plug-in).
A config is validated once, where it enters (CLI or API), and travels as itself: a sweep derives each
trial's config with :meth:`TrialConfig.for_trial`, and a stored row comes back with :meth:`TrialConfig.from_stored`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mia_kd.config._shadows import ShadowsConfig
from mia_kd.config._strict import Strict

PrivacyObjective = Literal["auc", "balanced_accuracy", "tpr_at_fpr_1pct"]

# The trial's seed reaches scikit-learn (the blind check's random_state: below 2**32); the student's seed
# is packed into 8 signed bytes by output_noise's per-record seeds (below 2**63). numpy and torch take both.
SEED_LIMITS = {"seed": (32, "scikit-learn's random_state"), "student_seed": (63, "the per-record noise seeds")}
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class DataConfig(Strict):
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
    transfer: int = Field(
        0, ge=0,
        description="records of a transfer pool disjoint from every other part, drawn after them from the same "
        "source (distill.transfer disjoint distils on it); 0: none",
    )
    calib_fraction: float = Field(
        0.5, gt=0, lt=1, description="fraction of members/non-members in the calib fold (thresholds, attack settings)"
    )
    allow_shifted_split: bool = Field(
        False, description="accept a split the blind check can separate without a model (recorded in the results)"
    )
    blind_check_bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for the blind check's CI")



class TokenizerConfig(Strict):
    pretrained: str | None = Field(
        None, description="Hugging Face id or local folder of a tokenizer; null trains a byte-level BPE on public"
    )
    vocab_size: int = Field(2048, ge=260, le=262144, description="vocabulary size of the trained BPE")
    max_length: int | None = Field(
        128, ge=4,
        description="tokens per record (longer records are cut and counted); null keeps whole records: those longer "
        "than the model's context are scored with a sliding window (counted) and cut for training",
    )


class TrainConfig(Strict):
    epochs: int = Field(10, ge=0, description="passes over the training records (0: no training)")
    batch_size: int = Field(32, ge=1, description="records per step (length-bucketed; dp_sgd: the expected size of its Poisson-sampled batches)")
    lr: float = Field(1e-3, gt=0, le=1, description="AdamW learning rate (linear warm-up and decay)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="fraction of steps of linear warm-up")
    grad_clip: float = Field(1.0, gt=0, description="gradient norm clipping")


class ModelConfig(Strict):
    pretrained: str | None = Field(None, description="Hugging Face id or local folder; null builds from `config`")
    model_type: str = Field("gpt2", description="transformers model type used to build from `config`")
    config: dict[str, Any] = Field(
        default_factory=lambda: {"n_layer": 2, "n_embd": 128, "n_head": 4},
        description="architecture fields passed to transformers' AutoConfig.for_model(model_type, ...)",
    )
    trust_remote_code: bool = Field(False, description="allow code shipped with a pretrained model")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        # Attention splits the width into equal heads; transformers refuses otherwise only once it builds
        # the model, with a traceback. GPT-2 style and Llama style names (the others are checked then).
        if self.pretrained is None:
            for width, heads in (("n_embd", "n_head"), ("hidden_size", "num_attention_heads")):
                n_width, n_heads = self.config.get(width), self.config.get(heads)
                if isinstance(n_width, int) and isinstance(n_heads, int) and n_heads > 0 and n_width % n_heads:
                    raise ValueError(
                        f"config.{width}: {n_width} is not divisible by {heads} {n_heads}; make it a multiple of "
                        f"{heads} (e.g. {n_heads * max(1, n_width // n_heads)} or {n_heads * (n_width // n_heads + 1)})"
                    )
        return self


class TeacherConfig(ModelConfig):
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=30, lr=3e-3),
        description="training on the members (a pretrained teacher is fine-tuned; epochs 0 keeps it as is)",
    )


class DistillConfig(TrainConfig):
    epochs: int = Field(10, ge=1, description="passes over the transfer set")
    temperature: float = Field(2.0, gt=0, description="softening temperature T of the KD term (scaled by T²)")
    alpha: float = Field(0.5, ge=0, le=1, description="loss = (1 − alpha)·CE + alpha·KD")
    teacher_logits: Literal["cache", "recompute", "auto"] = Field(
        "auto",
        description="the teacher's logits on the transfer set: cache (computed once when the trials are prepared and "
        "reused by every trial and epoch; full vocabulary in float32, a forward pass's values up to float rounding), "
        "recompute (a teacher forward pass per batch), auto (cache when they fit teacher_logits_max_mb)",
    )
    teacher_logits_max_mb: float = Field(
        2048, gt=0, description="memory budget (MiB) for auto: the transfer set's tokens × vocabulary × 4 bytes"
    )
    transfer: Literal["members", "disjoint"] = Field(
        "members",
        description="the transfer set: members (the teacher's training records) or disjoint (data.transfer records "
        "no model was trained on and no attack scores); the attacks still ask about the teacher's members",
    )


class AttackSpec(Strict):
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


class MetricsConfig(Strict):
    n_bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for every 95% CI")
    privacy_objective: PrivacyObjective = Field(
        "auc", description="per attack statistic whose worst case (max) over attacks is the privacy objective"
    )


class PrivacyConfig(Strict):
    method: str = Field("none", description="privacy-preserving distillation method (mia-kd methods lists them)")
    strength: float | None = Field(
        None, description="the method's strength (null: its neutral value, filled in when the config is checked)"
    )
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



class RuntimeConfig(Strict):
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

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        # The trial hands it to torch.device, which accepts many more names (and fails late on most).
        if not _DEVICE.fullmatch(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N (N a GPU index) or mps")
        return value


# Keys added after results were stored, with their defaults: a config hash leaves a key out while it holds its
# default, so a config that does not use it hashes as it did before the key existed.
LATER_KEYS: dict[tuple[str, str], Any] = {("data", "transfer"): 0, ("distill", "transfer"): "members"}
LATER_SECTIONS: dict[str, dict[str, Any]] = {"shadows": ShadowsConfig().model_dump(mode="json")}


def _hash(payload: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of ``payload`` (a config dump) without the :data:`LATER_KEYS` at their defaults."""
    payload = {key: dict(value) if isinstance(value, dict) else value for key, value in payload.items()}
    for (section, key), default in LATER_KEYS.items():
        if section in payload and payload[section].get(key, default) == default:
            payload[section].pop(key, None)
    for section, default in LATER_SECTIONS.items():
        if payload.get(section, default) == default:
            payload.pop(section, None)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class TrialConfig(Strict):
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
    shadows: ShadowsConfig = Field(default_factory=ShadowsConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @field_validator("seed", "student_seed")
    @classmethod
    def _seed_fits(cls, value: int | None, info: ValidationInfo) -> int | None:
        bits, user = SEED_LIMITS[info.field_name]
        if value is not None and value >= 2**bits:
            raise ValueError(f"must be below 2**{bits} = {2**bits}, the most {user} takes")
        return value

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
    def _attacks_named_once(self) -> TrialConfig:
        names = [spec.name for spec in self.attacks]
        if not names:
            raise ValueError("attacks: at least one attack is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"attacks: duplicate names in {names}")
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

    @model_validator(mode="after")
    def _transfer_pool(self) -> TrialConfig:
        if self.distill.transfer == "disjoint" and self.data.transfer == 0:
            raise ValueError(
                "distill.transfer: disjoint needs a transfer pool; set data.transfer to its size (e.g. "
                f"data.transfer: {self.data.members}) or use distill.transfer: members"
            )
        if self.data.transfer and self.data.membership == "pretraining":
            # The member source is the teacher's training data: a pool from it would be unattacked members,
            # and one from nonmember_source would not be drawn like the members.
            raise ValueError(
                "data.transfer: membership pretraining has no source for a transfer pool disjoint from the "
                "teacher's training data; set data.transfer: 0 (and distill.transfer: members) or use membership finetune"
            )
        return self

    def config_hash(self) -> str:
        """Hash of everything that determines the trial's results (runtime settings excluded, and where the
        teacher's logits come from: cached or recomputed, they are the same up to float rounding). Keys added
        later count only where they differ from their default, so stored hashes stay valid (:data:`LATER_KEYS`)."""
        payload = self.model_dump(mode="json", exclude={"runtime": True, "distill": {"teacher_logits", "teacher_logits_max_mb"}})
        return _hash(payload)

    def prepare_key(self) -> str:
        """Hash of what a trial's preparation depends on (split, tokenizer, teacher, reference model, attacks):
        everything but ``runtime``, ``privacy``, ``distill``, ``student_seed`` and ``sweep_id``."""
        payload = self.model_dump(mode="json", exclude={"runtime", "privacy", "distill", "student_seed", "sweep_id"})
        return _hash(payload)

    @property
    def effective_student_seed(self) -> int:
        """The seed of the student (init, batch order, method noise): ``student_seed``, else ``seed + 1``."""
        return self.student_seed if self.student_seed is not None else self.seed + 1

    @classmethod
    def from_stored(cls, value: str | Mapping[str, Any]) -> TrialConfig:
        """The config a stored trial ran with: the ``params`` JSON of its ``trials`` row, or the ``config``
        mapping of a saved student's ``mia_kd.json``."""
        return cls.model_validate_json(value) if isinstance(value, str) else cls.model_validate(dict(value))

    def for_trial(
        self,
        *,
        method: str,
        strength: float | None,
        stage: str = "train",
        params: Mapping[str, Any] | None = None,
        shared: Mapping[str, float] | None = None,
        student_seed: int | None = None,
        runtime: Mapping[str, Any] | None = None,
    ) -> TrialConfig:
        """This config (a sweep's base) with one method at one strength: the config of one sweep trial.

        ``shared`` sets searched knobs by dotted key (``{"distill.temperature": 2.5}``); ``runtime`` updates
        runtime settings. The result is validated again, so every range still holds.
        """
        data = self.model_dump()
        data["privacy"] = {
            **data["privacy"], "method": method, "strength": strength, "stage": stage, "params": dict(params or {}),
        }
        for key, value in (shared or {}).items():
            *parents, leaf = key.split(".")
            node = data
            for part in parents:
                node = node[part]
            node[leaf] = value
        if student_seed is not None:
            data["student_seed"] = student_seed
        data["runtime"] = {**data["runtime"], **(runtime or {})}
        return type(self).model_validate(data)
