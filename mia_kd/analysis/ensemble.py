"""Automatic ensemble selection among a sweep's students, scored exactly from stored per-token log-probs.

The ensemble's output is the weighted mixture of its members' next-token distributions, so its
log-prob of each observed token is ``logsumexp_m(log w_m + ℓ_m)`` (:func:`mia_kd.metrics.mixture_logprobs`): exact
for every attack that reads only observed-token log-probs (loss, zlib, lowercase, min_k, recall,
reference) and for the task loss. Attacks that need the full distribution (min_k_pp's moments) or shadow
models (lira, rmia) are reported as not available rather than approximated.

Selection is greedy forward selection (Caruana et al., "Ensemble Selection from Libraries of Models",
ICML 2004), with or without replacement, minimising the privacy objective on the **calib** fold subject to
a task-loss limit on the *selection half* of the utility records. Every reported number comes from the
**eval** fold and the utility records' *report half* (the halves are fixed by record id), so nothing is
chosen and reported on the same records. For
comparison the study's ensemble (a majority vote of each member's thresholded prediction) is reported too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from mia_kd import metrics
from mia_kd.analysis.results import Results
from mia_kd.attacks import ATTACKS, AttackInputs, TokenStats, fit_attack, privacy_objective, run_attacks
from mia_kd.config import AttackSpec, TrialConfig
from mia_kd.errors import UserError
from mia_kd.metrics import mixture_logprobs
from mia_kd.objectives import REPORTED_PRIVACY, UTILITY
from mia_kd.store import SCHEMA_VERSION

log = logging.getLogger(__name__)

PASSES = {"target": "token_logprobs", "lowercase": "lowercase_token_logprobs", "prefixed": "prefixed_token_logprobs"}
# Passes an ensemble's mixed distribution has no stored counterpart for: the full distribution's moments
# (min_k_pp), and shadow models (lira, rmia: an ensemble's shadows would be ensembles of shadow students).
NOT_FOR_ENSEMBLES = frozenset({"moments", "shadows"})
DEFAULT_MAX_UTILITY_DROP = 0.05
DEFAULT_MAX_SIZE = 5


@dataclass(frozen=True)
class Fold:
    """Per-token log-probs of each candidate on one set of records, flattened: ``flat[pass][trial]`` is
    ``(n_tokens,)`` float64 and ``lengths[pass]`` ``(n_records,)`` splits it into records."""

    labels: np.ndarray | None  # (n_records,) 1 = member (attack records), None for utility
    lengths: dict[str, np.ndarray]
    flat: dict[str, dict[str, np.ndarray]]
    zlib_bytes: np.ndarray | None
    reference: TokenStats | None  # the reference model on these records (same for every candidate)

    def stats(self, which: str, trials: list[str], weights: np.ndarray) -> TokenStats | None:
        """The mixture's :class:`TokenStats` for pass ``which``."""
        if which not in self.flat:
            return None
        if len(trials) == 1:  # the mixture of one is the member itself, bit for bit
            mixed = self.flat[which][trials[0]]
        else:
            mixed = mixture_logprobs([self.flat[which][t] for t in trials], weights)
        return TokenStats(logprobs=tuple(np.split(mixed, np.cumsum(self.lengths[which])[:-1])))

    def inputs(self, trials: list[str], weights: np.ndarray) -> AttackInputs:
        n = len(self.labels)
        return AttackInputs(
            texts=[""] * n, target=self.stats("target", trials, weights),
            lowercase=self.stats("lowercase", trials, weights), prefixed=self.stats("prefixed", trials, weights),
            reference=self.reference, zlib_bytes=self.zlib_bytes,
        )

    def task_loss(self, trials: list[str], weights: np.ndarray) -> float:
        """Token-weighted mean negative log-prob (nats/token), as :func:`mia_kd.models.scoring.task_loss`."""
        flat = self.flat["target"]
        mixed = flat[trials[0]] if len(trials) == 1 else mixture_logprobs([flat[t] for t in trials], weights)
        return -float(mixed.sum()) / len(mixed)


