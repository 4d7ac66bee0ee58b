"""Shadow models: the attacker's copies of the target's recipe, each trained on a known half of the attack records.

LiRA and RMIA (:mod:`mia_kd.attacks.lira`, :mod:`mia_kd.attacks.rmia`) compare the target's statistic on a
record with the same statistic of models trained with and without it (docs/architecture.md §4). A shadow
teacher is trained with the teacher's recipe on the records its mask holds; a shadow student is distilled
from a shadow teacher with the target student's pipeline (privacy method and strength included: the attacker
knows the algorithm). Masks are seeded and balanced: every record is IN for exactly half of the shadows.

Plain Python, one shadow per call, so that a sweep runs each as its own Ray task
(:mod:`mia_kd.sweep.shadow_tasks`) and ``mia-kd trial`` runs the same functions.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mia_kd.attacks import Attacked, ShadowStats, run_attacks
from mia_kd.attacks._util import mean_per_record
from mia_kd.config import PrivacyConfig, TrialConfig
from mia_kd.data import Split
from mia_kd.distill.loss import lm_loss
from mia_kd.distill.trainer import distill
from mia_kd.errors import ConfigError
from mia_kd.models.build import build_model
from mia_kd.models.cache import ModelCache, cache_key, default_cache_dir, tokenizer_fingerprint, trained_model
from mia_kd.models.scoring import Scored, ScoringPlan
from mia_kd.prepared import Prepared, setup_runtime
from mia_kd.privacy import MethodContext, build_method
from mia_kd.store.rows import node_id
from mia_kd.validate import check_config

log = logging.getLogger(__name__)

# Shadow seeds live far from the teacher's (seed), the reference model's (seed + 2) and students' seeds.
SEED_OFFSET = 10_000


def shadow_masks(n_records: int, count: int, seed: int) -> np.ndarray:
    """``(count, n_records)`` bool: which records each shadow trains on. For every record a seeded random
    half of the shadows hold it (``count`` even), so each shadow holds about half of the records."""
    if count < 2 or count % 2:
        raise ConfigError(f"shadows.count: got {count}, must be an even number >= 2 (each record IN for half)")
    rng = np.random.default_rng([seed, SEED_OFFSET])
    ranks = rng.random((count, n_records)).argsort(axis=0)  # a random order of the shadows, per record
    return ranks < count // 2


def shadow_seed(seed: int, index: int) -> int:
    return seed + SEED_OFFSET + index


@dataclass(frozen=True)
class ShadowScores:
    """One shadow model's statistic on every attack record (mean token log-probability), and its mask."""

    index: int
    inside: np.ndarray  # (n_records,) bool
    scores: np.ndarray  # (n_records,) float64
    node_id: str = field(default_factory=node_id)  # where it was trained
    seconds: float = 0.0  # training and scoring it took


def score_records(model: PreTrainedModel, plan, *, transform=None) -> np.ndarray:
    """``(n_records,)`` float64: ``model``'s mean token log-probability of each attack record of ``plan``
    (a :class:`~mia_kd.models.scoring.ScoringPlan`; ``transform`` a serve-stage method's logits wrapper)."""
    with torch.inference_mode():
        stats = plan.stats(model, plan.rows, transform=transform)
    return mean_per_record(stats.logprobs)


def stack(shadows: Sequence[ShadowScores]) -> ShadowStats:
    """The attacks' view of ``shadows`` (in index order)."""
    ordered = sorted(shadows, key=lambda s: s.index)
    return ShadowStats(scores=np.stack([s.scores for s in ordered]).astype(np.float64),
                       inside=np.stack([s.inside for s in ordered]).astype(bool))


@dataclass(frozen=True)
class ShadowJob:
    """What one shadow task needs; picklable, it travels to a Ray worker.

    ``inside``: the shadow's mask over the attack records (``plan.rows``, ids ``record_ids``). A student
    job carries its shadow ``teacher``; ``transfer`` is the disjoint pool's rows under
    ``distill.transfer: disjoint`` (None: the shadow teacher's own records, as the target student's are the
    target teacher's).
    """

    index: int
    inside: np.ndarray
    config: TrialConfig
    tokenizer: PreTrainedTokenizerBase
    plan: ScoringPlan
    record_ids: tuple[str, ...]
    cache_dir: str
    teacher: PreTrainedModel | None = None
    transfer: list[list[int]] | None = None

    @property
    def rows(self) -> list[list[int]]:
        """The shadow's training records (its IN attack records), in attack order."""
        return [self.plan.rows[i] for i in np.flatnonzero(self.inside)]


@dataclass(frozen=True)
class ShadowTeacher:
    scores: ShadowScores
    model: PreTrainedModel  # on the CPU: a shadow student job carries it to any node
    key: str
    hit: bool


