"""A sweep's preparation as the work of one Ray task (docs/architecture.md §2): plain Python, no Ray.

The Tune adapter (:mod:`mia_kd.sweep.tune`) runs :func:`prepare_for_sweep` as a task with
``sweep.prepare_resources`` (by default a GPU where the cluster has one), so the teacher is trained and
scored where the hardware is while the driver, on a CPU-only head, only orchestrates. Trials receive the
result through Ray's object store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from mia_kd.attacks import required_passes
from mia_kd.config import TrialConfig
from mia_kd.prepared import Prepared
from mia_kd.store import write_prepared
from mia_kd.sweep.plan import strength_spaces
from mia_kd.trial import prepare


def prepare_for_sweep(
    config: TrialConfig, out: str, *, threads: int, methods: Iterable[str] = ()
) -> tuple[dict[str, Any], Prepared]:
    """Prepare once for every trial of the sweep: the split, tokenizer, teacher, reference model and teacher
    scores; the teacher's and reference model's ``records`` rows written to ``out`` once.

    Returns what the driver needs (where it ran, seconds per stage, the strength space of each of ``methods``:
    the driver's plan is built from them, see :func:`~mia_kd.sweep.plan.strength_spaces`) and the prepared
    state, its models on the CPU so that a trial on any node can load it.
    """
    torch.set_num_threads(threads)
    spaces = strength_spaces(config, methods)
    prepared = prepare(config)
    if not required_passes(config.attacks).shadows:  # else written once the shadows are attached (shadow_tasks)
        write_prepared(out, config.sweep_id, prepared.key, prepared.records)
    summary = {"node_id": prepared.node_id, "stage_times": prepared.stage_times, "spaces": spaces}
    return summary, prepared.to_cpu()