@dataclass(frozen=True)
class Pool:
    """The candidates' statistics: ``calib`` and ``eval`` attack records; the utility records split in two
    fixed halves by record id, ``utility`` (the task-loss limit is checked here) and ``utility_report``
    (reported task losses)."""

    candidates: list[str]
    calib: Fold
    eval: Fold
    utility: Fold
    utility_report: Fold
    specs: list[AttackSpec]  # every configured attack spec (name, params), in config order
    attacks: list[AttackSpec]  # those an ensemble can be scored with
    unavailable: list[str]
    statistic: str  # the privacy objective: auc | balanced_accuracy | tpr_at_fpr_1pct
    n_bootstrap: int
    seed: int
    excluded: dict[str, str] = field(default_factory=dict)  # trial -> why it is not a candidate


@dataclass(frozen=True)
class Choice:
    members: list[str]
    weights: list[float]
    selection_privacy: float  # calib objective of the chosen ensemble
    steps: list[dict]  # each step: the candidate added, the calib objective and task loss after it


def build_pool(results: Results, candidates: list[str] | None = None) -> Pool:
    """Read the candidates' (default: every completed trial's) student records into a :class:`Pool`."""
    done = results.completed
    trials = list(done["trial_id"]) if candidates is None else list(candidates)
    unknown = sorted(set(trials) - set(done["trial_id"]))
    if unknown:
        raise UserError(f"not completed trials of sweep {results.sweep_id!r}: {', '.join(unknown)}")
    columns = ["trial_id", "model_role", "record_id", "label", "fold", "n_tokens", *PASSES.values()]
    records = results.records(roles=("student", "reference"), trial_ids=trials, columns=columns + _zlib_columns(results))
    specs = list(results.attacks)
    unavailable = [s.name for s in specs if ATTACKS.get(s.name).needs & NOT_FOR_ENSEMBLES]
    student = records[records["model_role"] == "student"]
    by_trial = {t: rows.set_index("record_id") for t, rows in student.groupby("trial_id", sort=False)}
    # A trial whose records file was skipped as unreadable (the store warned) cannot be mixed.
    excluded: dict[str, str] = {t: "no readable records" for t in trials if t not in by_trial}
    head = next((t for t in trials if t in by_trial), None)  # whose records set the order of the others'
    if head is None:
        raise UserError(f"none of the {len(trials)} candidate trials has readable records")
    first = student[student["trial_id"] == head]
    order = {fold: first[first["fold"] == fold]["record_id"].tolist() for fold in ("calib", "eval")}
    order["utility"], order["utility_report"] = utility_halves(first[first["fold"] == "utility"]["record_id"])
    reference = records[(records["model_role"] == "reference") & (records["trial_id"] == head)].set_index("record_id")
    folds = {}
    for fold, ids in order.items():
        base = by_trial[head].loc[ids]
        lengths = {"target": base["n_tokens"].to_numpy(np.int64)}
        flat: dict[str, dict[str, np.ndarray]] = {p: {} for p in PASSES}
        for t in trials:
            if t in excluded:
                continue
            rows = by_trial[t].reindex(ids)
            if rows["n_tokens"].isna().any() or not np.array_equal(rows["n_tokens"].to_numpy(np.int64), lengths["target"]):
                excluded[t] = "its records or token counts differ from the others' (another split or tokenizer)"
                continue
            for p, col in PASSES.items():
                if rows[col].isna().any():
                    continue
                flat[p][t] = np.concatenate(rows[col].to_list()).astype(np.float64)
                lengths.setdefault(p, np.array([len(a) for a in rows[col]], dtype=np.int64))
        flat = {p: v for p, v in flat.items() if v}
        attack_fold = fold in ("calib", "eval")
        folds[fold] = Fold(
            labels=base["label"].to_numpy(bool) if attack_fold else None, lengths=lengths, flat=flat,
            zlib_bytes=_zlib(base, by_trial) if attack_fold else None,
            reference=_reference(reference, ids) if attack_fold and len(reference) else None,
        )
    usable = [t for t in trials if t not in excluded]
    for fold in folds.values():  # a pass some candidate lacks cannot be mixed
        for p in list(fold.flat):
            if set(fold.flat[p]) != set(usable):
                del fold.flat[p]
    needs = {"lowercase": "lowercase", "prefixed": "prefixed", "reference": "reference"}
    for spec in specs:
        attack_needs = ATTACKS.get(spec.name).needs
        missing = [n for n in attack_needs if n in needs and (
            (n == "reference" and folds["calib"].reference is None) or (n != "reference" and n not in folds["calib"].flat))]
        if spec.name == "zlib" and folds["calib"].zlib_bytes is None:
            missing.append("zlib_bytes")
        if missing and spec.name not in unavailable:
            unavailable.append(spec.name)
    config = TrialConfig.from_stored(results.completed.set_index("trial_id").at[head, "params"])
    return Pool(
        candidates=usable, calib=folds["calib"], eval=folds["eval"], utility=folds["utility"],
        utility_report=folds["utility_report"], specs=specs,
        attacks=[s for s in specs if s.name not in unavailable], unavailable=unavailable,
        statistic=results.privacy_objective, n_bootstrap=config.metrics.n_bootstrap, seed=config.seed,
        excluded=excluded,
    )


