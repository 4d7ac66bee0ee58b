"""Reloading a saved student as the model that was attacked: architecture changes and serve transforms included.

A sweep saves each student as ``students/<trial_id>/`` (:func:`save_student`): the
``save_pretrained`` safetensors weights, the tokenizer, and ``mia_kd.json`` (method, strength, stage, params,
the trial's config). ``AutoModelForCausalLM.from_pretrained`` alone does not give that model back:

- ``architecture`` methods change the student's modules before it is trained. Plain loading drops
  ``bottleneck``'s ``….down``/``….up`` weights and re-initialises the projection they replaced, and it loads
  ``nonorm``'s γ, β into real LayerNorms (the parameter names are the same), which normalise again: a
  different model, without a warning.
- ``serve``-stage methods transform the student's logits every time it is scored; the transform is part of
  the model whose leakage was measured (docs/architecture.md §6).

So the model is built from ``config.json``, the method's ``modify_student`` is applied again, and the
weights are loaded with every key and shape checked. The serve transform is returned beside the model.
An exported such student (``mia-kd export``) has mia_kd's remote-code wrapper as its ``config.json``
(:mod:`mia_kd.distill.remote_code`), its own config nested inside; it is read from there.
It lives in ``distill`` (above ``privacy``) because rebuilding a student means rebuilding its method.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from mia_kd.config import TrialConfig, format_validation_error
from mia_kd.distill.remote_code import wrapped_student_config
from mia_kd.errors import UserError
from mia_kd.models.hub import load_pretrained
from mia_kd.models.scoring import LogitsTransform
from mia_kd.privacy import (
    MethodContext,
    PrivacyMethod,
    Vulnerability,
    build_method,
    method_class,
    vulnerability_from_json,
    vulnerability_to_json,
)

log = logging.getLogger(__name__)

META = "mia_kd.json"
VULNERABILITY = "vulnerability.json"  # optional: the teacher's vulnerability (to_json format) for serve methods


@dataclass(frozen=True)
class StudentMeta:
    """How a saved student was made: its folder's ``mia_kd.json``, the trial's config typed again."""

    method: str
    strength: float
    stage: str  # "train" or "serve": where the method acted
    privacy_params: dict[str, Any]
    config: TrialConfig

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, path: Path) -> StudentMeta:
        """The parsed ``mia_kd.json`` at ``path`` (named in errors)."""
        missing = [key for key in ("method", "strength", "config") if key not in data]
        if missing:
            raise UserError(f"{path}: no {', '.join(map(repr, missing))}; restore it from the sweep's students/ folder")
        try:
            config = TrialConfig.from_stored(data["config"])
        except ValidationError as exc:
            reason = format_validation_error(exc, TrialConfig, prefix="config")
            raise UserError(f"{path}: the saved trial config does not load ({reason}); was it edited?") from None
        return cls(
            method=data["method"],
            strength=float(data["strength"]),
            stage=data.get("privacy_stage", "train"),  # students saved before stages existed acted at train
            privacy_params=dict(data.get("privacy_params", {})),
            config=config,
        )

    @property
    def acts_when_loaded(self) -> bool:
        """Whether the method acts on the saved model: it changed the modules (an architecture method at
        train stage) or transforms the logits when served. Plain ``from_pretrained`` loads such a student
        as another model than the one measured; a neutral strength changes nothing."""
        cls = method_class(self.method)
        acts = (self.stage == "train" and cls.hook == "architecture") or self.stage == "serve"
        return acts and self.strength != cls.neutral


def _student_config(folder: Path, trust: bool) -> PretrainedConfig:
    """The student's own config: ``config.json``, or the one nested in an export's mia_kd wrapper."""
    nested = wrapped_student_config(folder)
    if nested is None:
        return load_pretrained(AutoConfig.from_pretrained, str(folder), what="student config", trust_remote_code=trust)
    if nested.get("model_type") not in CONFIG_MAPPING:
        raise UserError(
            f"student {str(folder)!r}: model_type {nested.get('model_type')!r} in its config.json's student_config "
            "is not one this transformers knows; upgrade transformers"
        )
    return CONFIG_MAPPING[nested["model_type"]].from_dict(nested)


def save_student(students_root: str | Path, result: Any) -> Path:
    """Write ``students_root/<trial_id>/`` and return it: the files :func:`load_student` reads.

    ``result`` is a :class:`~mia_kd.trial.TrialResult` (its ``student``, ``tokenizer`` and ``trial`` row):
    ``save_pretrained`` safetensors weights, the tokenizer, and ``mia_kd.json`` (how the student was made).
    Written under a temporary name, then renamed; a folder of the same trial (a retried trial) is replaced.
    """
    row = result.trial
    final = Path(students_root) / row["trial_id"]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    result.student.save_pretrained(tmp, safe_serialization=True)
    result.tokenizer.save_pretrained(tmp)
    vulnerability = getattr(result, "vulnerability", None)
    if vulnerability is not None:  # serve-stage temperature / red_list read it when the student is reloaded
        (tmp / VULNERABILITY).write_text(json.dumps(vulnerability_to_json(vulnerability)))
    (tmp / META).write_text(json.dumps({
        "trial_id": row["trial_id"], "sweep_id": row["sweep_id"], "method": row["method"],
        "strength": row["strength"], "privacy_stage": row["privacy_stage"],
        "privacy_params": json.loads(row["privacy_params"]), "config": json.loads(row["params"]),
    }, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def read_meta(folder: str | Path) -> StudentMeta | None:
    """The folder's ``mia_kd.json`` (how the student was made), or None for a plain Hugging Face folder."""
    path = Path(folder) / META
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); restore it from the sweep's students/ folder") from None
    return StudentMeta.from_json(data, path=path)


