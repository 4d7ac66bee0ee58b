"""A small real results store: CI-sized trials of a few methods, written as a sweep writes them."""

from __future__ import annotations

import pytest

from mia_kd.config import validate_config
from mia_kd.store import write_result
from mia_kd.trial import prepare, run_student

METHODS = [("none", 0.0), ("temperature", 0.6), ("vulnerable_filter", 1.0), ("output_noise", 0.5)]


@pytest.fixture(scope="session")
def trial_store(tmp_path_factory, ci_raw_factory):
    """``(root, {trial_id: TrialResult})``: one teacher, four students, students saved under students/."""
    from mia_kd.models.student import save_student

    root = tmp_path_factory.mktemp("store")
    raw = ci_raw_factory(root / "cache")
    prepared = prepare(validate_config(raw))
    results = {}
    for n, (method, strength) in enumerate(METHODS):
        config = validate_config({**raw, "privacy": {"method": method, "strength": strength}})
        result = run_student(prepared, config, trial_id=f"t{n}-{method}")
        write_result(str(root / "out"), result)
        save_student(root / "out" / "students", result)
        results[result.trial_id] = result
    return root / "out", results
