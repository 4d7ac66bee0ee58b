"""The results store (docs/architecture.md §7): Parquet tables ``trials``, ``metrics``, ``records`` and
``ensembles``, and the sweep folder's other files. The store knows tables and files, never the pipeline
that fills them: callers hand it Arrow tables (built with :mod:`mia_kd.store.rows`)."""

from __future__ import annotations

from mia_kd.store.files import JOURNAL, MANIFEST, SweepStorage
from mia_kd.store.parquet import read_table, write_prepared, write_trial
from mia_kd.store.schema import (
    ENSEMBLES, METRICS, SCHEMA_VERSION, SHARED_ROLES, TABLES, TRIALS, prepared_id, records_schema,
)

__all__ = [
    "ENSEMBLES", "JOURNAL", "MANIFEST", "METRICS", "SCHEMA_VERSION", "TABLES", "TRIALS", "SHARED_ROLES", "SweepStorage",
    "prepared_id", "read_table", "records_schema", "write_prepared", "write_trial",
]
