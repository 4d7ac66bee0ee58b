"""Shadow models (mia_kd.shadows): balanced seeded masks, the shadow recipe, and a trial with lira and rmia."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mia_kd.config import validate_config
from mia_kd.errors import ConfigError
from mia_kd.shadows import shadow_masks

SHADOW_ATTACKS = ["loss", "reference", "lira", "rmia"]


def test_masks_are_balanced_per_record_and_seeded():
    masks = shadow_masks(1001, 8, seed=3)
    assert masks.shape == (8, 1001) and masks.dtype == bool
    assert (masks.sum(axis=0) == 4).all(), "every record IN for exactly half of the shadows"
    assert np.all(np.abs(masks.sum(axis=1) - 500.5) < 60), "each shadow holds about half of the records"
    np.testing.assert_array_equal(masks, shadow_masks(1001, 8, seed=3))
    assert (masks != shadow_masks(1001, 8, seed=4)).any()
    assert len({tuple(row) for row in masks}) == 8, "no two shadows train on the same records"
    with pytest.raises(ConfigError, match="even"):
        shadow_masks(10, 3, seed=0)


def test_online_shadows_of_a_method_reading_the_teachers_vulnerability_are_refused():
    from mia_kd.validate import check_config

    raw = {"privacy": {"method": "red_list", "strength": 2}, "shadows": {"online": True}, "attacks": ["loss", "lira"]}
    with pytest.raises(ConfigError, match="shadows.online"):
        check_config(validate_config(raw))
    check_config(validate_config({**raw, "shadows": {"online": False}}))  # offline shadows serve any method


@pytest.mark.slow
def test_a_trial_with_shadow_attacks(tmp_path, ci_raw, monkeypatch):
    """Two shadow teachers trained on their own halves of the attack records, their neutral students, and
    lira and rmia on both models; the shadow statistics land in ``records``."""
    from mia_kd import shadows
    from mia_kd.trial import run_trial

    seen: list[tuple[int, int]] = []
    train = shadows.trained_model

    def spy(cache, kind, key, model_config, tokenizer, rows, *args, **kwargs):
        if kind == "shadow_teacher":
            seen.append((len(rows), len({tuple(r) for r in rows})))
        return train(cache, kind, key, model_config, tokenizer, rows, *args, **kwargs)

    monkeypatch.setattr(shadows, "trained_model", spy)
    config = validate_config({**ci_raw, "attacks": SHADOW_ATTACKS, "shadows": {"count": 2}})
    result = run_trial(config)
    masks = shadow_masks(400, 2, seed=config.seed)
    assert seen == [(int(m.sum()), int(m.sum())) for m in masks], "each shadow teacher trains on its IN records only"

    metrics = pd.DataFrame(result.metrics).set_index(["model_role", "attack"])
    for role in ("teacher", "student"):
        for name in ("lira", "rmia"):
            assert 0.5 < metrics.at[(role, name), "auc"] <= 1.0
    # Shadows calibrate per record: LiRA beats the plain loss on the teacher (the CI teacher memorises).
    assert metrics.at[("teacher", "lira"), "tpr_at_fpr_1pct"] > metrics.at[("teacher", "loss"), "tpr_at_fpr_1pct"]
    for records, role in ((result.shared_records, "teacher"), (result.records, "student")):
        rows = records.to_pandas()
        rows = rows[(rows["model_role"] == role) & (rows["fold"] != "utility")]
        assert len(rows) == 400
        inside = np.stack(rows["shadow_inside"].to_numpy())
        np.testing.assert_array_equal(inside, masks.T)
        assert np.isfinite(np.stack(rows["shadow_scores"].to_numpy())).all()
    teacher_rows = result.shared_records.to_pandas()
    assert teacher_rows.loc[teacher_rows["model_role"] == "reference", "shadow_scores"].isna().all()
    assert result.trial["leakage_transfer_attack"] in SHADOW_ATTACKS
    summary = json.loads(result.trial["stage_times"])["shadows"]
    assert len(summary["teacher_s"]) == len(summary["student_s"]) == 2 and min(summary["teacher_s"]) > 0
    assert len(summary["nodes"]) == 1