def load_student(
    folder: str | Path, *, vulnerability: Vulnerability | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, LogitsTransform | None]:
    """``(model, tokenizer, serve_transform)`` of a saved student, the model in eval mode, float32, on the CPU.

    ``serve_transform`` is the privacy method's ``serve_logits`` when the student was scored at serve
    stage (apply it to the model's logits, as ``mia_kd.models.scoring.score(transform=...)`` does), else None.
    ``vulnerability`` is needed only by serve-stage methods that read the vulnerable tokens (``temperature``,
    ``red_list``) and only when the folder holds no ``vulnerability.json``: the sweep caches it next to the
    teacher, not with the student. A folder without ``mia_kd.json`` is loaded as a plain Hugging Face model.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"student folder {str(folder)!r} does not exist")
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, str(folder), what="student tokenizer")
    meta = read_meta(folder)
    if meta is None:
        model = load_pretrained(
            AutoModelForCausalLM.from_pretrained, str(folder), what="student model", dtype=torch.float32
        )
        return model.eval(), tokenizer, None

    method = _method(folder, meta, len(tokenizer), vulnerability)
    trust = meta.config.student.trust_remote_code
    config = _student_config(folder, trust)
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust)
    serve = meta.stage == "serve"
    if method is not None and not serve:
        # The modules only; their fresh initial values are overwritten by the saved weights below.
        model = method.modify_student(model)
    _load_weights_strictly(model, folder, meta)
    return model.eval(), tokenizer, method.serve_logits if method is not None and serve else None


def _method(
    folder: Path, meta: StudentMeta, vocab_size: int, vulnerability: Vulnerability | None
) -> PrivacyMethod | None:
    """The student's privacy method when it acts on the saved model (architecture) or its logits (serve)."""
    if not meta.acts_when_loaded:
        return None
    if method_class(meta.method).needs_vulnerability and vulnerability is None:
        vulnerability = _saved_vulnerability(folder, meta.method)
    # The seed of run_student: output_noise draws the same noise stream from it as in the trial.
    context = MethodContext(
        vulnerability=vulnerability, vocab_size=vocab_size, seed=meta.config.effective_student_seed
    )
    return build_method(meta.method, meta.strength, meta.privacy_params, context)


def _saved_vulnerability(folder: Path, method: str) -> Vulnerability:
    path = folder / VULNERABILITY
    if path.is_file():
        return vulnerability_from_json(json.loads(path.read_text()))
    raise UserError(
        f"student {str(folder)!r}: method {method!r} reads the teacher's vulnerable tokens, but the folder has no "
        f"{VULNERABILITY} (students saved by mia-kd 0.1 lack it); copy the teacher cache's vulnerability-*.json "
        f"for this sweep into the folder as {VULNERABILITY}, or pass load_student(..., vulnerability=...)"
    )


def _load_weights_strictly(model: torch.nn.Module, folder: Path, meta: StudentMeta) -> None:
    """Copy the folder's safetensors weights into ``model``; any missing, extra or reshaped key is an error.

    A key absent from the file is fine only when it is tied to one that is present (the output layer of a
    model with tied embeddings: ``save_pretrained`` stores the shared tensor once).
    """
    state = _read_safetensors(folder)
    expected = model.state_dict()
    stored_at = {t.data_ptr() for k, t in expected.items() if k in state}
    missing = [k for k, t in expected.items() if k not in state and t.data_ptr() not in stored_at]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or reshaped:
        parts = [
            f"{what} {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("reshaped", reshaped))
            if keys
        ]
        raise UserError(
            f"student {str(folder)!r}: the saved weights do not fit the {meta.method} "
            f"(strength {meta.strength:g}) model rebuilt from config.json ({'; '.join(parts)}); "
            "was the folder edited, or saved by another mia_kd version?"
        )
    model.load_state_dict(state, strict=False)  # strictness checked above, tied keys allowed


def _read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    single = folder / "model.safetensors"
    if single.is_file():
        return load_file(single)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(folder / shard).items()}
    raise UserError(f"student {str(folder)!r}: no model.safetensors (or its index) to load weights from")
