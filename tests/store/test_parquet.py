import pyarrow as pa
import pytest

from mia_kd.errors import UserError
from mia_kd.store import read_table, write_trial


def _records(trial_id: str, attack: str) -> pa.Table:
    return pa.table({"trial_id": [trial_id] * 2, "record_id": ["a", "b"], f"score_{attack}": [0.1, 0.2]})


def test_writes_are_hive_partitioned_and_leave_no_temporary_files(tmp_path):
    paths = write_trial(str(tmp_path), sweep_id="s1", method="none", trial_id="t1", tables={"records": _records("t1", "loss")})
    assert paths == [f"{tmp_path}/records/sweep_id=s1/method=none/t1.parquet"]
    assert [p.name for p in (tmp_path / "records/sweep_id=s1/method=none").iterdir()] == ["t1.parquet"]


def test_partition_keys_are_not_duplicated_inside_files(tmp_path):
    table = pa.table({"sweep_id": ["s1"], "method": ["none"], "trial_id": ["t1"]})
    write_trial(str(tmp_path), sweep_id="s1", method="none", trial_id="t1", tables={"trials": table})
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "trials/sweep_id=s1/method=none/t1.parquet").column_names == ["trial_id"]
    back = read_table(str(tmp_path), "trials")
    assert back.column("sweep_id").to_pylist() == ["s1"] and back.column("method").to_pylist() == ["none"]


def test_reader_unifies_schemas_and_filters_by_sweep(tmp_path):
    write_trial(str(tmp_path), sweep_id="s1", method="none", trial_id="t1", tables={"records": _records("t1", "loss")})
    write_trial(str(tmp_path), sweep_id="s2", method="none", trial_id="t2", tables={"records": _records("t2", "zlib")})
    both = read_table(str(tmp_path), "records").to_pandas().sort_values(["trial_id", "record_id"])
    assert both["score_loss"].notna().tolist() == [True, True, False, False]
    assert both["score_zlib"].notna().tolist() == [False, False, True, True]
    only = read_table(str(tmp_path), "records", sweep_id="s2")
    assert set(only.column("trial_id").to_pylist()) == {"t2"}


def test_a_folder_that_is_not_a_results_store_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no 'trials' table"):
        read_table(str(tmp_path), "trials")


def test_a_corrupt_file_is_skipped_with_a_warning_naming_it(tmp_path, caplog):
    write_trial(str(tmp_path), sweep_id="s1", method="none", trial_id="t1", tables={"records": _records("t1", "loss")})
    write_trial(str(tmp_path), sweep_id="s1", method="none", trial_id="t3", tables={"records": _records("t3", "loss")})
    bad = tmp_path / "records/sweep_id=s1/method=none/t2.parquet"
    bad.write_bytes(b"garbage")
    torn = tmp_path / "records/sweep_id=s1/method=none/t3.parquet"
    torn.write_bytes(torn.read_bytes()[:-20])
    back = read_table(str(tmp_path), "records")
    assert set(back.column("trial_id").to_pylist()) == {"t1"}
    assert [r.getMessage().split(" (table")[0] for r in caplog.records] == [f"skipping {bad}", f"skipping {torn}"]


def test_a_table_none_of_whose_files_reads_is_a_user_error_naming_one(tmp_path, caplog):
    (tmp_path / "records/sweep_id=s1/method=none").mkdir(parents=True)
    (tmp_path / "records/sweep_id=s1/method=none/t2.parquet").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read the 'records' table .* none of its files reads .*t2.parquet"):
        read_table(str(tmp_path), "records")
    assert not caplog.records  # the error says it all: no warnings before it


def test_another_tools_files_are_skipped_and_leave_the_columns_alone(tmp_path, caplog):
    import pandas as pd
    import pyarrow.parquet as pq

    write_trial(str(tmp_path), sweep_id="2024", method="none", trial_id="t1", tables={"records": _records("t1", "loss")})
    pd.DataFrame({"run": ["x"]}, index=[7]).to_parquet(tmp_path / "records/a.parquet")  # no trial_id
    pq.write_table(pa.table({"trial_id": ["z"], "record_id": [1]}), tmp_path / "records/b.parquet")  # sorts first
    (tmp_path / "records/sweep_id=2024/_SUCCESS").write_text("")  # markers and temporary files are not files
    (tmp_path / "records/sweep_id=2024/method=none/.t9.1234.tmp").write_bytes(b"half")
    back = read_table(str(tmp_path), "records")
    assert back.column("record_id").to_pylist() == ["a", "b"] and back.column("sweep_id").to_pylist() == ["2024"] * 2
    assert back.to_pandas().index.tolist() == [0, 1]  # the stray file's pandas index metadata is not applied
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "a.parquet" in messages[0] and "no string 'trial_id' column" in messages[0]
    assert "b.parquet" in messages[1] and "clash" in messages[1]
