"""Checks on pretrained models before any weights load: causal LMs only, remote code only when allowed,
one vocabulary shared by the tokenizer, the teacher and the student (distillation compares their
distributions token by token).

Masked LMs (BERT, DistilBERT, TinyBERT: the study's first pairs) are refused: every attack here reads a
causal model's next-token log-probabilities, and a masked LM has none (its pseudo-log-likelihood needs one
forward pass per token and different attacks). Decided and documented in the README.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mia_kd.errors import ConfigError
from mia_kd.models.hub import load_pretrained


def is_local(name: str) -> bool:
    return Path(name).expanduser().exists()


def model_config(name: str, *, what: str, trust_remote_code: bool) -> Any:
    """The model's ``config.json`` as a transformers config (no weights), checked to be a causal LM."""
    from transformers import AutoConfig

    try:
        config = load_pretrained(AutoConfig.from_pretrained, name, what=what, trust_remote_code=trust_remote_code)
    except ConfigError as exc:
        if "trust_remote_code" in str(exc) or "custom code" in str(exc):
            raise ConfigError(
                f"{what} {name!r} ships its own model code; set {what.split()[0]}.trust_remote_code: true if you "
                "trust it (it runs on every node)"
            ) from None
        raise
    remote = "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    check_causal(config.model_type, what=what, name=name, has_auto_map=remote,
                 is_decoder=bool(getattr(config, "is_decoder", False)))
    return config


def check_causal(
    model_type: str, *, what: str, name: str | None = None, has_auto_map: bool = False, is_decoder: bool = False
) -> None:
    """Refuse masked LMs (an encoder type not configured as a decoder) and types without a causal-LM class."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    masked = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not is_decoder
    if not masked and (model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or has_auto_map):
        return
    source = f" {name!r}" if name else ""
    kind = "a masked language model" if masked else "not a causal language model"
    raise ConfigError(
        f"{what}{source}: model type {model_type!r} is {kind}; mia_kd distils and attacks causal LMs "
        "(GPT-2, Pythia/GPT-NeoX, Llama, Qwen, Mistral, ...), masked LMs such as BERT are not supported"
    )


def pretrained_roles(config: Any) -> dict[str, tuple[str, bool]]:
    """``role -> (name, trust_remote_code)`` of the trial config's pretrained teacher and student."""
    return {
        role: (model.pretrained, model.trust_remote_code)
        for role, model in (("teacher", config.teacher), ("student", config.student))
        if model.pretrained is not None
    }


def check_shared_vocabulary(tokenizer: Any, roles: dict[str, tuple[str, bool]], *, local_only: bool = False) -> list[str]:
    """Check that each pretrained model (``role -> (name, trust_remote_code)``) fits ``tokenizer``.

    A model folder's own tokenizer must have the same vocabulary (token -> id) as ``tokenizer``; every
    model's output layer must be as wide as the others' and cover ``tokenizer``. With ``local_only``, hub
    ids are skipped (nothing is downloaded). Returns what was not checked, one line each.
    """
    from transformers import AutoTokenizer

    vocab, skipped, widths = tokenizer.get_vocab(), [], {}
    for role, (name, trust) in roles.items():
        if local_only and not is_local(name):
            skipped.append(f"{role} {name!r}: a hub id, not checked offline")
            continue
        config = model_config(name, what=f"{role} model", trust_remote_code=trust)
        try:
            own = AutoTokenizer.from_pretrained(name, trust_remote_code=trust)
        except (OSError, ValueError):
            own = None  # a folder without tokenizer files: the output width is all there is to compare
        if own is not None and own.get_vocab() != vocab:
            differ = sorted(set(own.get_vocab().items()) ^ set(vocab.items()))[:1]
            raise ConfigError(
                f"{role}.pretrained {name!r}: its vocabulary differs from the run's tokenizer ({len(own)} vs "
                f"{len(tokenizer)} tokens, e.g. {differ[0][0]!r}); teacher and student must share one vocabulary "
                "(e.g. gpt2 -> distilgpt2, pythia-160m -> pythia-70m)"
            )
        widths[role] = config.vocab_size
        if config.vocab_size < len(tokenizer):
            raise ConfigError(
                f"{role}.pretrained {name!r}: its output layer has {config.vocab_size} tokens, the tokenizer "
                f"{len(tokenizer)}; use the tokenizer the model was trained with"
            )
    if len(set(widths.values())) > 1:
        raise ConfigError(
            f"teacher and student output layers differ in width ({widths}); distillation needs the same vocabulary"
        )
    return skipped
