from __future__ import annotations

import sys
import sysconfig
import time

import pytest

from mia_kd.data import resolve_source
from mia_kd.data.sources.python_docs import PythonDocs, sentences, topics

# The exact corpus depends on the standard library's text, which changes between patch releases.
PINNED = {(3, 11, 7): 6774}


@pytest.mark.skipif(
    sys.version_info[:3] not in PINNED, reason=f"python-docs size pinned only for {sorted(PINNED)}"
)
def test_size_is_pinned(docs_texts: list[str]) -> None:
    assert len(docs_texts) == PINNED[sys.version_info[:3]]


def test_size_is_plausible_on_any_version(docs_texts: list[str]) -> None:
    assert 4000 <= len(docs_texts) <= 10000


def test_no_duplicates(docs_texts: list[str]) -> None:
    assert len(set(docs_texts)) == len(docs_texts)


def test_sentences_are_clean_prose(docs_texts: list[str]) -> None:
    for text in docs_texts:
        assert text[0].isupper() and text.endswith("."), text
        assert 6 <= len(text.split()) <= 40, text
        for bad in (">>>", "::", "`", "http", "_", "=", "\n", "  "):
            assert bad not in text, (bad, text)


def test_builds_quickly_and_deterministically(docs_texts: list[str]) -> None:
    # CPU time of this process, not wall time: other test runs on the machine must not make it flaky.
    start = time.process_time()
    again = PythonDocs(PythonDocs.Options(min_words=6, max_words=10)).load()
    assert time.process_time() - start < 5.0
    assert again == [text for text in docs_texts if len(text.split()) <= 10]


def test_word_bounds_are_options() -> None:
    texts = topics(sysconfig.get_paths()["stdlib"])
    default, short = sentences(texts), sentences(texts, min_words=8, max_words=12)
    assert short and all(8 <= len(t.split()) <= 12 for t in short)
    assert set(short) < set(default)


def test_sentence_filter_on_handwritten_text() -> None:
    text = (
        "Return the number of items in the container.  Use  len() for that.\n\n"
        ">>> len([1, 2, 3])\n3\n\n"
        "See :func:`os.path.join` for details on this.  Too short here.\n"
        "This sentence has no full stop at its end\n\n"
        "1. The first item of the list is also a sentence.\n"
        "Return the number of items in the container."
    )
    assert sentences([text]) == [
        "Return the number of items in the container.",
        "The first item of the list is also a sentence.",
    ]


def test_options_validated() -> None:
    with pytest.raises(ValueError):
        PythonDocs.Options(min_words=10, max_words=5)
    with pytest.raises(ValueError):
        PythonDocs.Options(min_words=0)


def test_both_spellings_are_one_source_with_the_old_record_ids() -> None:
    # The key became the file name (python_docs); ids stay hashed from "python-docs" (load_texts hands
    # id_namespace to make_records), so configs spelling it either way (the quickstart: python-docs) keep
    # the same record ids and the same split.
    for spelling in ("python-docs", "python_docs", {"name": "python_docs", "max_words": 30}):
        name, source = resolve_source(spelling)
        assert name == "python_docs" and isinstance(source, PythonDocs)
        assert source.id_namespace == "python-docs"
