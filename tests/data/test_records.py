from __future__ import annotations

import hashlib

from mia_kd.data import Record, clean_text, make_records, record_id


def test_record_id_is_sha256_prefix_of_source_and_text() -> None:
    expected = hashlib.sha256(b"files\0Hello world.").hexdigest()[:16]
    assert record_id("files", "Hello world.") == expected
    assert record_id("hf", "Hello world.") != expected


def test_clean_text_collapses_whitespace() -> None:
    assert clean_text("  Hello \n\t big   world.  ") == "Hello big world."


def test_make_records_cleans_bounds_and_dedupes_keeping_first() -> None:
    texts = ["b  two words", "a one", "", "b two words", "  c three four five  ", "a one"]
    records = make_records(texts, "src", min_words=2, max_words=3)
    assert [r.text for r in records] == ["b two words", "a one"]
    assert records[0] == Record(record_id("src", "b two words"), "b two words", "src")


def test_make_records_default_drops_only_empty() -> None:
    assert [r.text for r in make_records(["x", " ", "y y"], "s")] == ["x", "y y"]
