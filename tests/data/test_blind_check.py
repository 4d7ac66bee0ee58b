from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from mia_kd.data import (
    BlindCheck,
    Record,
    SplitSizes,
    blind_check,
    load_texts,
    make_records,
    require_iid,
    split_records,
    split_shifted,
)
from mia_kd.errors import ShiftedSplitError

SIZES = SplitSizes(members=600, nonmembers=600, utility=100, public=100)


def synthetic_source(path: Path, n: int) -> dict[str, str]:
    """A files source of template sentences about cooking and weather: vocabulary unlike the docs."""
    rng = np.random.default_rng(0)
    subjects = ["The baker", "My grandmother", "The old farmer", "A tired traveller", "The young chef"]
    verbs = ["stirred", "tasted", "carried", "planted", "painted", "watched"]
    objects = ["the ripe tomatoes", "a warm loaf", "the wild berries", "some fresh basil", "the apple pie"]
    endings = ["during the summer storm", "under the grey clouds", "before the heavy rain", "in the misty garden",
               "beside the sunny river"]
    texts = {
        f"{rng.choice(subjects)} quietly {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(endings)} "
        f"on day {i}."
        for i in range(n)
    }
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in sorted(texts)), encoding="utf-8")
    return {"name": "files", "path": str(path)}


def test_iid_python_docs_split_passes(docs_records: list[Record]) -> None:
    split = split_records(docs_records, SIZES, seed=0)
    check = blind_check(split, seed=0, n_bootstrap=500)
    assert check.passed and check.auc_low <= 0.5 <= check.auc_high
    assert abs(check.auc - 0.5) < 0.06
    require_iid(check, allow_shifted=False)
    assert check == blind_check(split, seed=0, n_bootstrap=500)


def test_shifted_split_fails(docs_records: list[Record], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    name, texts = load_texts(synthetic_source(tmp_path / "other.jsonl", 800))
    split = split_shifted(docs_records, make_records(texts, name), SIZES, seed=0)
    check = blind_check(split, seed=0, n_bootstrap=500)
    assert not check.passed and check.auc_low > 0.9
    with pytest.raises(ShiftedSplitError) as info:
        require_iid(check, allow_shifted=False)
    message = str(info.value)
    assert message.startswith("blind check failed: a bag-of-words classifier tells members from non-members")
    assert "data.allow_shifted_split: true" in message and "\n" not in message
    with caplog.at_level(logging.WARNING, logger="mia_kd.data"):
        require_iid(check, allow_shifted=True)
    assert any("blind check failed" in r.getMessage() for r in caplog.records)


def test_require_iid_message_format() -> None:
    check = BlindCheck(auc=0.97, auc_low=0.95, auc_high=0.99, passed=False)
    with pytest.raises(ShiftedSplitError) as info:
        require_iid(check, allow_shifted=False)
    assert str(info.value) == (
        "blind check failed: a bag-of-words classifier tells members from non-members without any model "
        "(AUC 0.97, 95% CI 0.95–0.99); the split is not IID. Use one source for both, or set "
        "data.allow_shifted_split: true to record it as shifted"
    )
    assert check.to_dict() == {"auc": 0.97, "auc_low": 0.95, "auc_high": 0.99, "passed": False}


def test_passing_check_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        require_iid(BlindCheck(0.5, 0.45, 0.55, True), allow_shifted=True)
    assert not caplog.records
