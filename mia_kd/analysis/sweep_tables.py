"""What a sweep's report shows beside its fronts, read from the store: the teacher's own privacy, each
attack's eval metrics, DP-SGD's ε, the blind check, failed trials and the provenance of the numbers.

Each function reads a :class:`~mia_kd.analysis.results.Results` (failed trials: the ``trials`` table, as
:class:`Results` holds completed ones only) and returns a plain table or mapping that
:func:`mia_kd.analysis.report.write_report` formats; none of them chooses anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from mia_kd.analysis.results import Results
from mia_kd.objectives import privacy_statistic
from mia_kd.store import MANIFEST, SweepStorage, read_table

__all__ = [
    "ATTACK_COLUMNS",
    "attack_metrics",
    "blind_checks",
    "dp_budgets",
    "failed_trials",
    "provenance",
    "teacher_points",
    "with_auc",
]

# One row per (model, attack): eval metrics with their 95% CIs (TPR@1% FPR is NaN where the eval fold has
# fewer than 100 non-members, fpr_step = 1 / n_nonmembers > 1%).
ATTACK_COLUMNS = ("model", "method", "strength", "attack", "auc", "auc_low", "auc_high",
                  "tpr_at_fpr_1pct", "tpr_at_fpr_1pct_low", "tpr_at_fpr_1pct_high", "fpr_step")


def _teachers(results: Results) -> pd.DataFrame:
    """The first completed trial of each teacher (``teacher_key``; one per sweep unless seeds vary)."""
    done = results.completed
    key = done["teacher_key"].fillna("") if "teacher_key" in done else pd.Series("", index=done.index)
    return done.loc[~key.duplicated()].assign(teacher_key=key)


def teacher_points(results: Results) -> pd.DataFrame:
    """The teacher on the frontier (:data:`mia_kd.analysis.plots.TEACHER_COLUMNS`), one row per teacher:
    its worst attack chosen on calib as a student's is (largest calib statistic), that attack's eval
    value and CI, and the teacher's task loss."""
    stat = privacy_statistic(results.privacy_objective)
    metrics = results.metric("teacher")
    rows = []
    for _, trial in _teachers(results).iterrows():
        mine = metrics[metrics["trial_id"] == trial["trial_id"]]
        if mine.empty:
            continue
        worst = mine.sort_values(stat.calib, kind="stable").iloc[-1]
        rows.append({"attack": worst["attack"], "privacy": worst[stat.name], "privacy_low": worst[stat.low],
                     "privacy_high": worst[stat.high], "utility": trial["teacher_task_loss"]})
    return pd.DataFrame(rows, columns=["attack", "privacy", "privacy_low", "privacy_high", "utility"])


def attack_metrics(results: Results) -> pd.DataFrame:
    """:data:`ATTACK_COLUMNS` of the teacher (``model`` "teacher", one block per teacher) and of every
    student (``model`` = its trial id), sorted by method and strength; the eval fold throughout."""
    teachers = _teachers(results)
    many = len(teachers) > 1
    names = {t: f"teacher {k[:8]}" if many else "teacher"
             for t, k in zip(teachers["trial_id"], teachers["teacher_key"], strict=True)}
    info = results.completed[["trial_id", "method", "strength"]]
    metrics = results.metrics.drop(columns=["sweep_id", "method", "strength"], errors="ignore")  # hive keys
    metrics = metrics.merge(info, on="trial_id")
    teacher = metrics[(metrics["model_role"] == "teacher") & metrics["trial_id"].isin(list(names))]
    teacher = teacher.assign(model=teacher["trial_id"].map(names), method="–", strength=np.nan)
    student = metrics[metrics["model_role"] == "student"]
    student = student.assign(model=student["trial_id"]).sort_values(["method", "strength", "trial_id"], kind="stable")
    frame = pd.concat([teacher, student], ignore_index=True)
    for column in ATTACK_COLUMNS:
        if column not in frame:
            frame[column] = np.nan  # written by an older version
    return frame[list(ATTACK_COLUMNS)].reset_index(drop=True)


def with_auc(rates: pd.DataFrame, results: Results) -> pd.DataFrame:
    """``rates`` (trial × attack × role) with each model's eval ``auc_low``/``auc_high`` beside them, which
    :func:`mia_kd.analysis.plots.no_signal` reads."""
    auc = results.metrics[["trial_id", "model_role", "attack", "auc_low", "auc_high"]]
    auc = auc.rename(columns={"model_role": "role"})
    rates = rates.drop(columns=["auc_low", "auc_high"], errors="ignore")
    return rates.merge(auc, on=["trial_id", "role", "attack"], how="left")


