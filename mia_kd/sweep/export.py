"""``mia-kd export``: one trial's student as a Hugging Face model folder with a Hub model card.

The card's metadata (``huggingface_hub.ModelCardData``) carries the teacher as ``base_model``, the data
source, and a ``model-index`` with the student's measured attack AUC and TPR at 1% FPR per attack on the eval
fold (the ``metrics`` table's rows, verbatim); the text adds their 95% CIs. A student whose privacy method
acts when it is loaded (serve-stage transforms, ``bottleneck``, ``nonorm``) is exported with mia_kd's remote
code (:mod:`mia_kd.distill.remote_code`): plain ``from_pretrained`` refuses it instead of loading it without
its protection.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from mia_kd.distill.remote_code import write_remote_code
from mia_kd.distill.student import VULNERABILITY, StudentMeta, read_meta
from mia_kd.errors import UserError
from mia_kd.privacy import method_class
from mia_kd.store import MANIFEST, read_table

SHOWN_IDS = 10  # saved trial ids listed when the one asked for is unknown
# (metrics column, model-index metric type, what it is) reported per attack in model-index
CARD_METRICS = (("auc", "auc", "AUC"), ("tpr_at_fpr_1pct", "tpr_at_fpr_1pct", "TPR at 1% FPR"))

BODY = """
# {trial_id}: student distilled with `{method}` at strength {strength:g}

