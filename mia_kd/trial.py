"""One trial, top to bottom: data split → teacher (cached) → reference (cached) → student → scores → metrics.

``run_trial(config) -> TrialResult`` is plain Python: no Ray, no writes beyond the model cache. The result
holds the rows of the three tables; :func:`mia_kd.store.write_result` puts them in the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd import data as mdata
from mia_kd.attacks import ATTACKS, Attacked, AttackInputs, TokenStats, privacy_objective, run_attacks
from mia_kd.attacks.zlib import zlib_bytes
from mia_kd.config import TrainConfig, TrialConfig
from mia_kd.distill.loss import lm_loss
from mia_kd.distill.trainer import distill
from mia_kd.models.build import build_model, context_length
from mia_kd.models.pretrained import check_shared_vocabulary, pretrained_roles
from mia_kd.models.cache import (
    ModelCache,
    cache_key,
    default_cache_dir,
    load_json,
    save_json,
    tokenizer_fingerprint,
)
from mia_kd.models.scoring import score, task_loss
from mia_kd.models.tokenizer import build_tokenizer, encode, scored_texts
from mia_kd.models.train import autocast_dtype, fit
from mia_kd.privacy import MethodContext, Vulnerability, build_method, compute_vulnerability
from mia_kd.privacy._vulnerability import from_json as vulnerability_from_json
from mia_kd.privacy._vulnerability import to_json as vulnerability_to_json
from mia_kd.store.schema import METRICS, SCHEMA_VERSION, TRIALS, records_schema

log = logging.getLogger(__name__)

ROLES = ("teacher", "student")
PACKAGES = ("mia-kd", "torch", "transformers", "tokenizers", "datasets", "ray", "optuna", "pyarrow", "numpy")


@dataclass
class TrialResult:
    """The rows one trial adds to each table, plus the trained student (for saving or export)."""

    trial: dict[str, Any]
    metrics: list[dict[str, Any]]
    records: pa.Table
    student: PreTrainedModel | None = field(default=None, repr=False)
    tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False)
    vulnerability: Vulnerability | None = field(default=None, repr=False)  # what the method read, if it did

    @property
    def trial_id(self) -> str:
        return self.trial["trial_id"]

    def tables(self) -> dict[str, pa.Table]:
        """The rows of each table, in write order: ``trials`` last, so a trial killed while writing leaves no
        ``trials`` row, and readers (which start from ``trials``) never see its half-written rows."""
        return {
            "records": self.records,
            "metrics": pa.Table.from_pylist(self.metrics, schema=METRICS),
            "trials": pa.Table.from_pylist([self.trial], schema=TRIALS),
        }


@dataclass
class _Stopwatch:
    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - start, 3)


@dataclass(frozen=True)
class _Scored:
    """One model's statistics on the attack records (calib then eval) and on utility."""

    attack: AttackInputs
    utility: TokenStats


@dataclass
class Prepared:
    """Everything a trial needs before its student: built once per sweep and shared by its trials.

    It depends on the config minus ``privacy``, ``distill`` and ``student_seed`` (:func:`prepare_key`):
    the split, tokenizer, teacher, reference model, the teacher's scores and metrics, and the teacher's
    vulnerable subset for each vulnerability setting asked for so far.
    """

    key: str
    split: mdata.Split
    blind: mdata.BlindCheck
    shifted: bool
    tokenizer: PreTrainedTokenizerBase
    member_rows: list[list[int]]
    attack_records: list[mdata.Record]
    labels: np.ndarray  # (n_attack_records,) int8, 1 = member
    n_calib: int
    n_truncated: int
    scoring: _Scoring
    teacher: PreTrainedModel
    teacher_key: str
    teacher_folder: Path
    teacher_hit: bool
    reference: PreTrainedModel | None
    reference_hit: bool | None
    reference_stats: TokenStats | None
    reference_utility: float | None
    teacher_scored: _Scored
    teacher_attacked: Attacked
    stage_times: dict[str, float]
    vulnerabilities: dict[tuple[str, str], Vulnerability] = field(default_factory=dict)

    @property
    def calib_idx(self) -> np.ndarray:
        return np.arange(self.n_calib)

    @property
    def eval_idx(self) -> np.ndarray:
        return np.arange(self.n_calib, len(self.attack_records))

    def vulnerability(self, pcfg) -> Vulnerability:
        key = (pcfg.vulnerability_attack, pcfg.vulnerable_tokens)
        if key not in self.vulnerabilities:
            self.vulnerabilities[key] = _vulnerability(
                self.teacher_folder, self.teacher_attacked, pcfg, self.split, self.labels, self.member_rows,
                len(self.tokenizer),
            )
        return self.vulnerabilities[key]


