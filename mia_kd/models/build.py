"""Causal language models: built from a config (random init, seeded) or loaded pretrained."""

from __future__ import annotations

import logging

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.config import ModelConfig
from mia_kd.errors import ConfigError
from mia_kd.models.hub import load_pretrained
from mia_kd.models.pretrained import check_causal
from mia_kd.models.pretrained import model_config as pretrained_config

log = logging.getLogger(__name__)


def build_model(config: ModelConfig, tokenizer: PreTrainedTokenizerBase, *, seed: int, role: str) -> PreTrainedModel:
    """A causal LM for ``role`` (teacher, student, reference), in float32 on the CPU.

    From scratch: ``AutoConfig.for_model(model_type, **config)`` with the tokenizer's vocabulary and
    special tokens, weights initialised under ``torch.manual_seed(seed)``.
    """
    if config.pretrained is not None:
        pretrained_config(config.pretrained, what=f"{role} model", trust_remote_code=config.trust_remote_code)
        model = load_pretrained(
            AutoModelForCausalLM.from_pretrained,
            config.pretrained,
            what=f"{role} model",
            trust_remote_code=config.trust_remote_code,
            dtype=torch.float32,
        )
        return model
    check_causal(config.model_type, what=f"{role}.model_type")
    special = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    try:
        model_config = AutoConfig.for_model(
            config.model_type,
            **{"vocab_size": len(tokenizer), "bos_token_id": special, "eos_token_id": special, **config.config},
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{role}.model_type/{role}.config: {str(exc).splitlines()[0]}") from None
    positions = getattr(model_config, "n_positions", None) or getattr(model_config, "max_position_embeddings", None)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config)
    log.info(
        "built %s: %s, %.2fM parameters, context %s",
        role, config.model_type, sum(p.numel() for p in model.parameters()) / 1e6, positions,
    )
    return model


def context_length(model: PreTrainedModel) -> int | None:
    """The model's maximum number of positions, read from its config."""
    cfg = model.config
    return getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
