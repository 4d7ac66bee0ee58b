"""Records: one cleaned text with a stable id (docs/architecture.md §3)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Record", "clean_text", "make_records", "record_id"]


@dataclass(frozen=True)
class Record:
    """One text of the pool. ``record_id`` is the first 16 hex digits of sha256(source NUL text)."""

    record_id: str
    text: str
    source: str


def record_id(source: str, text: str) -> str:
    """The stable id of ``text`` from ``source``: the same inputs give the same id on any machine.

    ``source`` is the source's ``id_namespace`` (what :func:`~mia_kd.data.load_texts` returns), not the
    spelling of its name in a config: ``python-docs`` and ``python_docs`` give the same ids.
    """
    return hashlib.sha256(f"{source}\0{text}".encode()).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space and strip both ends."""
    return " ".join(text.split())


def make_records(
    texts: Iterable[str], source: str, *, min_words: int = 1, max_words: int | None = None
) -> list[Record]:
    """Clean ``texts``, drop those outside ``[min_words, max_words]`` words and exact duplicates.

    Duplicates are compared after cleaning; the first occurrence is kept, so the order of the result
    follows the order of ``texts`` and is deterministic.
    """
    records: list[Record] = []
    seen: set[str] = set()
    for raw in texts:
        text = clean_text(raw)
        n_words = len(text.split())
        if n_words < min_words or (max_words is not None and n_words > max_words) or text in seen:
            continue
        seen.add(text)
        records.append(Record(record_id(source, text), text, source))
    return records
