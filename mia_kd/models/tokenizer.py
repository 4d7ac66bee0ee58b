"""Tokenizers: a byte-level BPE trained on the ``public`` records, or a pretrained model's tokenizer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mia_kd.config import TokenizerConfig
from mia_kd.models.hub import load_pretrained

log = logging.getLogger(__name__)

SPECIAL_TOKEN = "<|endoftext|>"


def build_tokenizer(config: TokenizerConfig, public_texts: Sequence[str]) -> PreTrainedTokenizerBase:
    """The configured tokenizer; a trained BPE sees ``public`` only, so it carries no membership signal."""
    if config.pretrained is not None:
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, config.pretrained, what="tokenizer")
    else:
        tokenizer = train_bpe(public_texts, vocab_size=config.vocab_size)
    if tokenizer.pad_token_id is None:
        # Padding is always masked out; any id will do, and the end-of-text token exists in causal LMs.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train_bpe(texts: Sequence[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE (every string encodes, no unknown token); deterministic for its input."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    log.info("trained a byte-level BPE with %d tokens on %d public records", tokenizer.get_vocab_size(), len(texts))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=SPECIAL_TOKEN, eos_token=SPECIAL_TOKEN, pad_token=SPECIAL_TOKEN
    )


def encode(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, max_length: int | None
) -> tuple[list[list[int]], int]:
    """Token ids per text, each starting with the begin-of-text token so that every text token is predicted.

    Returns ``(ids, n_truncated)``: texts longer than ``max_length`` tokens are cut and counted (None: none).
    """
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    ids, truncated = [], 0
    for row in encoded:
        row = [start, *row]
        if max_length is not None and len(row) > max_length:
            row = row[:max_length]
            truncated += 1
        ids.append(row)
    return ids, truncated


def scored_texts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], rows: Sequence[Sequence[int]], *, max_length: int | None
) -> list[str]:
    """The part of each text its ``rows`` (from :func:`encode` at ``max_length``) cover: the text itself, or,
    where the row was cut, the decoded kept tokens.

    Text-level attack inputs (zlib's compressed length, the lowercased text) must describe the span the model
    scored: dividing the first ``max_length`` tokens' log-likelihood by the whole text's compressed length
    mixes two different spans.
    """
    out = list(texts)
    if max_length is None:
        return out
    full_at_cut = [i for i, row in enumerate(rows) if len(row) == max_length]
    if full_at_cut:
        lengths = [len(ids) for ids in tokenizer([texts[i] for i in full_at_cut], add_special_tokens=False)["input_ids"]]
        for i, n in zip(full_at_cut, lengths, strict=True):
            if n + 1 > max_length:  # the row was cut (its first id is the begin-of-text token)
                out[i] = tokenizer.decode(rows[i][1:])
    return out