def train_teacher(job: ShadowJob, *, threads: int = 1) -> ShadowTeacher:
    """Shadow teacher ``job.index``: the teacher's recipe on its IN records, cached by content like the
    teacher, then scored on every attack record."""
    config, start = job.config, time.perf_counter()
    device, amp = setup_runtime(config, threads=threads)
    cache = ModelCache(job.cache_dir)
    seed = shadow_seed(config.seed, job.index)
    inside_ids = [job.record_ids[i] for i in np.flatnonzero(job.inside)]
    precision = {} if amp is None else {"precision": str(amp)}
    key = cache_key(role="shadow_teacher", records=inside_ids, model=config.teacher.model_dump(mode="json"),
                    tokenizer=tokenizer_fingerprint(job.tokenizer), max_length=config.tokenizer.max_length, seed=seed,
                    **precision)
    model, hit = trained_model(cache, "shadow_teacher", key, config.teacher, job.tokenizer, job.rows,
                               config.teacher.train, lm_loss, seed=seed, device=device, progress=False, amp=amp)
    scores = score_records(model, _on(job.plan, device))
    return ShadowTeacher(ShadowScores(job.index, job.inside, scores, seconds=time.perf_counter() - start), model.cpu(),
                         key, hit)


def train_student(job: ShadowJob, *, threads: int = 1) -> ShadowScores:
    """Shadow student ``job.index``: distilled from ``job.teacher`` with the target student's pipeline
    (``job.config``'s distillation, privacy method and strength), scored on every attack record."""
    config, start = check_config(job.config), time.perf_counter()  # the strength filled in
    privacy = config.privacy
    device, amp = setup_runtime(config, threads=threads)
    seed = shadow_seed(config.effective_student_seed, job.index)
    rows = job.rows if job.transfer is None else job.transfer
    context = MethodContext(vulnerability=None, vocab_size=len(job.tokenizer), seed=seed, n_records=len(rows))
    method = build_method(privacy.method, privacy.strength, privacy.params, context)
    torch.manual_seed(seed)
    distilled = distill(
        build_model(config.student, job.tokenizer, seed=seed, role="student"), job.teacher.to(device), rows,
        config.distill, seed=seed, pad_id=job.tokenizer.pad_token_id, device=device,
        method=method if privacy.stage == "train" else None, amp_dtype=amp,
    )
    serve = method.serve_logits if privacy.stage == "serve" and not method.is_neutral else None
    scores = score_records(distilled.student, _on(job.plan, device), transform=serve)
    return ShadowScores(job.index, job.inside, scores, seconds=time.perf_counter() - start)


def _on(plan: ScoringPlan, device: torch.device) -> ScoringPlan:
    return plan if plan.device == device else dataclasses.replace(plan, device=device)


def specs_needing_shadows(config: TrialConfig) -> list[str]:
    """The configured attacks that read shadow models (``lira``, ``rmia``)."""
    from mia_kd.attacks import ATTACKS

    return [s.name for s in config.attacks if "shadows" in ATTACKS.get(s.name, key="attacks").needs]


@dataclass(frozen=True)
class ShadowInputs:
    """What shadow tasks read of a prepared state (not its teacher, reference model or cached logits, which
    would travel to every task for nothing)."""

    split: Split
    tokenizer: PreTrainedTokenizerBase
    plan: ScoringPlan
    pool_rows: list[list[int]]

    @classmethod
    def of(cls, prepared: Prepared) -> ShadowInputs:
        return cls(prepared.split, prepared.tokenizer, prepared.plan, prepared.pool_rows)


def teacher_jobs(prepared: Prepared | ShadowInputs, config: TrialConfig) -> list[ShadowJob]:
    """One job per shadow teacher (``shadows.count``), masks seeded by ``config.seed``; cached where the
    teacher is (``runtime.cache_dir``)."""
    split, cache_dir = prepared.split, config.runtime.cache_dir or str(default_cache_dir())
    masks = shadow_masks(len(split.attack_records), config.shadows.count, config.seed)
    ids = tuple(r.record_id for r in split.attack_records)
    return [ShadowJob(i, masks[i], config, prepared.tokenizer, prepared.plan, ids, cache_dir)
            for i in range(len(masks))]


def student_jobs(
    prepared: Prepared | ShadowInputs, config: TrialConfig, teachers: Sequence[ShadowTeacher],
) -> list[ShadowJob]:
    """One job per shadow teacher: its student under ``config`` (the trial's method and strength, or the
    neutral point for the once-per-sweep offline shadows)."""
    transfer = None if config.distill.transfer == "members" else prepared.pool_rows
    ids = tuple(r.record_id for r in prepared.split.attack_records)
    return [ShadowJob(t.scores.index, t.scores.inside, config, prepared.tokenizer, prepared.plan, ids, "",
                      teacher=t.model, transfer=transfer)
            for t in teachers]


