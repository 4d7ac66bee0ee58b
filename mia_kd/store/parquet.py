"""Append-only Parquet store: ``<root>/<table>/sweep_id=<s>/method=<m>/<trial_id>.parquet``.

Writes go to a hidden temporary name and are renamed into place, so a reader (which skips names starting
with ``.`` or ``_``) never sees a torn file. ``root`` may be a local path or any URL pyarrow understands
(``s3://``, ``gs://``, ``hdfs://``; fsspec filesystems through ``pyarrow.fs.PyFileSystem``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mia_kd.errors import UserError
from mia_kd.store.schema import ENSEMBLES, METRICS, PREPARED, RECORDS_BASE, TABLES, TRIALS, prepared_id

PARTITION_KEYS = ("sweep_id", "method")

log = logging.getLogger(__name__)


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


def write_prepared(root: str, sweep_id: str, key: str, records: pa.Table | None) -> list[str]:
    """Write the teacher's and reference model's ``records`` rows of prepared state ``key`` (once per sweep
    and key: every trial prepared alike shares them); nothing when ``records`` is None."""
    if records is None:
        return []
    return write_trial(root, sweep_id=sweep_id, method=PREPARED, trial_id=prepared_id(key), tables={"records": records})


def read_table(
    root: str, name: str, *, sweep_id: str | None = None, filter: ds.Expression | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """One table across every trial file, schemas unified; partition columns ``sweep_id`` and ``method``.

    ``filter`` (a pyarrow dataset expression) and ``columns`` are pushed down to the Parquet reader;
    requested columns that no file has (written by an older version) are left out. A file that is not one
    of this table's (torn, another tool's, of clashing types) is skipped with a warning naming it: one bad
    file must not hide every other trial. Only a table none of whose files reads is an error.
    """
    fs, base = _filesystem(root)
    path = f"{base}/{name}"
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        raise UserError(f"no {name!r} table under {root!r}: is it a mia-kd results folder (mia-kd trial --out)?")
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    except OSError as exc:
        raise UserError(f"cannot read the {name!r} table under {root!r}: {str(exc).splitlines()[0]}") from None
    paths = sorted(i.path for i in infos if i.type == pafs.FileType.File and not _hidden(i.path[len(path):]))
    paths, schema = _readable(fs, paths, name, root)
    if sweep_id is not None:
        filter = ds.field("sweep_id") == sweep_id if filter is None else filter & (ds.field("sweep_id") == sweep_id)
    if columns is not None:
        columns = [c for c in columns if c in schema.names]

    def read(files: list[str]) -> pa.Table:
        dataset = ds.dataset(files, filesystem=fs, format="parquet", partitioning=_PARTITIONING,
                             partition_base_dir=path, schema=schema)
        return dataset.to_table(filter=filter, columns=columns)

    try:
        return read(paths)
    except (pa.ArrowException, OSError):
        pass  # a file whose footer reads but whose pages do not: read file by file to find it
    tables, skipped = [], []
    for file in paths:
        try:
            tables.append(read([file]))
        except (pa.ArrowException, OSError) as exc:
            skipped.append((file, f"its data cannot be read ({_first_line(exc)}); a torn copy? move or delete it"))
    if not tables:
        raise _unreadable(name, root, *skipped[0])
    for file, why in skipped:
        _skip(file, name, why)
    return pa.concat_tables(tables)


# The partition keys are strings, whatever they look like (a sweep id "2024" is not a number).
_PARTITIONING = ds.partitioning(pa.schema([("sweep_id", pa.string()), ("method", pa.string())]), flavor="hive")
_KEY = {"ensembles": "ensemble_id"}  # the column every file of a table has; trial_id for the others
# The types a file of each table must agree with: the files are unified with each other, but the
# first file read must not decide, for a stray file that sorts first, what the table's columns are.
_TYPES = {"trials": TRIALS, "metrics": METRICS, "records": RECORDS_BASE, "ensembles": ENSEMBLES}


def _readable(fs: pafs.FileSystem, paths: list[str], name: str, root: str) -> tuple[list[str], pa.Schema]:
    """``paths`` less the files that are not Parquet files of table ``name`` (each skipped with a warning),
    and their unified schema (partition keys included)."""
    key = _KEY.get(name, "trial_id")
    schema = pa.schema([])
    good, skipped = [], []
    for file in paths:
        try:
            with fs.open_input_file(file) as f:
                found = pq.read_schema(f).remove_metadata()  # pandas metadata of one file must not shape the rest
        except (pa.ArrowException, OSError) as exc:
            why = f"not a readable Parquet file ({_first_line(exc)}); a torn copy? move or delete it"
        else:
            if key not in found.names or not pa.types.is_string(found.field(key).type):
                why = f"no string {key!r} column: not a mia-kd {name!r} file; move it out of the results folder"
            else:
                try:
                    known = _TYPES[name]
                    pa.unify_schemas([pa.schema([known.field(c) for c in found.names if c in known.names]), found])
                    unified = pa.unify_schemas([schema, found])
                    pa.unify_schemas([unified, _PARTITIONING.schema])  # a file's own sweep_id must not clash either
                    schema = unified
                    good.append(file)
                    continue
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    why = f"its column types clash with the table's ({_first_line(exc)}); move it out of the results folder"
        skipped.append((file, why))
    if skipped and not good:
        raise _unreadable(name, root, *skipped[0])
    for file, why in skipped:
        _skip(file, name, why)
    return good, pa.unify_schemas([schema, _PARTITIONING.schema])


def _unreadable(name: str, root: str, file: str, why: str) -> UserError:
    return UserError(f"cannot read the {name!r} table under {root!r}: none of its files reads ({file}: {why})")


def _skip(file: str, name: str, why: str) -> None:
    log.warning("skipping %s (table %r): %s", file, name, why)


def _hidden(relative: str) -> bool:
    """Temporary and marker files (``.x.tmp``, ``_SUCCESS``), as the dataset reader skips them."""
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