def calib_objective(pool: Pool, trials: list[str], weights: np.ndarray) -> float:
    """The privacy objective on calib only: worst case over the pool's attacks, each with its settings,
    orientation and threshold chosen on calib (in-sample on calib; the eval fold is never read)."""
    inputs, y = pool.calib.inputs(trials, weights), pool.calib.labels
    return max(
        metrics.in_sample_statistic(pool.statistic, fit_attack(spec.name, spec.params, inputs, y).score(inputs), y)
        for spec in pool.attacks
    )


def select(pool: Pool, *, max_task_loss: float, max_size: int = DEFAULT_MAX_SIZE, with_replacement: bool = True) -> Choice:
    """Greedy forward selection: add the candidate that lowers the calib objective most while the
    ensemble's task loss stays ≤ ``max_task_loss``; stop at ``max_size`` steps or when nothing improves.

    With replacement a student may be added again (its weight grows); weights are counts / steps.
    Ties go to the candidate first in ``pool.candidates``.
    """
    if max_size < 1:
        raise UserError(f"--max-size: got {max_size}, must be >= 1")
    chosen: list[str] = []
    best, steps = np.inf, []
    for _ in range(max_size):
        step = None
        for c in pool.candidates:
            if c in chosen and not with_replacement:
                continue
            trials, weights = _mixture(chosen + [c])
            loss = pool.utility.task_loss(trials, weights)
            if loss > max_task_loss:
                continue
            value = calib_objective(pool, trials, weights)
            if step is None or value < step["calib_privacy"]:
                step = {"added": c, "calib_privacy": value, "task_loss": loss}
        if step is None or step["calib_privacy"] >= best:
            break
        chosen.append(step["added"])
        best = step["calib_privacy"]
        steps.append(step)
    if not chosen:
        losses = [pool.utility.task_loss([c], np.ones(1)) for c in pool.candidates]
        raise UserError(
            f"no student meets the task-loss limit {max_task_loss:.4f} (the best has {min(losses):.4f}); "
            "loosen --max-task-loss or --max-utility-drop"
        )
    trials, weights = _mixture(chosen)
    return Choice(members=trials, weights=weights.tolist(), selection_privacy=best, steps=steps)


def evaluate(pool: Pool, trials: list[str], weights: np.ndarray) -> dict:
    """The mixture's eval-fold metrics per attack, its objective (with CI) and task loss (with CI)."""
    both = _concat_folds(pool)
    n_calib = len(pool.calib.labels)
    idx = np.arange(len(both.labels))
    attacked = run_attacks(both.inputs(trials, weights), both.labels.astype(np.int8), idx[:n_calib], idx[n_calib:],
                           pool.specs, n_bootstrap=pool.n_bootstrap, seed=pool.seed, skip=pool.unavailable)
    rows = {row["attack"]: row for row in attacked.rows}
    objective = privacy_objective(attacked.rows, pool.statistic)  # the attack chosen on calib, its eval value
    per_record = pool.utility_report.stats("target", trials, weights).logprobs
    low, high = _task_loss_ci(per_record, n_bootstrap=pool.n_bootstrap, seed=pool.seed)
    return {
        "attack_metrics": rows, **{k: v for k, v in objective.items() if k.startswith(REPORTED_PRIVACY.column)},
        UTILITY.column: pool.utility_report.task_loss(trials, weights), UTILITY.low: low, UTILITY.high: high,
        "scores": attacked.scores,
    }


