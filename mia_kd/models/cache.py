"""A content-addressed cache of trained models.

The key hashes everything that determines a trained model (the records it saw, the tokenizer, the
architecture, the training schedule, the seed and :data:`TRAINER_VERSION`), so a hit is the same model a
fresh run would train, and any change to those trains a new one. Entries are written to a temporary folder
and renamed, so a crashed run never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

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


def save_json(folder: Path, name: str, payload: dict[str, Any]) -> None:
    """Write ``folder/name`` atomically (next to a cached model: facts derived from it)."""
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(payload))
    tmp.replace(folder / name)


def load_json(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else None
