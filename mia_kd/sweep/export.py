"""``mia-kd export``: one trial's student as a plain Hugging Face model folder with a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mia_kd.distill.student import read_meta
from mia_kd.errors import UserError
from mia_kd.privacy import method_class
from mia_kd.store import read_table

CARD = """---
library_name: transformers
tags: [knowledge-distillation, membership-inference, mia_kd]
---

# {trial_id}: student distilled with `{method}` at strength {strength:g}

Distilled by mia_kd in sweep `{sweep_id}` ({stage} stage{params}).
Its teacher was trained on {n_members} member records; the numbers below are measured on an eval fold
of {n_eval} members and {n_eval_non} non-members never used to choose attack settings or thresholds.

| attack | AUC [95% CI] | TPR (members exposed) | TNR (non-members protected) | TPR @ 1% FPR |
|---|---|---|---|---|
{table}

Task loss on held-out records: {task_loss:.4f} nats/token (teacher: {teacher_loss:.4f}).
{architecture}
"""


def export_student(out: str | Path, trial_id: str, dest: str | Path) -> Path:
    root, dest = Path(out), Path(dest)
    source = root / "students" / trial_id
    meta = read_meta(source) if source.is_dir() else None
    if meta is None:
        raise UserError(
            f"no saved student for trial {trial_id!r} under {root / 'students'}; list trials with mia-kd status "
            f"(students are kept per sweep.save_students)"
        )
    if dest.exists():
        raise UserError(f"{str(dest)!r} exists; give a new destination folder")
    sweep_id = meta.config.sweep_id
    trials = read_table(str(root), "trials", sweep_id=sweep_id).to_pandas()
    row = trials[trials["trial_id"] == trial_id]
    if row.empty:
        raise UserError(f"trial {trial_id!r} is not in the trials table under {root}")
    row = row.iloc[0]
    metrics = read_table(str(root), "metrics", sweep_id=sweep_id).to_pandas()
    mine = metrics[(metrics["trial_id"] == trial_id) & (metrics["model_role"] == "student")]
    table = "\n".join(
        f"| {m.attack} | {m.auc:.3f} [{m.auc_low:.3f}, {m.auc_high:.3f}] | {m.tpr:.3f} | {m.tnr:.3f} | {m.tpr_at_fpr_1pct:.3f} |"
        for m in mine.itertuples()
    )
    architecture = ""
    if method_class(meta.method).hook == "architecture":
        architecture = (
            f"\nNote: `{meta.method}` changed the student's modules, so these weights do not fit the stock "
            "architecture in `config.json`; `from_pretrained` alone will not load them (see `mia_kd.json`)."
        )
    params = meta.privacy_params
    shutil.copytree(source, dest)
    (dest / "README.md").write_text(CARD.format(
        trial_id=trial_id, method=meta.method, strength=meta.strength, sweep_id=sweep_id, stage=meta.stage, params=f", params {json.dumps(params)}" if params else "",
        n_members=int(row["n_members"]), n_eval=int(mine["n_members"].iloc[0]) if len(mine) else 0,
        n_eval_non=int(mine["n_nonmembers"].iloc[0]) if len(mine) else 0, table=table,
        task_loss=float(row["student_task_loss"]), teacher_loss=float(row["teacher_task_loss"]),
        architecture=architecture,
    ))
    return dest