def majority_vote(
    results: Results, trials: list[str], weights: list[float], *, n_bootstrap: int, seed: int
) -> dict[str, dict]:
    """The study's ensemble: each member flags a record at its own calib threshold; the ensemble flags it
    when members holding more than half the weight do. Eval-fold TPR, TNR and balanced accuracy (with CIs)
    for every configured attack (the vote needs only each member's own scores)."""
    names = [a.name for a in results.attacks]
    thresholds = results.metric("student").set_index(["trial_id", "attack"])["threshold"]
    records = results.records(roles=("student",), trial_ids=trials,
                              columns=["trial_id", "record_id", "label", "fold", *(f"score_{n}" for n in names)])
    by_trial = {t: rows.set_index("record_id") for t, rows in records[records["fold"] == "eval"].groupby("trial_id")}
    ids = by_trial[trials[0]].index
    by_trial = {t: by_trial[t].loc[ids] for t in trials}  # every member in the first one's record order
    labels = by_trial[trials[0]]["label"].to_numpy(bool)
    out = {}
    for name in names:
        votes = np.zeros(len(ids))
        for t, w in zip(trials, weights, strict=True):
            votes += w * (by_trial[t][f"score_{name}"].to_numpy() >= thresholds[(t, name)])
        flagged = (votes > 0.5 + 1e-12).astype(np.float64)
        tpr, tnr = metrics.rates(flagged, labels, 0.5)
        low, high = metrics.bootstrap_ci(lambda s, y: float(np.mean(metrics.rates(s, y, 0.5))), flagged, labels,
                                         n_bootstrap=n_bootstrap, seed=seed)
        out[name] = {"tpr": tpr, "tnr": tnr, "balanced_accuracy": (tpr + tnr) / 2,
                     "balanced_accuracy_low": low, "balanced_accuracy_high": high}
    return out


def resolve_limit(pool: Pool, *, max_task_loss: float | None, max_utility_drop: float | None) -> tuple[float, str]:
    """The task-loss limit and how it was given. Default: a 5% rise over the best single student's loss."""
    if max_task_loss is not None and max_utility_drop is not None:
        raise UserError("give --max-task-loss or --max-utility-drop, not both")
    if max_task_loss is not None:
        return float(max_task_loss), f"max_task_loss={max_task_loss:g}"
    drop = DEFAULT_MAX_UTILITY_DROP if max_utility_drop is None else max_utility_drop
    if not drop >= 0:
        raise UserError(f"--max-utility-drop: got {drop}, must be >= 0 (a fraction: 0.05 = 5%)")
    best = min(pool.utility.task_loss([c], np.ones(1)) for c in pool.candidates)
    return best * (1 + drop), f"max_utility_drop={drop:g} (best single student's task loss {best:.4f} x {1 + drop:g})"


def ensemble_row(pool: Pool, choice: Choice, evaluation: dict, single: dict, *, single_trial: str, limit: float,
                 constraint: str, with_replacement: bool, max_size: int, vote: dict, command: str) -> dict:
    """One row of the ``ensembles`` table."""
    created = datetime.now(UTC)
    key = json.dumps([choice.members, choice.weights, constraint, created.isoformat()])
    return {
        "schema_version": SCHEMA_VERSION, "ensemble_id": hashlib.sha256(key.encode()).hexdigest()[:8],
        "created_at": created, "members": choice.members, "weights": choice.weights,
        "with_replacement": with_replacement, "max_size": max_size, "constraint": constraint, "max_task_loss": limit,
        "privacy_objective": pool.statistic, "attacks": [s.name for s in pool.attacks],
        "unavailable_attacks": pool.unavailable, "selection_privacy": choice.selection_privacy,
        **{k: evaluation[k] for k in (REPORTED_PRIVACY.column, REPORTED_PRIVACY.low, REPORTED_PRIVACY.high,
                                       REPORTED_PRIVACY.attack, UTILITY.column, UTILITY.low, UTILITY.high)},
        "best_single_trial_id": single_trial, "best_single_privacy": single[REPORTED_PRIVACY.column],
        "best_single_utility": single[UTILITY.column],
        "attack_metrics": json.dumps(evaluation["attack_metrics"], default=float),
        "vote_metrics": json.dumps(vote, default=float), "command": command,
    }


@dataclass(frozen=True)
class Chosen:
    """An ensemble chosen and evaluated: what ``mia-kd ensemble`` prints and ``SweepResults.ensemble`` returns."""

    pool: Pool
    choice: Choice
    evaluation: dict  # the mixture on eval: objectives with CIs, per-attack metrics
    vote: dict  # attack -> the study's majority vote's eval metrics
    row: dict  # the ``ensembles`` table row


