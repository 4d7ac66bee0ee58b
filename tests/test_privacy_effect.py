"""On the CI-sized config: the methods that should reduce the student's leak do (measured, with CIs)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from mia_kd.config import validate_config
from mia_kd.trial import run_trial

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def run(tmp_path_factory, ci_raw_factory):
    cache = tmp_path_factory.mktemp("privacy-cache")

    def trial(privacy: dict | None = None):
        raw = ci_raw_factory(cache)
        if privacy:
            raw["privacy"] = privacy
        result = run_trial(validate_config(raw))
        metrics = pd.DataFrame(result.metrics)
        loss = metrics.query("model_role == 'student' and attack == 'loss'").iloc[0]
        return result, loss

    return trial


@pytest.fixture(scope="module")
def baseline(run):
    return run()


@pytest.mark.parametrize(
    "privacy",
    [
        {"method": "vulnerable_filter", "strength": 1.0},
        {"method": "dp_sgd", "strength": 5.0, "max_grad_norm": 0.1},
    ],
    ids=["vulnerable_filter", "dp_sgd"],
)
def test_method_lowers_the_students_loss_attack_auc(run, baseline, privacy, capsys):
    base_result, base = baseline
    result, loss = run(privacy)
    with capsys.disabled():
        print(
            f"\n{privacy['method']}: student loss-attack AUC {loss.auc:.3f} [{loss.auc_low:.3f}, {loss.auc_high:.3f}]"
            f" vs none {base.auc:.3f} [{base.auc_low:.3f}, {base.auc_high:.3f}];"
            f" task loss {result.trial['student_task_loss']:.3f} vs {base_result.trial['student_task_loss']:.3f}"
        )
    assert result.trial["method"] == privacy["method"] and result.trial["teacher_cache_hit"]
    assert loss.auc < base.auc
    assert loss.auc_high < base.auc + 0.05  # not just noise: the CI sits at or below the baseline's estimate
    if privacy["method"] == "vulnerable_filter":
        assert result.trial["n_transfer"] == 200 - result.trial["n_vulnerable"]
    else:
        assert result.trial["epsilon"] is not None and result.trial["epsilon"] > 0
