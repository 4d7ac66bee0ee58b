"""One trial as a recipe: data → teacher → reference → student → scores → attacks → rows (docs/architecture.md §2).

:func:`prepare` does the part every trial of a sweep shares (the split, the tokenizer, the cached teacher and
reference model, the teacher's scores and attacks); :func:`run_student` does the rest for one privacy method at
one strength. Both are plain Python: no Ray, no writes beyond the model cache. The result holds the rows of the
three tables; ``result.write(out)`` puts them in the store.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd import shadows
from mia_kd.attacks import Attacked, privacy_objective, required_passes, run_attacks
from mia_kd.config import ModelConfig, TrainConfig, TrialConfig
from mia_kd.data import Split, prepare_split
from mia_kd.distill.loss import lm_loss
from mia_kd.distill.teacher_cache import build_teacher_logits, should_cache
from mia_kd.distill.trainer import distill
from mia_kd.models.build import build_model
from mia_kd.models.cache import ModelCache, cache_key, default_cache_dir, tokenizer_fingerprint, trained_model
from mia_kd.models.pretrained import check_shared_vocabulary, pretrained_roles
from mia_kd.models.scoring import Scored, ScoringPlan, task_loss
from mia_kd.models.tokenizer import build_tokenizer, encode
from mia_kd.prepared import CachedModel, Prepared, Stopwatch, leakage_transfer, record_parts, setup_runtime
from mia_kd.shadows import ShadowScores
from mia_kd.privacy import MethodContext, Vulnerability, build_method
from mia_kd.store import write_prepared, write_trial
from mia_kd.store.rows import metric_rows, node_id, provenance, records_table, tables, trial_row
from mia_kd.validate import check_config

log = logging.getLogger(__name__)

ROLES = ("teacher", "student")


@dataclass
class TrialResult:
    """The rows one trial adds to each table, plus the trained student (for saving or export)."""

    trial: dict[str, Any]
    metrics: list[dict[str, Any]]
    records: pa.Table  # the student's rows
    # The teacher's and reference model's rows: the prepared state's, the same for every trial that shares it
    shared_records: pa.Table | None = field(default=None, repr=False)
    student: PreTrainedModel | None = field(default=None, repr=False)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False)
    vulnerability: Vulnerability | None = field(default=None, repr=False)  # what the method read, if it did

    @property
    def trial_id(self) -> str:
        return self.trial["trial_id"]

    def tables(self) -> dict[str, pa.Table]:
        return tables(self.trial, self.metrics, self.records)

    def write(self, root: str, *, shared: bool = True) -> list[str]:
        """Write this trial's rows of every table under ``root`` (a folder or URL); the paths written.

        ``shared``: also the prepared state's teacher and reference rows (a sweep writes those once itself).
        """
        row = self.trial
        written = write_prepared(root, row["sweep_id"], row["prepared_key"], self.shared_records) if shared else []
        return written + write_trial(root, sweep_id=row["sweep_id"], method=row["method"], trial_id=row["trial_id"],
                                     tables=self.tables())


def run_trial(config: TrialConfig, *, trial_id: str | None = None, prepared: Prepared | None = None) -> TrialResult:
    """One trial: :func:`prepare` (unless given, e.g. shared by a sweep), the shadow models its attacks read
    (trained here one after the other: ``mia-kd trial`` runs them as local Ray tasks), then :func:`run_student`."""
    prepared, students = shadows.train_here(prepared or prepare(config), config)
    return run_student(prepared, config, trial_id=trial_id, shadow_students=students)


def prepare(config: TrialConfig) -> Prepared:
    """Split, tokenizer, teacher (cached), reference model (cached), the teacher's scores and attacks."""
    config, clock = check_config(config), Stopwatch()
    device, amp = setup_runtime(config)
    cache = ModelCache(config.runtime.cache_dir or default_cache_dir())
    max_len, passes = config.tokenizer.max_length, required_passes(config.attacks)
    log.info("preparing the data split (%s)", config.sweep_id)

    # ---- data: exact membership by construction, the blind check, then the token rows of every pass
    with clock.stage("data"):
        split, blind, _ = prepare_split(config)  # the blind verdict is in blind.passed
        public_texts = [r.text for r in split.public]
        tokenizer = build_tokenizer(config.tokenizer, public_texts)
        check_shared_vocabulary(tokenizer, pretrained_roles(config))
        member_rows, cut = encode(tokenizer, [r.text for r in split.members], max_length=max_len)
        pool_rows, pool_cut = encode(tokenizer, [r.text for r in split.transfer], max_length=max_len) if split.transfer else ([], 0)
        public_rows, _ = encode(tokenizer, public_texts, max_length=max_len)
        plan = ScoringPlan.build(
            tokenizer, [r.text for r in split.attack_records], [r.text for r in split.utility], public_texts, passes,
            max_length=max_len, batch_size=config.runtime.score_batch_size, device=device,
        )
        if cut + pool_cut + plan.n_truncated:
            log.warning("%d records were longer than tokenizer.max_length=%s tokens and were cut",
                        cut + pool_cut + plan.n_truncated, max_len)

    # ---- teacher: trained on the members until it memorises; reference: the student's architecture on public
    precision = {} if amp is None else {"precision": str(amp)}  # mixed precision trains a different model
    common = {"tokenizer": tokenizer_fingerprint(tokenizer), "max_length": max_len, "seed": config.seed, **precision}
    with clock.stage("teacher"):
        # Keyed on the split without its transfer pool: the pool does not change what the teacher is trained on.
        key = cache_key(role="teacher", split=split.without_transfer().fingerprint(), model=config.teacher.model_dump(mode="json"), **common)
        teacher = _cached(cache, "teacher", key, config.teacher, config.teacher.train, tokenizer, member_rows,
                          seed=config.seed, config=config, device=device, amp=amp)
    reference = None
    if passes.reference:
        with clock.stage("reference"):
            key = cache_key(role="reference", public=[r.record_id for r in split.public],
                            model=config.student.model_dump(mode="json"), train=config.reference.model_dump(mode="json"),
                            **common)
            reference = _cached(cache, "reference", key, config.student, config.reference, tokenizer, public_rows,
                                seed=config.seed + 2, config=config, device=device, amp=amp)

    # ---- the teacher's side: scores, attacks (settings fit on calib), metrics (reported on eval)
    with clock.stage("scoring"):
        reference_stats, reference_utility = plan.reference(reference.model) if reference else (None, None)
        teacher_scored = plan.model(teacher.model, reference_stats)
    with clock.stage("metrics"):
        teacher_attacked = _attack(teacher_scored, split, config, skip=shadows.specs_needing_shadows(config))
    # The teacher on the transfer set, once for every trial and epoch (distill.teacher_logits). Keyed by token
    # ids, so a trial distilling on another set than this config's finds no entries and runs the teacher.
    teacher_logits, transfer_rows = None, pool_rows if config.distill.transfer == "disjoint" else member_rows
    if should_cache(config.distill.teacher_logits, transfer_rows, teacher.model, config.distill.teacher_logits_max_mb):
        with clock.stage("teacher_logits"):
            teacher_logits = build_teacher_logits(teacher.model, transfer_rows, pad_id=tokenizer.pad_token_id, device=device,
                                                  batch_size=config.distill.batch_size, amp_dtype=amp)
    prepared = Prepared(
        key=config.prepare_key(), split=split, blind=blind, tokenizer=tokenizer, member_rows=member_rows,
        n_truncated=cut + pool_cut + plan.n_truncated, plan=plan, teacher=teacher, reference=reference,
        reference_stats=reference_stats, reference_utility=reference_utility, teacher_scored=teacher_scored,
        teacher_attacked=teacher_attacked, stage_times=dict(clock.times), node_id=node_id(), teacher_logits=teacher_logits,
        pool_rows=pool_rows,
    )
    prepared.records = prepared.shared_records([s.name for s in config.attacks])  # without shadows: see shadows.attach
    return prepared


