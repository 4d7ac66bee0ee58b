"""A small real results store: CI-sized trials of a few methods, written as a sweep writes them."""

from __future__ import annotations

import pytest

from mia_kd.config import validate_config
from mia_kd.store import write_prepared, write_trial

METHODS = [("none", 0.0), ("temperature", 0.6), ("vulnerable_filter", 1.0), ("output_noise", 0.5)]


@pytest.fixture(scope="session")
def trial_store(tmp_path_factory, ci_raw_factory):
    """``(root, {trial_id: TrialResult})``: one teacher, four students, students saved under students/."""
    # Imported here: the analysis tests that read no trial (plots, report, pareto, frontier) need no torch.
    from mia_kd.distill.student import save_student
    from mia_kd.trial import prepare, run_student

    root = tmp_path_factory.mktemp("store")
    raw = ci_raw_factory(root / "cache")
    prepared = prepare(validate_config(raw))
    results = {}
    for n, (method, strength) in enumerate(METHODS):
        config = validate_config({**raw, "privacy": {"method": method, "strength": strength}})
        result = run_student(prepared, config, trial_id=f"t{n}-{method}")
        row = result.trial
        write_trial(str(root / "out"), sweep_id=row["sweep_id"], method=row["method"], trial_id=row["trial_id"],
                    tables=result.tables())
        save_student(root / "out" / "students", result)
        results[result.trial_id] = result
    write_prepared(str(root / "out"), row["sweep_id"], prepared.key, prepared.records)  # once, as a sweep does
    return root / "out", results
