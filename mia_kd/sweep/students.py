"""The sweep's students on disk: each trial's student saved under ``out/students/<trial_id>/``, and
``save_students: front`` keeping only those on the privacy-utility front (docs/architecture.md §2)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mia_kd.analysis.pareto import pareto_mask
from mia_kd.objectives import selection_points
from mia_kd.store import SweepStorage


def save(storage: SweepStorage, result: Any) -> None:
    """The trial's student (a :class:`~mia_kd.trial.TrialResult`'s), written locally first when ``out`` is a URL."""
    from mia_kd.distill.student import save_student  # in the trial's worker; the driver only prunes (keep_front)

    if storage.local is not None:
        save_student(storage.local / "students", result)
        return
    with tempfile.TemporaryDirectory(prefix="mia_kd-student-") as tmp:
        folder = save_student(Path(tmp), result)
        storage.upload_dir(folder, f"students/{folder.name}")


def keep_front(storage: SweepStorage, completed: list[dict[str, Any]]) -> None:
    """Remove the students of the ``completed`` trial rows off the Pareto front of the calib selection
    objectives: which students are kept is a choice, so it never reads eval."""
    if not completed:
        return
    keep = {r["trial_id"] for r, on in zip(completed, pareto_mask(selection_points(completed)), strict=True) if on}
    # Each repeat writes its own row under the folder's name, so names match trial ids one to one.
    for name in storage.subdirs("students"):
        if name not in keep:
            storage.delete_dir(f"students/{name}")