def run_student(
    prepared: Prepared, config: TrialConfig, *, trial_id: str | None = None,
    shadow_students: Sequence[ShadowScores] | None = None,
) -> TrialResult:
    """The student's part of a trial: privacy method, distillation, scores, attacks, the result rows.
    ``shadow_students``: this trial's own shadow students (``shadows.online``), else the prepared offline ones."""
    config, p = check_config(config), prepared
    if p.key != config.prepare_key():
        raise ValueError("this trial's config differs from the prepared one outside privacy/distill/student_seed")
    trial_id, started_at, clock, wall = trial_id or uuid.uuid4().hex[:12], datetime.now(UTC), Stopwatch(), time.perf_counter()
    device, amp = setup_runtime(config)
    seed, privacy = config.effective_student_seed, config.privacy

    # ---- the privacy method, with the teacher's vulnerable members it may read
    transfer_rows, transfer_ids = p.transfer_set(config.distill.transfer)
    vulnerability = p.vulnerability(privacy)
    context = MethodContext(vulnerability=vulnerability, vocab_size=len(p.tokenizer), seed=seed, n_records=len(transfer_rows))
    method = build_method(privacy.method, privacy.strength, privacy.params, context)
    serve = method.serve_logits if privacy.stage == "serve" and not method.is_neutral else None
    log.info("trial %s: %s at strength %g (%s stage)", trial_id, privacy.method, privacy.strength, privacy.stage)

    # ---- student: distilled from the teacher on the transfer set (the members, or the disjoint pool)
    with clock.stage("student"):
        torch.manual_seed(seed)
        distilled = distill(
            build_model(config.student, p.tokenizer, seed=seed, role="student"), p.teacher.model.to(device),
            transfer_rows, config.distill, seed=seed, pad_id=p.tokenizer.pad_token_id, device=device,
            progress=config.runtime.progress, method=method if privacy.stage == "train" else None,
            record_ids=transfer_ids, amp_dtype=amp,
            teacher_cache=p.teacher_logits if config.distill.teacher_logits != "recompute" else None,
        )
    with clock.stage("scoring"):
        student_shadows, shadow_summary = shadows.for_trial(p, shadow_students)
        scored = {"teacher": p.teacher_scored, "student": shadows.with_shadows(
            p.plan.model(distilled.student, p.reference_stats, transform=serve), student_shadows)}
    with clock.stage("metrics"):
        attacked = {"teacher": p.teacher_attacked, "student": _attack(scored["student"], p.split, config)}

    # ---- the objectives and the rows
    task = {role: task_loss(scored[role].utility) for role in ROLES}
    objectives = privacy_objective(attacked["student"].rows, config.metrics.privacy_objective)
    leakage = leakage_transfer(attacked["teacher"], attacked["student"], p.split, config)
    if not all(np.isfinite([task["student"], objectives["selection_privacy"], objectives["objective_privacy"]])):
        raise FloatingPointError(f"trial {trial_id}: non-finite objectives (task loss {task['student']}, {objectives})")
    clock.times["total"] = round(time.perf_counter() - wall, 3)
    report = method.report()
    row = trial_row(
        sweep_id=config.sweep_id, trial_id=trial_id, config_hash=config.config_hash(), params=config.model_dump_json(),
        seed=config.seed, student_seed=seed, membership=config.data.membership, method=privacy.method,
        strength=float(privacy.strength), privacy_stage=privacy.stage, privacy_params=json.dumps(privacy.params, sort_keys=True),
        method_report=json.dumps(report, sort_keys=True, default=float), epsilon=report.get("epsilon"),
        vulnerability_attack=vulnerability.attack, n_vulnerable=vulnerability.n_vulnerable,
        n_vulnerable_tokens=int(vulnerability.token_mask.sum()), n_transfer=distilled.n_transfer,
        distill_transfer=config.distill.transfer, n_transfer_pool=len(p.split.transfer), **leakage,
        privacy_objective=config.metrics.privacy_objective, **objectives, objective_utility=task["student"],
        teacher_task_loss=task["teacher"], student_task_loss=task["student"], reference_task_loss=p.reference_utility,
        blind_auc=p.blind.auc, blind_auc_low=p.blind.auc_low, blind_auc_high=p.blind.auc_high,
        split_shifted=not p.blind.passed, split_fingerprint=p.split.fingerprint(), n_members=len(p.split.members),
        n_nonmembers=len(p.split.nonmembers), n_utility=len(p.split.utility), n_public=len(p.split.public),
        n_truncated=p.n_truncated, n_windowed=max(p.plan.n_windowed(p.teacher.model), p.plan.n_windowed(distilled.student)),
        teacher_cache_hit=p.teacher.hit, reference_cache_hit=p.reference.hit if p.reference else None,
        teacher_key=p.teacher.key, prepared_key=p.key, prepare_node_id=p.node_id, wall_time_s=clock.times["total"],
        stage_times=json.dumps({"prepare": p.stage_times, "trial": clock.times, **({"shadows": shadow_summary} if shadow_summary else {})}),
        started_at=started_at,
        device=str(device) + (f" ({amp} autocast)" if amp is not None else ""), **provenance(),
    )
    return TrialResult(
        trial=row, metrics=metric_rows(trial_id, {role: attacked[role].rows for role in ROLES}),
        records=records_table(trial_id, [s.name for s in config.attacks],
                              record_parts(p.split, p.plan, {"student": scored["student"]}, attacked)),
        shared_records=p.records,
        student=distilled.student, tokenizer=p.tokenizer, vulnerability=vulnerability if method.needs_vulnerability else None,
    )


# ------------------------------------------------------------------------------------------------ steps


def _cached(
    cache: ModelCache, kind: str, key: str, model: ModelConfig, schedule: TrainConfig, tokenizer, rows, *, seed: int,
    config: TrialConfig, device: torch.device, amp: torch.dtype | None,
) -> CachedModel:
    trained, hit = trained_model(cache, kind, key, model, tokenizer, rows, schedule, lm_loss, seed=seed, device=device,
                                 progress=config.runtime.progress, amp=amp)
    return CachedModel(trained, key, cache.path(kind, key), hit)


def _attack(scored: Scored, split: Split, config: TrialConfig, skip: list[str] | tuple[str, ...] = ()) -> Attacked:
    """Each attack (but ``skip``): settings, orientation and threshold fit on calib, everything reported on eval."""
    n, n_calib = len(split.attack_records), split.n_calib
    return run_attacks(
        scored.attack, split.attack_labels, np.arange(n_calib), np.arange(n_calib, n), list(config.attacks),
        n_bootstrap=config.metrics.n_bootstrap, seed=config.seed, skip=skip,
    )