def offline_config(config: TrialConfig) -> TrialConfig:
    """The config of the once-per-sweep shadow students: plain distillation (the neutral point every method
    shares), so they serve every trial's offline attack."""
    return config.model_copy(update={"privacy": PrivacyConfig(method="none", strength=0.0)})


def with_shadows(scored: Scored, stats: ShadowStats | None) -> Scored:
    """``scored`` with its attack inputs carrying ``stats`` (None: unchanged)."""
    if stats is None:
        return scored
    return dataclasses.replace(scored, attack=dataclasses.replace(scored.attack, shadows=stats))


def summary(teachers: Sequence[ShadowScores], students: Sequence[ShadowScores]) -> dict[str, Any]:
    """What a trial row records of its shadows (``stage_times``' ``shadows``): seconds per shadow teacher and
    student (in index order), and the nodes they ran on."""
    return {"teacher_s": [round(t.seconds, 3) for t in sorted(teachers, key=lambda t: t.index)],
            "student_s": [round(s.seconds, 3) for s in sorted(students, key=lambda s: s.index)],
            "nodes": sorted({s.node_id for s in [*teachers, *students]})}


def for_trial(prepared: Prepared, students: Sequence[ShadowScores] | None) -> tuple[ShadowStats | None, dict[str, Any]]:
    """The shadow students a trial's student attacks read (its own, else the prepared offline ones) and its
    row's shadow summary."""
    if students is None:
        return prepared.shadow_students, prepared.shadow_summary
    own = summary([], students)
    merged = {**prepared.shadow_summary, "student_s": own["student_s"],
              "nodes": sorted({*prepared.shadow_summary.get("nodes", []), *own["nodes"]})}
    return stack(students), merged


def train_here(prepared: Prepared, config: TrialConfig) -> tuple[Prepared, list[ShadowScores] | None]:
    """The shadows ``config``'s attacks read, trained in this process one after the other (a sweep and
    ``mia-kd trial`` run the same functions as Ray tasks, :mod:`mia_kd.sweep.shadow_tasks`): ``prepared``
    with its shadow teachers (and offline students) attached, and this trial's own shadow students
    (``shadows.online``), else None."""
    if not specs_needing_shadows(config):
        return prepared, None
    config = check_config(config)  # the strength filled in
    if prepared.shadow_teachers is None:
        teachers = [train_teacher(job) for job in teacher_jobs(prepared, config)]
        offline = None if config.shadows.online else [
            train_student(job) for job in student_jobs(prepared, offline_config(config), teachers)]
        prepared = attach(prepared, config, teachers, offline)
    if not config.shadows.online:
        return prepared, None
    return prepared, [train_student(job) for job in student_jobs(prepared, config, prepared.shadow_teachers)]


def attach(
    prepared: Prepared, config: TrialConfig, teachers: Sequence[ShadowTeacher], students: Sequence[ShadowScores] | None,
) -> Prepared:
    """``prepared`` with its shadows: the teacher's shadow attacks run (settings and thresholds on calib, as
    every attack), its ``records`` rows rebuilt with the shadow statistics, the shadow teachers kept for
    per-trial shadow students and the offline shadow students' statistics for every trial."""
    p = prepared
    teacher_stats = stack([t.scores for t in teachers])
    scored = with_shadows(p.teacher_scored, teacher_stats)
    attacked = attack_with_shadows(scored, p.split, config, p.teacher_attacked)
    attached = dataclasses.replace(
        p, teacher_scored=scored, teacher_attacked=attacked, shadow_teachers=list(teachers),
        shadow_students=None if students is None else stack(students),
        shadow_summary=summary([t.scores for t in teachers], students or []),
    )
    attached.records = attached.shared_records([s.name for s in config.attacks])
    return attached


def attack_with_shadows(scored: Scored, split: Split, config: TrialConfig, others: Attacked) -> Attacked:
    """The attacks that read shadows run on ``scored`` (whose inputs carry them) and merged, in config order,
    with ``others`` (the same model's other attacks). The bootstrap seeds are those of one run over every
    attack: a spec's seed follows its place in the config."""
    n, n_calib = len(split.attack_records), split.n_calib
    wanted = set(specs_needing_shadows(config))
    extra = run_attacks(
        scored.attack, split.attack_labels, np.arange(n_calib), np.arange(n_calib, n), list(config.attacks),
        n_bootstrap=config.metrics.n_bootstrap, seed=config.seed, skip=[s.name for s in config.attacks if s.name not in wanted],
    )
    rows = {row["attack"]: row for row in [*others.rows, *extra.rows]}
    return Attacked(rows=[rows[s.name] for s in config.attacks if s.name in rows], scores={**others.scores, **extra.scores},
                    thresholds={**others.thresholds, **extra.thresholds})