def choose(results: Results, candidates: list[str] | None = None, *, max_task_loss: float | None = None,
           max_utility_drop: float | None = None, max_size: int = DEFAULT_MAX_SIZE, with_replacement: bool = True,
           command: str = "") -> Chosen:
    """Greedy selection on calib under the task-loss limit, then every reported number from eval."""
    pool = build_pool(results, candidates)
    limit, constraint = resolve_limit(pool, max_task_loss=max_task_loss, max_utility_drop=max_utility_drop)
    choice = select(pool, max_task_loss=limit, max_size=max_size, with_replacement=with_replacement)
    evaluation = evaluate(pool, choice.members, np.array(choice.weights))
    single_trial = choice.steps[0]["added"]
    single = evaluate(pool, [single_trial], np.ones(1))
    vote = majority_vote(results, choice.members, choice.weights, n_bootstrap=pool.n_bootstrap, seed=pool.seed)
    row = ensemble_row(pool, choice, evaluation, single, single_trial=single_trial, limit=limit, constraint=constraint,
                       with_replacement=with_replacement, max_size=max_size, vote=vote, command=command)
    return Chosen(pool, choice, evaluation, vote, row)


# ------------------------------------------------------------------------------------------------ helpers


def utility_halves(record_ids) -> tuple[list[str], list[str]]:
    """The utility records' selection half and report half: every other record in record-id order, so the
    halves are fixed by the records themselves (the same for every candidate and every run)."""
    ids = sorted(record_ids)
    return ids[0::2], ids[1::2]


def _mixture(chosen: list[str]) -> tuple[list[str], np.ndarray]:
    counts = Counter(chosen)
    trials = list(counts)  # first-chosen order
    return trials, np.array([counts[t] for t in trials], dtype=np.float64) / len(chosen)


def _zlib_columns(results: Results) -> list[str]:
    names = {a.name for a in results.attacks}
    cols = ["zlib_bytes"] if "zlib" in names else []
    return cols + (["score_loss", "score_zlib"] if cols and "loss" in names else [])


def _zlib(base: pd.DataFrame, by_trial) -> np.ndarray | None:
    """Each record's zlib-compressed length: stored, or (older results) recovered as loss score / zlib score."""
    if "zlib_bytes" in base and base["zlib_bytes"].notna().all():
        return base["zlib_bytes"].to_numpy(np.float64)
    if {"score_loss", "score_zlib"} <= set(base.columns) and base[["score_loss", "score_zlib"]].notna().all().all():
        return np.round(base["score_loss"].to_numpy() / base["score_zlib"].to_numpy())
    return None


def _reference(reference: pd.DataFrame, ids: list[str]) -> TokenStats | None:
    rows = reference.reindex(ids)
    if rows["token_logprobs"].isna().any():
        return None
    return TokenStats(logprobs=tuple(np.asarray(a, dtype=np.float32) for a in rows["token_logprobs"]))


def _concat_folds(pool: Pool) -> Fold:
    """calib then eval as one fold (attacks fit on the calib part, metrics on the eval part)."""
    a, b = pool.calib, pool.eval
    return Fold(
        labels=np.r_[a.labels, b.labels],
        lengths={p: np.r_[a.lengths[p], b.lengths[p]] for p in a.flat},
        flat={p: {t: np.r_[a.flat[p][t], b.flat[p][t]] for t in a.flat[p]} for p in a.flat},
        zlib_bytes=None if a.zlib_bytes is None else np.r_[a.zlib_bytes, b.zlib_bytes],
        reference=None if a.reference is None else TokenStats(logprobs=a.reference.logprobs + b.reference.logprobs),
    )


def _task_loss_ci(per_record: tuple[np.ndarray, ...], *, n_bootstrap: int, seed: int) -> tuple[float, float]:
    """Bootstrap over records (one group: utility records have no classes) of the token-weighted mean loss:
    95% percentile interval."""
    sums = np.array([-float(np.sum(a)) for a in per_record])
    counts = np.array([len(a) for a in per_record], dtype=np.float64)
    values = metrics.bootstrap_values(
        lambda draws: sums[draws].sum(axis=1) / counts[draws].sum(axis=1), (len(sums),),
        n_bootstrap=n_bootstrap, rng=seed,
    )
    # The quantiles as written, not metrics.percentile_interval's (1 - level) / 2, which differs in the last
    # bit: these intervals are stored, and the same seed must give the same numbers.
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)
