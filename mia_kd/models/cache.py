"""A content-addressed cache of trained models.

The key hashes everything that determines a trained model (the records it saw, the tokenizer, the
architecture, the training schedule, the seed and :data:`TRAINER_VERSION`), so a hit is the same model a
fresh run would train, and any change to those trains a new one. Entries are written to a temporary folder
and renamed, so a crashed run never leaves a half-written model behind. :func:`trained_model` is the one way
a trial gets its teacher and reference model: from the cache, or trained and cached (docs/architecture.md §2).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.config import ModelConfig, TrainConfig
from mia_kd.errors import ConfigError
from mia_kd.models.build import build_model
from mia_kd.models.step import BatchLoss
from mia_kd.models.train import fit

log = logging.getLogger(__name__)

# Bump when a change to the training code changes what a given key trains.
TRAINER_VERSION = 1


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mia_kd"


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Hash of the tokenizer's full definition (vocabulary, merges, normaliser, special tokens)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_key(**parts: Any) -> str:
    payload = json.dumps({"trainer_version": TRAINER_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class ModelCache:
    """Trained models under ``root/<kind>/<key>/`` (``save_pretrained`` folders plus ``meta.json``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # Refused before anything trains: a file here would fail only when the trained teacher is saved.
        blocking = next((p for p in (self.root, *self.root.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ConfigError(f"runtime.cache_dir: {blocking} is a file, not a folder; give a folder for the model cache")

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def load(self, kind: str, key: str) -> tuple[PreTrainedModel, dict[str, Any]] | None:
        folder = self.path(kind, key)
        meta_file = folder / "meta.json"
        if not meta_file.is_file():
            return None
        model = AutoModelForCausalLM.from_pretrained(folder)
        model.eval()
        return model, json.loads(meta_file.read_text())

    def save(self, kind: str, key: str, model: PreTrainedModel, meta: dict[str, Any]) -> Path:
        folder = self.path(kind, key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
            try:
                tmp.rename(folder)
            except OSError:
                # Another process cached the same key first; its model is the same one.
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


def trained_model(
    cache: ModelCache,
    kind: str,
    key: str,
    model_config: ModelConfig,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Sequence[int]],
    schedule: TrainConfig,
    loss_fn: BatchLoss,
    *,
    seed: int,
    device: torch.device,
    progress: bool,
    amp: torch.dtype | None,
) -> tuple[PreTrainedModel, bool]:
    """``(model, cache_hit)``: the ``kind`` model (``"teacher"``, ``"reference"``) cached under ``key``, on ``device``.

    On a miss, builds ``model_config`` (seeded by ``seed``), trains it on token id ``rows`` with ``schedule``
    and ``loss_fn`` (``mia_kd.distill.loss.lm_loss`` for both: passed in, since models sit below distill),
    caches it and returns it in eval mode. ``key`` must hash everything that determines the result
    (:func:`cache_key`); ``amp`` is the autocast dtype of :func:`mia_kd.models.train.autocast_dtype`.
    """
    cached = cache.load(kind, key)
    if cached is not None:
        log.info("%s: reusing the cached model %s (%s)", kind, key, cache.path(kind, key))
        return cached[0].to(device), True
    model = build_model(model_config, tokenizer, seed=seed, role=kind)
    report = fit(
        model, rows, schedule, loss_fn, seed=seed, pad_id=tokenizer.pad_token_id, device=device,
        desc=f"train {kind}", progress=progress, amp_dtype=amp,
    )
    cache.save(kind, key, model, {"final_loss": report.final_loss, "seconds": report.seconds, "records": len(rows)})
    log.info("%s: trained and cached as %s", kind, key)
    return model, False


def save_json(folder: Path, name: str, payload: dict[str, Any]) -> None:
    """Write ``folder/name`` atomically (next to a cached model: facts derived from it)."""
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(payload))
    tmp.replace(folder / name)


def load_json(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else None