Distilled by [mia_kd](https://pypi.org/project/mia-kd/) in sweep `{sweep_id}` ({stage} stage{params})
from {teacher}.

The numbers below are membership-inference attacks on this student, measured on an eval fold of {n_eval}
members and {n_eval_non} non-members never used to choose attack settings or thresholds. Lower is more private:
AUC 0.5 is chance. TPR @ 1% FPR is left out where the fold has fewer than 100 non-members.

| attack | AUC [95% CI] | TPR (members exposed) | TNR (non-members protected) | TPR @ 1% FPR [95% CI] |
|---|---|---|---|---|
{table}

Task loss on held-out records: {task_loss:.4f} nats/token (teacher: {teacher_loss:.4f}).

## Loading

{loading}
"""


def export_student(out: str | Path, trial_id: str, dest: str | Path, *, license: str | None = None) -> Path:
    """Copy ``out/students/<trial_id>/`` to ``dest`` with a model card (``README.md``); returns ``dest``.

    ``license`` is the card's ``license`` field (a Hub license id; default ``other``). The folder appears
    whole or not at all: it is written beside ``dest`` under a temporary name, then renamed.
    """
    root, dest = Path(out), Path(dest)
    source = root / "students" / trial_id
    meta = read_meta(source) if source.is_dir() else None
    if meta is None and source.is_dir():
        raise UserError(f"{str(source)!r} has no mia_kd.json: not a student saved by mia-kd; restore the folder")
    if meta is None:
        raise UserError(_no_student(root, trial_id))
    if dest.exists():
        raise UserError(f"{str(dest)!r} exists; give a new destination folder")
    sweep_id = meta.config.sweep_id
    trials = read_table(str(root), "trials", sweep_id=sweep_id).to_pandas()
    row = trials[trials["trial_id"] == trial_id]
    if row.empty:
        raise UserError(f"trial {trial_id!r} is not in the trials table under {root}")
    metrics = read_table(str(root), "metrics", sweep_id=sweep_id).to_pandas()
    mine = metrics[(metrics["trial_id"] == trial_id) & (metrics["model_role"] == "student")]
    wrap = meta.acts_when_loaded
    if wrap and method_class(meta.method).needs_vulnerability and not (source / VULNERABILITY).is_file():
        raise UserError(
            f"student {str(source)!r}: its serve-stage {meta.method!r} reads the teacher's vulnerable tokens and the "
            f"folder has no {VULNERABILITY}; copy the teacher cache's vulnerability-*.json of sweep {sweep_id!r} "
            f"into it as {VULNERABILITY}, then export again"
        )
    card = model_card(trial_id, meta, row.iloc[0], mine, license=license or "other")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if wrap:
            write_remote_code(tmp, "student")
        card.save(tmp / "README.md")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def model_card(
    trial_id: str, meta: StudentMeta, trial: pd.Series, metrics: pd.DataFrame, *, license: str
) -> ModelCard:
    """The Hub card of a student: metadata (base model, data, measured attacks) and the text around them."""
    config = meta.config
    teacher = config.teacher.pretrained
    datasets = [_source_id(s) for s in (config.data.source, config.data.nonmember_source) if s is not None]
    split = f"eval fold ({_first(metrics, 'n_members')} members, {_first(metrics, 'n_nonmembers')} non-members)"
    results = [
        EvalResult(
            task_type="text-generation", task_name="membership inference (lower is more private)",
            dataset_type=datasets[0], dataset_name=datasets[0], dataset_split=split,
            metric_type=metric_type, metric_name=f"{name} of the {m.attack} attack", metric_config=m.attack,
            metric_value=float(getattr(m, column)),
        )
        for m in metrics.itertuples()
        for column, metric_type, name in CARD_METRICS
        if not math.isnan(getattr(m, column))  # TPR@1% is NaN where the fold cannot resolve 1% FPR
    ]
    data = ModelCardData(
        base_model=teacher, license=license, datasets=datasets, pipeline_tag="text-generation",
        library_name="transformers", tags=["knowledge-distillation", "membership-inference", "mia_kd"],
        model_name=trial_id, eval_results=results or None,
    )
    if teacher is None:
        teacher_text = f"a teacher trained from scratch on {int(trial['n_members'])} member records (no base model)"
    elif config.data.membership == "pretraining":
        teacher_text = f"the teacher `{teacher}` as released (its training records are the members)"
    else:
        teacher_text = f"the teacher `{teacher}`, fine-tuned on {int(trial['n_members'])} member records"
    table = "\n".join(
        f"| {m.attack} | {m.auc:.3f} [{m.auc_low:.3f}, {m.auc_high:.3f}] | {m.tpr:.3f} | {m.tnr:.3f} | "
        + ("– |" if math.isnan(m.tpr_at_fpr_1pct) else
           f"{m.tpr_at_fpr_1pct:.3f} [{m.tpr_at_fpr_1pct_low:.3f}, {m.tpr_at_fpr_1pct_high:.3f}] |")
        for m in metrics.itertuples()
    )
    if meta.acts_when_loaded:
        loading = (
            f"`{meta.method}` acts on this student when it is loaded ({_acts(meta)}), so `config.json` names mia_kd's "
            "remote code and plain `AutoModelForCausalLM.from_pretrained` refuses the folder rather than load it "
            "without its protection. Load it with `AutoModelForCausalLM.from_pretrained(folder, "
            "trust_remote_code=True)` (needs `pip install mia-kd`: mia_kd builds the model) or with "
            "`mia_kd.distill.student.load_student(folder)`."
        )
    else:
        loading = "`AutoModelForCausalLM.from_pretrained(folder)` loads it; `mia_kd.json` records how it was made."
    params = meta.privacy_params
    body = BODY.format(
        trial_id=trial_id, method=meta.method, strength=meta.strength, sweep_id=config.sweep_id, stage=meta.stage,
        params=f", params {json.dumps(params)}" if params else "", teacher=teacher_text,
        n_eval=_first(metrics, "n_members"), n_eval_non=_first(metrics, "n_nonmembers"), table=table,
        task_loss=float(trial["student_task_loss"]), teacher_loss=float(trial["teacher_task_loss"]), loading=loading,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _acts(meta: StudentMeta) -> str:
    if meta.stage == "serve":
        return "it transforms the student's logits every time it is served"
    return "it changed the student's modules, so the weights do not fit the stock architecture"


def _first(metrics: pd.DataFrame, column: str) -> int:
    return int(metrics[column].iloc[0]) if len(metrics) else 0


def _source_id(source: str | dict[str, Any]) -> str:
    """A data source as the card names it: its name, or the dataset (hub id or path) it reads."""
    if isinstance(source, str):
        return source
    return str(source.get("dataset") or source.get("path") or source.get("name"))


def _no_student(root: Path, trial_id: str) -> str:
    """Why ``root/students/<trial_id>/`` is not there, in one line: an unknown trial, or one not kept."""
    folder = root / "students"
    entries = folder.iterdir() if folder.is_dir() else ()
    saved = sorted(p.name for p in entries if p.is_dir() and not p.name.startswith("."))  # "." : a write in progress
    trials = read_table(str(root), "trials", columns=["trial_id", "status", "sweep_id"]).to_pandas()
    row = trials[trials["trial_id"] == trial_id]
    if row.empty:
        shown = ", ".join(saved[:SHOWN_IDS]) + (f", … ({len(saved)} in all)" if len(saved) > SHOWN_IDS else "")
        return (
            f"no trial {trial_id!r} under {str(root)!r}; "
            + (f"saved students: {shown}" if saved else "it holds no saved students")
            + f" (all trials: mia-kd status {root})"
        )
    if (row["status"] == "failed").all():
        return f"trial {trial_id!r} failed, so it has no student; pick a completed trial (mia-kd status {root})"
    policy = _save_students(root, str(row["sweep_id"].iloc[0]))
    return (
        f"trial {trial_id!r} ran but its student was not kept (sweep.save_students: {policy}); rerun the sweep "
        "with sweep.save_students: all to keep every student, or export one that was kept"
    )


def _save_students(root: Path, sweep_id: str) -> str:
    """The sweep's save_students policy from its manifest, or a placeholder when that is unreadable."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return "unknown"
    if manifest.get("sweep_id") != sweep_id:
        return "unknown"
    return str(manifest.get("sweep", {}).get("save_students", "unknown"))
