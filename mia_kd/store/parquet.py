"""Append-only Parquet store: ``<root>/<table>/sweep_id=<s>/method=<m>/<trial_id>.parquet``.

Writes go to a hidden temporary name and are renamed into place, so a reader (which skips names starting
with ``.`` or ``_``) never sees a torn file. ``root`` may be a local path or any URL pyarrow understands
(``s3://``, ``gs://``, ``hdfs://``; fsspec filesystems through ``pyarrow.fs.PyFileSystem``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mia_kd.errors import UserError
from mia_kd.store.schema import TABLES

PARTITION_KEYS = ("sweep_id", "method")


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(root)
    except (pa.ArrowInvalid, ValueError):
        import os

        return pafs.LocalFileSystem(), os.path.abspath(root)


def write_trial(root: str, *, sweep_id: str, method: str, trial_id: str, tables: Mapping[str, pa.Table]) -> list[str]:
    """Write one trial's rows of each table atomically; returns the final paths."""
    fs, base = _filesystem(root)
    written = []
    for name, table in tables.items():
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}")
        folder = f"{base}/{name}/sweep_id={sweep_id}/method={method}"
        fs.create_dir(folder, recursive=True)
        # The partition keys live in the path; a copy inside the file would clash with them on read.
        table = table.drop_columns([c for c in PARTITION_KEYS if c in table.column_names])
        final = f"{folder}/{trial_id}.parquet"
        tmp = f"{folder}/.{trial_id}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(table, tmp, filesystem=fs, compression="zstd")
        fs.move(tmp, final)
        written.append(final)
    return written


def read_table(
    root: str, name: str, *, sweep_id: str | None = None, filter: ds.Expression | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """One table across every trial file, schemas unified; partition columns ``sweep_id`` and ``method``.

    ``filter`` (a pyarrow dataset expression) and ``columns`` are pushed down to the Parquet reader;
    requested columns that no file has (written by an older version) are left out.
    """
    fs, base = _filesystem(root)
    path = f"{base}/{name}"
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        raise UserError(f"no {name!r} table under {root!r}: is it a mia-kd results folder (mia-kd trial --out)?")
    try:
        files = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
        schema = pa.unify_schemas([files.schema, *(f.physical_schema for f in files.get_fragments())])
        dataset = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive", schema=schema)
        if sweep_id is not None:
            filter = ds.field("sweep_id") == sweep_id if filter is None else filter & (ds.field("sweep_id") == sweep_id)
        if columns is not None:
            columns = [c for c in columns if c in schema.names]
        return dataset.to_table(filter=filter, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"cannot read the {name!r} table under {root!r}: {str(exc).splitlines()[0]}") from None