def dp_budgets(results: Results) -> pd.DataFrame:
    """One row per completed trial whose method reported an ε (DP-SGD): ε at δ and what it depends on
    (``method_report``), sorted by method and strength. Empty where no trial reports one."""
    rows = []
    done = results.completed.sort_values(["method", "strength", "trial_id"], kind="stable")
    for _, trial in done.iterrows():
        report = _json(trial.get("method_report"))
        if "epsilon" not in report and not np.isfinite(_float(trial.get("epsilon"))):
            continue
        rows.append({
            "trial_id": trial["trial_id"], "method": trial["method"], "strength": trial["strength"],
            "epsilon": _float(report.get("epsilon", trial.get("epsilon"))), "delta": _float(report.get("delta")),
            **{k: report.get(k) for k in ("noise_multiplier", "max_grad_norm", "sample_rate", "steps", "sampling",
                                          "clip_only", "accountant")},
        })
    columns = ["trial_id", "method", "strength", "epsilon", "delta", "noise_multiplier", "max_grad_norm",
               "sample_rate", "steps", "sampling", "clip_only", "accountant"]
    return pd.DataFrame(rows, columns=columns)


def blind_checks(results: Results) -> pd.DataFrame:
    """One row per split the sweep's trials used (usually one): the text-only classifier's AUC with its
    95% CI, whether the CI contains 0.5, whether the user allowed a shifted split, and how many trials."""
    done = results.completed
    columns = ["split_fingerprint", "blind_auc", "blind_auc_low", "blind_auc_high", "split_shifted"]
    frame = done.reindex(columns=columns).assign(n_trials=1)
    frame["split_fingerprint"] = frame["split_fingerprint"].fillna("–")
    grouped = frame.groupby("split_fingerprint", sort=False, dropna=False).agg(
        blind_auc=("blind_auc", "first"), blind_auc_low=("blind_auc_low", "first"),
        blind_auc_high=("blind_auc_high", "first"), split_shifted=("split_shifted", "any"), n_trials=("n_trials", "sum"),
    ).reset_index()
    low, high = grouped["blind_auc_low"].astype(np.float64), grouped["blind_auc_high"].astype(np.float64)
    grouped["verdict"] = np.where(
        ~np.isfinite(low) | ~np.isfinite(high), "not recorded",
        np.where((low <= 0.5) & (high >= 0.5), "passed: the CI contains 0.5 (no member signal in the text alone)",
                 "failed: the CI excludes 0.5 (the split is not IID; attack AUCs mix membership with the shift)"),
    )
    return grouped


def failed_trials(results: Results) -> pd.DataFrame:
    """The sweep's failed trials with their errors (last line of each), most recent first."""
    columns = ["trial_id", "method", "strength", "privacy_stage", "started_at", "error"]
    trials = read_table(results.root, "trials", sweep_id=results.sweep_id, columns=["status", *columns])
    trials = trials.filter(pc.equal(trials["status"], "failed")).to_pandas()
    if "started_at" in trials:
        trials = trials.sort_values("started_at", ascending=False, kind="stable")
    return trials.reindex(columns=columns).reset_index(drop=True)


def provenance(results: Results) -> dict[str, Any]:
    """Where and with what the numbers were computed, from the completed trials' rows: git revision(s),
    package versions, hosts and devices (each distinct value with its number of trials), and the config
    (``sweep.json``'s sweep and base config where the folder has it, else the first trial's config)."""
    done = results.completed

    def counts(column: str) -> dict[str, int]:
        if column not in done:
            return {}
        values = done[column].astype("string").fillna("not recorded")
        return {str(k): int(v) for k, v in values.value_counts(sort=False).items()}

    versions = {}
    for text, n in counts("package_versions").items():
        versions[text] = {"versions": _json(text) or {"not recorded": ""}, "n_trials": n}
    manifest = _json(SweepStorage.parse(results.root).read_text(MANIFEST))
    if manifest.get("sweep_id") == results.sweep_id and "config" in manifest:
        config = {k: manifest[k] for k in ("config_path", "sweep", "config") if k in manifest}
    else:
        config = json.loads(results.config.model_dump_json())
    return {
        "git revision": counts("git_revision"),
        "package versions": list(versions.values()),
        "hosts": counts("hostname"),
        "devices": counts("device"),
        "config": json.dumps(config, indent=2, sort_keys=True, default=str),
    }


def _json(text: Any) -> Mapping[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")