def prepare_key(config: TrialConfig) -> str:
    """Hash of the config fields that :func:`prepare` depends on."""
    payload = config.model_dump(mode="json", exclude={"runtime", "privacy", "distill", "student_seed", "sweep_id"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def run_trial(config: TrialConfig, *, trial_id: str | None = None, prepared: Prepared | None = None) -> TrialResult:
    """One trial: :func:`prepare` (unless given, e.g. shared by a sweep) then :func:`run_student`."""
    if prepared is None:
        prepared = prepare(config)
    return run_student(prepared, config, trial_id=trial_id)


def prepare(config: TrialConfig) -> Prepared:
    """Split, tokenizer, teacher (cached), reference model (cached), the teacher's scores and metrics."""
    clock = _Stopwatch()
    _runtime(config)
    device = _device(config.runtime.device)
    cache = ModelCache(config.runtime.cache_dir or default_cache_dir())
    progress = config.runtime.progress
    log.info("preparing the data split (%s)", config.sweep_id)

    # ---- data: exact membership by construction, then the blind check
    with clock.stage("data"):
        split, blind, shifted = prepare_split(config)
        public_texts = [r.text for r in split.public]
        tokenizer = build_tokenizer(config.tokenizer, public_texts)
        check_shared_vocabulary(tokenizer, pretrained_roles(config))
        pad_id = tokenizer.pad_token_id
        attack_records = [*split.members_calib, *split.nonmembers_calib, *split.members_eval, *split.nonmembers_eval]
        labels = np.array(
            [1] * len(split.members_calib) + [0] * len(split.nonmembers_calib)
            + [1] * len(split.members_eval) + [0] * len(split.nonmembers_eval),
            dtype=np.int8,
        )
        n_calib = len(split.members_calib) + len(split.nonmembers_calib)
        max_len = config.tokenizer.max_length
        member_rows, t1 = encode(tokenizer, [r.text for r in split.members], max_length=max_len)
        public_rows, _ = encode(tokenizer, public_texts, max_length=max_len)
        attack_rows, t3 = encode(tokenizer, [r.text for r in attack_records], max_length=max_len)
        utility_rows, t4 = encode(tokenizer, [r.text for r in split.utility], max_length=max_len)
        n_truncated = t1 + t3 + t4
        # zlib and lowercase read the text: give them the span the model scores, not the whole record.
        attack_texts = scored_texts(tokenizer, [r.text for r in attack_records], attack_rows, max_length=max_len)
        utility_texts = scored_texts(tokenizer, [r.text for r in split.utility], utility_rows, max_length=max_len)
        if n_truncated:
            log.warning("%d records were longer than tokenizer.max_length=%s tokens and were cut", n_truncated, max_len)

    specs = list(config.attacks)
    needs = set().union(*(ATTACKS.get(s.name).needs for s in specs))
    tok_key = tokenizer_fingerprint(tokenizer)

    # ---- teacher: trained on the members until it memorises (cached by content)
    with clock.stage("teacher"):
        amp = autocast_dtype(device, config.runtime.precision)
        # Mixed precision trains a different model: it joins the key (fp32 keys are unchanged).
        precision = {} if amp is None else {"precision": str(amp)}
        teacher_key = cache_key(
            role="teacher", split=split.fingerprint(), tokenizer=tok_key, max_length=max_len,
            model=config.teacher.model_dump(mode="json"), seed=config.seed, **precision,
        )
        teacher, teacher_hit = _trained_model(
            cache, "teacher", teacher_key, config, tokenizer, member_rows, config.teacher.train,
            seed=config.seed, device=device, progress=progress, amp=amp,
        )
    # ---- reference model: the student's architecture trained on public only (cached by content)
    reference, reference_hit = None, None
    if "reference" in needs:
        with clock.stage("reference"):
            ref_key = cache_key(
                role="reference", public=[r.record_id for r in split.public], tokenizer=tok_key, max_length=max_len,
                model=config.student.model_dump(mode="json"), train=config.reference.model_dump(mode="json"),
                seed=config.seed, **precision,
            )
            reference, reference_hit = _trained_model(
                cache, "reference", ref_key, config, tokenizer, public_rows, config.reference,
                seed=config.seed + 2, device=device, progress=progress, amp=amp,
            )

    # ---- the teacher's side: scores, attacks (settings fit on calib), metrics (reported on eval)
    prefix = None
    if "prefixed" in needs:
        prefix = encode(tokenizer, [" ".join(public_texts[: _recall_shots(specs)])], max_length=10**9)[0][0]
    # Not cut again: the lowercased span may take a few more tokens; past the context it is windowed.
    lowercase_rows = (
        encode(tokenizer, [t.lower() for t in attack_texts], max_length=None)[0] if "lowercase" in needs else None
    )
    scoring = _Scoring(
        texts=attack_texts, utility_texts=utility_texts, rows=attack_rows, lowercase_rows=lowercase_rows,
        utility_rows=utility_rows,
        prefix=prefix, needs=needs, config=config, pad_id=pad_id, device=device,
    )
    with clock.stage("scoring"):
        reference_stats = scoring.stats(reference, attack_rows) if reference is not None else None
        reference_utility = task_loss(scoring.stats(reference, utility_rows)) if reference is not None else None
        teacher_scored = scoring.model(teacher, reference_stats)
    with clock.stage("metrics"):
        calib_idx, eval_idx = np.arange(n_calib), np.arange(n_calib, len(attack_records))
        teacher_attacked = _attack(teacher_scored.attack, labels, calib_idx, eval_idx, specs, config)

    return Prepared(
        key=prepare_key(config), split=split, blind=blind, shifted=shifted, tokenizer=tokenizer,
        member_rows=member_rows, attack_records=attack_records, labels=labels, n_calib=n_calib,
        n_truncated=n_truncated, scoring=scoring, teacher=teacher, teacher_key=teacher_key,
        teacher_folder=cache.path("teacher", teacher_key), teacher_hit=teacher_hit, reference=reference,
        reference_hit=reference_hit, reference_stats=reference_stats, reference_utility=reference_utility,
        teacher_scored=teacher_scored, teacher_attacked=teacher_attacked, stage_times=dict(clock.times),
    )


def run_student(prepared: Prepared, config: TrialConfig, *, trial_id: str | None = None) -> TrialResult:
    """The student's part of a trial: privacy method, distillation, scores, metrics, the result rows."""
    if prepared.key != prepare_key(config):
        raise ValueError("this trial's config differs from the prepared one outside privacy/distill/student_seed")
    trial_id = trial_id or uuid.uuid4().hex[:12]
    started_at = datetime.now(UTC)
    clock = _Stopwatch()
    wall = time.perf_counter()
    _runtime(config)
    device = _device(config.runtime.device)
    amp = autocast_dtype(device, config.runtime.precision)
    p = prepared
    specs = list(config.attacks)
    student_seed = config.student_seed if config.student_seed is not None else config.seed + 1

    # ---- the privacy method, and the teacher's vulnerable members it may need (cached with the teacher)
    pcfg = config.privacy
    vulnerability = p.vulnerability(pcfg)
    method = build_method(
        pcfg.method, pcfg.strength, pcfg.params,
        MethodContext(
            vulnerability=vulnerability, vocab_size=len(p.tokenizer), seed=student_seed, n_records=len(p.member_rows)
        ),
    )
    serve = method if pcfg.stage == "serve" and not method.is_neutral else None
    log.info("trial %s: %s at strength %g (%s stage)", trial_id, pcfg.method, pcfg.strength, pcfg.stage)

    # ---- student: distilled from the teacher on the transfer set (the members)
    with clock.stage("student"):
        torch.manual_seed(student_seed)
        student = build_model(config.student, p.tokenizer, seed=student_seed, role="student")
        distilled = distill(
            student, p.teacher.to(device), p.member_rows, config.distill, seed=student_seed,
            pad_id=p.tokenizer.pad_token_id, device=device, progress=config.runtime.progress,
            method=method if pcfg.stage == "train" else None, record_ids=[r.record_id for r in p.split.members],
            amp_dtype=amp,
        )
        student = distilled.student
    with clock.stage("scoring"):
        scored = {"teacher": p.teacher_scored, "student": p.scoring.model(student, p.reference_stats, transform=serve)}
    with clock.stage("metrics"):
        attacked = {
            "teacher": p.teacher_attacked,
            "student": _attack(scored["student"].attack, p.labels, p.calib_idx, p.eval_idx, specs, config),
        }

    metric_rows = [
        {"schema_version": SCHEMA_VERSION, "trial_id": trial_id, "model_role": role, **row}
        for role in ROLES
        for row in attacked[role].rows
    ]
    task = {role: task_loss(scored[role].utility) for role in ROLES}
    objective_stat = config.metrics.privacy_objective
    privacy = privacy_objective(attacked["student"].rows, objective_stat)
    if not all(np.isfinite([task["student"], privacy["selection_privacy"], privacy["objective_privacy"]])):
        raise FloatingPointError(
            f"trial {trial_id}: non-finite objectives (task loss {task['student']}, {objective_stat} {privacy})"
        )
    clock.times["total"] = round(time.perf_counter() - wall, 3)
    report = method.report()

    trial_row = {
        "schema_version": SCHEMA_VERSION,
        "sweep_id": config.sweep_id,
        "trial_id": trial_id,
        "config_hash": config.config_hash(),
        "status": "completed",
        "error": None,
        "method": pcfg.method,
        "strength": float(pcfg.strength),
        "privacy_stage": pcfg.stage,
        "privacy_params": json.dumps(pcfg.params, sort_keys=True),
        "method_report": json.dumps(report, sort_keys=True, default=float),
        "epsilon": report.get("epsilon"),
        "vulnerability_attack": vulnerability.attack,
        "n_vulnerable": vulnerability.n_vulnerable,
        "n_vulnerable_tokens": int(vulnerability.token_mask.sum()),
        "n_transfer": distilled.n_transfer,
        "params": config.model_dump_json(),
        "seed": config.seed,
        "student_seed": student_seed,
        "privacy_objective": objective_stat,
        **privacy,
        "objective_utility": task["student"],
        "teacher_task_loss": task["teacher"],
        "student_task_loss": task["student"],
        "reference_task_loss": p.reference_utility,
        "blind_auc": p.blind.auc,
        "blind_auc_low": p.blind.auc_low,
        "blind_auc_high": p.blind.auc_high,
        "split_shifted": p.shifted,
        "split_fingerprint": p.split.fingerprint(),
        "n_members": len(p.split.members),
        "n_nonmembers": len(p.split.nonmembers),
        "n_utility": len(p.split.utility),
        "n_public": len(p.split.public),
        "n_truncated": p.n_truncated,
        "n_windowed": max(p.scoring.n_windowed(p.teacher), p.scoring.n_windowed(student)),
        "membership": config.data.membership,
        "teacher_cache_hit": p.teacher_hit,
        "reference_cache_hit": p.reference_hit,
        "teacher_key": p.teacher_key,
        "wall_time_s": clock.times["total"],
        "stage_times": json.dumps({"prepare": p.stage_times, "trial": clock.times}),
        "started_at": started_at,
        "node_id": _node_id(),
        "hostname": socket.gethostname(),
        "device": str(device) + (f" ({amp} autocast)" if amp is not None else ""),
        "package_versions": json.dumps(_package_versions(), sort_keys=True),
        "git_revision": _git_revision(),
    }
    records = _records_table(
        trial_id, p.attack_records, p.scoring.texts, p.labels, p.n_calib, p.split.utility, p.scoring.utility_texts,
        scored, p.reference_stats,
        {role: attacked[role].scores for role in ROLES}, [s.name for s in specs],
    )
    return TrialResult(
        trial=trial_row, metrics=metric_rows, records=records, student=student, tokenizer=p.tokenizer,
        vulnerability=vulnerability if method.needs_vulnerability else None,
    )


def _runtime(config: TrialConfig) -> None:
    if config.runtime.threads:
        torch.set_num_threads(config.runtime.threads)
    torch.manual_seed(config.seed)


# ------------------------------------------------------------------------------------------------- data


def prepare_split(config: TrialConfig) -> tuple[mdata.Split, mdata.BlindCheck, bool]:
    """Load, clean and split the records, run the blind check; refuse a shifted split unless allowed."""
    dcfg = config.data
    sizes = mdata.SplitSizes(
        members=dcfg.members, nonmembers=dcfg.nonmembers, utility=dcfg.utility, public=dcfg.public,
        calib_fraction=dcfg.calib_fraction,
    )
    name, texts = mdata.load_texts(dcfg.source)
    records = mdata.make_records(texts, name)
    if dcfg.nonmember_source is None:
        split = mdata.split_records(records, sizes, seed=config.seed)
    else:
        other, other_texts = mdata.load_texts(dcfg.nonmember_source)
        divide = mdata.split_labelled if dcfg.membership == "pretraining" else mdata.split_shifted
        split = divide(records, mdata.make_records(other_texts, other), sizes, seed=config.seed)
    log.info("split %s", split.summary())
    blind = mdata.blind_check(split, seed=config.seed, n_bootstrap=dcfg.blind_check_bootstrap)
    # Given splits (pretraining) are often separable without a model: the verdict is always shown.
    log.log(
        logging.WARNING if not blind.passed else logging.INFO,
        "blind check: bag-of-words AUC %.3f (95%% CI %.3f–%.3f): %s", blind.auc, blind.auc_low, blind.auc_high,
        "members and non-members are separable without a model" if not blind.passed else "no signal without a model",
    )
    mdata.require_iid(blind, allow_shifted=dcfg.allow_shifted_split)
    return split, blind, not blind.passed


# ----------------------------------------------------------------------------------------------- models


def _trained_model(
    cache: ModelCache,
    kind: str,
    key: str,
    config: TrialConfig,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[list[int]],
    schedule: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    progress: bool,
    amp: torch.dtype | None,
) -> tuple[PreTrainedModel, bool]:
    cached = cache.load(kind, key)
    if cached is not None:
        log.info("%s: reusing the cached model %s (%s)", kind, key, cache.path(kind, key))
        return cached[0].to(device), True
    model_cfg = config.teacher if kind == "teacher" else config.student
    model = build_model(model_cfg, tokenizer, seed=seed, role=kind)
    report = fit(
        model, rows, schedule, lm_loss, seed=seed, pad_id=tokenizer.pad_token_id, device=device,
        desc=f"train {kind}", progress=progress, amp_dtype=amp,
    )
    cache.save(kind, key, model, {"final_loss": report.final_loss, "seconds": report.seconds, "records": len(rows)})
    log.info("%s: trained and cached as %s", kind, key)
    return model, False


@dataclass(frozen=True)
class _Scoring:
    """Everything needed to score one model on the attack records and on utility.

    ``texts`` and ``utility_texts`` are the spans the rows cover (cut where the rows were cut)."""

    texts: list[str]
    utility_texts: list[str]
    rows: list[list[int]]
    lowercase_rows: list[list[int]] | None
    utility_rows: list[list[int]]
    prefix: list[int] | None
    needs: set[str]
    config: TrialConfig
    pad_id: int
    device: torch.device

    def stats(self, model: PreTrainedModel, rows, **kwargs) -> TokenStats:
        return score(
            model, rows, pad_id=self.pad_id, batch_size=self.config.runtime.score_batch_size, device=self.device,
            context=context_length(model), **kwargs,
        )

    def n_windowed(self, model: PreTrainedModel) -> int:
        """Rows of every pass (plain, lowercased, ReCaLL-prefixed, utility) longer than ``model``'s context:
        scored with a sliding window."""
        context = context_length(model)
        if context is None:
            return 0
        passes = [self.rows, self.utility_rows, self.lowercase_rows or []]
        if self.prefix is not None:  # the prefixed pass scores prefix + row[1:]
            passes.append([[*self.prefix, *row[1:]] for row in self.rows])
        return sum(len(row) > context for rows in passes for row in rows)

    def model(self, model: PreTrainedModel, reference: TokenStats | None, transform=None) -> _Scored:
        """One pass per record set: plain (with moments if needed), lowercased, prefixed; and utility.

        ``transform`` is a privacy method acting at serve stage: its ``serve_logits`` wraps the model's logits
        in every pass.
        """
        hook = transform.serve_logits if transform is not None else None
        target = self.stats(model, self.rows, moments="moments" in self.needs, transform=hook)
        lowercase = self.stats(model, self.lowercase_rows, transform=hook) if self.lowercase_rows is not None else None
        prefixed = self.stats(model, self.rows, prefix=self.prefix, transform=hook) if self.prefix is not None else None
        inputs = AttackInputs(texts=self.texts, target=target, lowercase=lowercase, prefixed=prefixed, reference=reference)
        return _Scored(attack=inputs, utility=self.stats(model, self.utility_rows, transform=hook))


def _attack(inputs: AttackInputs, labels, calib_idx, eval_idx, specs, config: TrialConfig) -> Attacked:
    """Each attack: settings chosen on calib, threshold fit on calib, everything reported on eval."""
    return run_attacks(
        inputs, labels, calib_idx, eval_idx, specs, n_bootstrap=config.metrics.n_bootstrap, seed=config.seed
    )


def vulnerability_file(attack: str, tokens_rule: str, member_ids, scores: np.ndarray, threshold: float) -> str:
    """The cache file name of a vulnerable subset: keyed by the values it is computed from (the teacher's
    oriented scores on the members and the calib threshold, which carry the attack's settings, reference
    model and prefix) and the token rule, so changing any of them can never reuse a stale subset."""
    digest = hashlib.sha256()
    digest.update(json.dumps([attack, tokens_rule, float(threshold), list(member_ids)]).encode())
    digest.update(np.ascontiguousarray(scores, dtype=np.float64).tobytes())
    return f"vulnerability-{attack}-{tokens_rule}-{digest.hexdigest()[:16]}.json"


def _vulnerability(teacher_folder: Path, teacher: Attacked, pcfg, split, labels, member_rows, vocab_size) -> Vulnerability:
    """The teacher's vulnerable members under ``pcfg.vulnerability_attack``; cached next to the teacher."""
    # Attack records are calib members, calib non-members, eval members, eval non-members, so the members
    # among them (label 1, in order) are split.members: the transfer set, in member_rows' order.
    member_ids = [r.record_id for r in split.members]
    scores = teacher.scores[pcfg.vulnerability_attack][np.flatnonzero(labels == 1)]
    threshold = teacher.thresholds[pcfg.vulnerability_attack]
    name = vulnerability_file(pcfg.vulnerability_attack, pcfg.vulnerable_tokens, member_ids, scores, threshold)
    cached = load_json(teacher_folder, name)
    if cached is not None:
        return vulnerability_from_json(cached)
    result = compute_vulnerability(
        attack=pcfg.vulnerability_attack,
        member_ids=member_ids,
        member_scores=scores,
        threshold=threshold,
        member_rows=member_rows,
        vocab_size=vocab_size,
        tokens_rule=pcfg.vulnerable_tokens,
    )
    if teacher_folder.is_dir():
        save_json(teacher_folder, name, vulnerability_to_json(result))
    log.info(
        "vulnerable subset: %d of %d members flagged by the teacher's %s attack; %d vulnerable tokens (%s)",
        result.n_vulnerable, len(split.members), result.attack, int(result.token_mask.sum()), result.tokens_rule,
    )
    return result


def _recall_shots(specs) -> int:
    for spec in specs:
        if spec.name == "recall":
            return int(spec.params.get("shots", ATTACKS.get("recall").shots))
    return 0


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ---------------------------------------------------------------------------------------------- records


def _records_table(
    trial_id, attack_records, attack_texts, labels, n_calib, utility_records, utility_texts, scored, reference_stats,
    record_scores, attack_names,
) -> pa.Table:
    n_attack = len(attack_records)
    folds = ["calib"] * n_calib + ["eval"] * (n_attack - n_calib)
    columns: dict[str, list] = {name: [] for name in records_schema(attack_names).names}

    def add(role, records, texts, record_labels, record_folds, stats, lowercase=None, prefixed=None, scores=None):
        n = len(records)
        columns["schema_version"] += [SCHEMA_VERSION] * n
        columns["trial_id"] += [trial_id] * n
        columns["model_role"] += [role] * n
        columns["record_id"] += [r.record_id for r in records]
        columns["label"] += list(record_labels)
        columns["fold"] += list(record_folds)
        columns["n_tokens"] += [len(lp) for lp in stats.logprobs]
        columns["zlib_bytes"] += [zlib_bytes(text) for text in texts]  # of the scored span
        columns["token_logprobs"] += list(stats.logprobs)
        columns["lowercase_token_logprobs"] += list(lowercase.logprobs) if lowercase else [None] * n
        columns["prefixed_token_logprobs"] += list(prefixed.logprobs) if prefixed else [None] * n
        for name in attack_names:
            columns[f"score_{name}"] += list(scores[name]) if scores else [None] * n

    for role in ROLES:
        inputs = scored[role].attack
        add(role, attack_records, attack_texts, labels.tolist(), folds, inputs.target, inputs.lowercase,
            inputs.prefixed, record_scores[role])
        n_u = len(utility_records)
        add(role, utility_records, utility_texts, [None] * n_u, ["utility"] * n_u, scored[role].utility)
    if reference_stats is not None:
        add("reference", attack_records, attack_texts, labels.tolist(), folds, reference_stats)
    return pa.Table.from_pydict(columns, schema=records_schema(attack_names))


# ------------------------------------------------------------------------------------------- provenance


def _package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _node_id() -> str:
    """Ray's node id inside a Ray worker, else the host name (set by the sweep layer via the env)."""
    return os.environ.get("MIA_KD_NODE_ID") or socket.gethostname()
