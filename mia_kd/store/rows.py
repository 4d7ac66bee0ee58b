"""Rows of the results tables, built from plain values (docs/architecture.md §7).

The store never imports the pipeline: a trial (or the sweep, for a failed trial) hands over values, and
these functions give them the schema's shape, the schema version and the provenance of the process that
ran them (host, Ray node, package versions, git revision).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mia_kd.store.schema import METRICS, SCHEMA_VERSION, TRIALS, records_schema

PACKAGES = ("mia-kd", "torch", "transformers", "tokenizers", "datasets", "ray", "optuna", "pyarrow", "numpy")


def trial_row(*, sweep_id: str, trial_id: str, status: str = "completed", **columns: Any) -> dict[str, Any]:
    """One ``trials`` row: every schema column (null where not given) and the schema version.

    ``columns`` must be names of the schema: a misspelt column is a bug, not a silently dropped value.
    """
    unknown = sorted(set(columns) - set(TRIALS.names))
    if unknown:
        raise ValueError(f"trials has no column(s) {', '.join(unknown)}")
    row = dict.fromkeys(TRIALS.names)
    row.update(schema_version=SCHEMA_VERSION, sweep_id=sweep_id, trial_id=trial_id, status=status, **columns)
    return row


def failed_row(
    *, sweep_id: str, trial_id: str, error: str, method: str, strength: float, stage: str,
    params: Mapping[str, Any], **columns: Any,
) -> dict[str, Any]:
    """The ``trials`` row of a trial that failed: what was asked for, and the error's last line."""
    return trial_row(
        sweep_id=sweep_id, trial_id=trial_id, status="failed", error=error, method=method, strength=float(strength),
        privacy_stage=stage, privacy_params=_json(params), started_at=datetime.now(UTC), **columns,
    )


def metric_rows(trial_id: str, by_role: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """``metrics`` rows: one per (model role, attack), each with the schema version and trial id."""
    return [
        {"schema_version": SCHEMA_VERSION, "trial_id": trial_id, "model_role": role, **row}
        for role, rows in by_role.items()
        for row in rows
    ]


def node_id() -> str:
    """Ray's node id inside a Ray worker (the sweep's adapter sets ``MIA_KD_NODE_ID``), else the host name."""
    return os.environ.get("MIA_KD_NODE_ID") or socket.gethostname()


def provenance() -> dict[str, Any]:
    """Where and with what this process runs: ``node_id``, ``hostname``, ``package_versions``, ``git_revision``."""
    return {
        "node_id": node_id(),
        "hostname": socket.gethostname(),
        "package_versions": _json(_package_versions()),
        "git_revision": _git_revision(),
    }


def records_table(
    trial_id: str,
    attack_names: Sequence[str],
    parts: Sequence[RecordsPart],
) -> pa.Table:
    """The ``records`` rows of one trial: one :class:`RecordsPart` per (model role, record set)."""
    schema = records_schema(attack_names)
    columns: dict[str, list] = {name: [] for name in schema.names}
    for part in parts:
        n = len(part.record_ids)
        columns["schema_version"] += [SCHEMA_VERSION] * n
        columns["trial_id"] += [trial_id] * n
        columns["model_role"] += [part.role] * n
        columns["record_id"] += list(part.record_ids)
        columns["label"] += list(part.labels)
        columns["fold"] += list(part.folds)
        columns["n_tokens"] += [len(lp) for lp in part.logprobs]
        columns["zlib_bytes"] += [int(b) for b in part.zlib_bytes]
        columns["token_logprobs"] += list(part.logprobs)
        columns["lowercase_token_logprobs"] += list(part.lowercase) if part.lowercase is not None else [None] * n
        columns["prefixed_token_logprobs"] += list(part.prefixed) if part.prefixed is not None else [None] * n
        shadows = part.shadows
        columns["shadow_scores"] += list(np.asarray(shadows.scores).T) if shadows is not None else [None] * n
        columns["shadow_inside"] += list(np.asarray(shadows.inside).T) if shadows is not None else [None] * n
        for name in attack_names:
            scores = part.scores.get(name) if part.scores is not None else None
            columns[f"score_{name}"] += list(scores) if scores is not None else [None] * n
    return pa.Table.from_pydict(columns, schema=schema)


@dataclass(frozen=True)
class RecordsPart:
    """One model's per-record values on one record set (attack records or utility), in record order.

    ``logprobs`` (and ``lowercase``/``prefixed`` when those passes ran) hold one ``(n_tokens,)`` array per
    record; ``labels`` are 1/0 (``None`` for utility); ``folds`` calib/eval/utility; ``scores`` the oriented
    attack scores by attack name (attack records of teacher and student only); ``shadows`` the role's
    shadow models' statistics and masks (a ``ShadowStats``), where attacks read them.
    """

    role: str
    record_ids: Sequence[str]
    labels: Sequence[int | None]
    folds: Sequence[str]
    logprobs: Sequence[np.ndarray]
    zlib_bytes: Sequence[int]
    lowercase: Sequence[np.ndarray] | None = None
    prefixed: Sequence[np.ndarray] | None = None
    scores: Mapping[str, np.ndarray] | None = None
    shadows: Any = None  # ShadowStats: the role's shadow models on these records (lira, rmia)


def tables(trial: Mapping[str, Any], metrics: Sequence[Mapping[str, Any]], records: pa.Table) -> dict[str, pa.Table]:
    """The rows of each table, in write order: ``trials`` last, so a trial killed while writing leaves no
    ``trials`` row, and readers (which start from ``trials``) never see its half-written rows."""
    return {
        "records": records,
        "metrics": pa.Table.from_pylist(list(metrics), schema=METRICS),
        "trials": pa.Table.from_pylist([dict(trial)], schema=TRIALS),
    }


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=float)


def _package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
