"""The results store: Parquet tables ``trials``, ``metrics``, ``records`` (docs/architecture.md §7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mia_kd.store.parquet import read_table, write_trial
from mia_kd.store.schema import ENSEMBLES, METRICS, SCHEMA_VERSION, TABLES, TRIALS, records_schema

if TYPE_CHECKING:
    from mia_kd.trial import TrialResult

__all__ = ["ENSEMBLES", "METRICS", "SCHEMA_VERSION", "TABLES", "TRIALS", "read_table", "records_schema", "write_result", "write_trial"]


def write_result(root: str, result: TrialResult) -> list[str]:
    """Write one trial's rows of every table under ``root``."""
    row = result.trial
    return write_trial(
        root, sweep_id=row["sweep_id"], method=row["method"], trial_id=row["trial_id"], tables=result.tables()
    )
