"""The teacher's and reference model's ``records`` rows: once per prepared state (schema 3), read back for
every trial; a store written before (schema 2, the rows copied into every trial) reads the same."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mia_kd.analysis.asymmetry import compute_asymmetry
from mia_kd.analysis.ensemble import build_pool, select
from mia_kd.analysis.results import load_results
from mia_kd.store import read_table, write_trial
from mia_kd.store.rows import tables

pytestmark = pytest.mark.slow  # builds on the session's CI-sized trials


def test_the_teacher_and_reference_rows_are_stored_once(trial_store):
    root, trials = trial_store
    records = read_table(str(root), "records", columns=["trial_id", "model_role", "record_id"]).to_pandas()
    key = {r.trial["prepared_key"] for r in trials.values()}
    assert len(key) == 1
    shared = records[records["model_role"].isin(["teacher", "reference"])]
    assert set(shared["trial_id"]) == {f"prepared-{key.pop()}"}
    assert not shared.duplicated(["model_role", "record_id"]).any()
    one = next(iter(trials.values())).shared_records
    assert len(shared) == one.num_rows and len(records) == one.num_rows + sum(r.records.num_rows for r in trials.values())


def test_every_trial_reads_the_shared_rows_as_its_own(trial_store):
    root, trials = trial_store
    results = load_results(str(root))
    teacher = results.records(roles=("teacher", "reference"), columns=["trial_id", "model_role", "record_id", "score_loss"])
    one = next(iter(trials.values())).shared_records.to_pandas()
    for trial_id in trials:
        mine = teacher[teacher["trial_id"] == trial_id].reset_index(drop=True)
        assert mine[["model_role", "record_id"]].equals(one[["model_role", "record_id"]])
        assert mine["score_loss"].equals(one["score_loss"])
    # A subset of the trials, and columns without trial_id, as the report's ROC helper asks.
    picked = results.records(roles=("teacher",), trial_ids=[next(iter(trials))], columns=["fold", "score_loss"])
    assert list(picked.columns) == ["fold", "score_loss"] and len(picked) == (one["model_role"] == "teacher").sum()


def test_a_store_with_rows_copied_per_trial_reads_the_same(trial_store, tmp_path):
    """Schema 2: no ``prepared_key``, every trial's file holds its own teacher and reference rows."""
    root, trials = trial_store
    old = tmp_path / "old"
    for trial_id, result in trials.items():
        shared = result.shared_records
        copied = shared.set_column(shared.schema.get_field_index("trial_id"), "trial_id",
                                   pa.array([trial_id] * shared.num_rows))
        records = pa.concat_tables([copied, result.records])
        records = records.set_column(records.schema.get_field_index("schema_version"), "schema_version",
                                     pa.array([2] * records.num_rows, pa.int32()))
        row = {k: v for k, v in result.trial.items() if k != "prepared_key"} | {"schema_version": 2}
        parts = tables(row, [m | {"schema_version": 2} for m in result.metrics], records)
        parts["trials"] = parts["trials"].drop_columns(["prepared_key"])
        write_trial(str(old), sweep_id=row["sweep_id"], method=row["method"], trial_id=trial_id, tables=parts)
    assert "prepared_key" not in read_table(str(old), "trials").column_names
    assert pc.all(pc.equal(read_table(str(old), "records")["schema_version"], 2)).as_py()

    new, legacy = load_results(str(root)), load_results(str(old))
    attacks = [spec.name for spec in new.attacks]
    a, b = compute_asymmetry(new, attacks), compute_asymmetry(legacy, attacks)
    assert a.agreement.reset_index(drop=True).equals(b.agreement.reset_index(drop=True))
    assert a.rates.reset_index(drop=True).equals(b.rates.reset_index(drop=True))
    for results in (new, legacy):
        reference = results.records(roles=("reference",), columns=["trial_id", "record_id"])
        assert set(reference["trial_id"]) == set(trials)
    pools = build_pool(new), build_pool(legacy)
    limit = float(new.completed["objective_utility"].max())
    chosen = [select(pool, max_task_loss=limit) for pool in pools]
    assert chosen[0].members == chosen[1].members and chosen[0].weights == chosen[1].weights


def test_a_trial_whose_own_file_is_unreadable_gets_no_shared_rows(trial_store, tmp_path):
    """As in a per-trial store, where the teacher's rows were in the trial's own file: none of its rows."""
    import shutil

    root = shutil.copytree(trial_store[0], tmp_path / "out")
    victim = next((root / "records").rglob("t1-temperature.parquet"))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    results = load_results(str(root))
    for roles in (("teacher",), ("teacher", "student"), ("student", "reference")):
        rows = results.records(roles=roles, columns=["trial_id", "model_role"])
        assert "t1-temperature" not in set(rows["trial_id"]), roles
        assert set(rows["trial_id"]) == set(trial_store[1]) - {"t1-temperature"}
