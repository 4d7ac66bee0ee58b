"""The study's question per trial: do teacher and student err on different sides?

The study (Cui, Zhang, Pei 2025) found similar attack accuracy for teacher and student but different
errors: the teacher protects members better, the student non-members. Here, per trial and attack, on the
eval fold: each model's TPR (members exposed) and TNR (non-members protected) with their CIs (from
``metrics``), and the 2×2 agreement of the two models' member/non-member predictions per record (from
``records``, each model thresholded at its own threshold fit on calib), split by members and non-members.
And per trial the leakage transfer ratio from ``trials``: the student's TPR@1% FPR over the teacher's on eval
for the attack strongest on the teacher's calib, with its paired bootstrap CI, and the transfer set it was
distilled on (``distill.transfer``). Stores written before these columns existed read them as missing (NaN).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from mia_kd.analysis.results import ROLES, Results
from mia_kd.errors import UserError

RATE_COLUMNS = ("tpr", "tpr_low", "tpr_high", "tnr", "tnr_low", "tnr_high")
CELLS = ("both", "teacher_only", "student_only", "neither")
LEAKAGE_COLUMNS = ("distill_transfer", "n_transfer", "leakage_transfer_attack", "leakage_transfer_ratio",
                   "leakage_transfer_ratio_low", "leakage_transfer_ratio_high")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asymmetry:
    """``rates``: trial × attack × role TPR/TNR with CIs; ``agreement``: trial × attack × label counts of
    :data:`CELLS`; ``leakage``: one row per trial of :data:`LEAKAGE_COLUMNS` (NaN/None where not stored)."""

    rates: pd.DataFrame
    agreement: pd.DataFrame
    leakage: pd.DataFrame | None = None


def check_attack(results: Results, attack: str | None) -> str:
    """``attack``, checked against the sweep's attacks; default ``loss`` (the study's attack) or the first."""
    names = [a.name for a in results.attacks]
    if attack is None:
        return "loss" if "loss" in names else names[0]
    if attack not in names:
        raise UserError(f"--attack: got {attack!r}, the sweep ran: {', '.join(names)}")
    return attack


def compute_asymmetry(results: Results, attacks: list[str]) -> Asymmetry:
    """Rates and agreement of every completed trial for each of ``attacks``."""
    info = results.completed[["trial_id", "method", "strength"]]
    rates = pd.concat([results.metric(role).assign(role=role) for role in ROLES])
    rates = rates[rates["attack"].isin(attacks)][["trial_id", "attack", "role", *RATE_COLUMNS, "threshold"]]
    rates = info.merge(rates, on="trial_id")

    columns = ["trial_id", "model_role", "record_id", "label", *(f"score_{a}" for a in attacks)]
    records = results.records(roles=ROLES, columns=columns + ["fold"])
    by_trial = {trial_id: rows for trial_id, rows in records[records["fold"] == "eval"].groupby("trial_id", sort=False)}
    missing = sorted(set(rates["trial_id"]) - set(by_trial))
    if missing:  # their records file was skipped as unreadable (the store warned): analyse the rest
        log.warning("asymmetry: left out %d trial(s) without readable records: %s", len(missing), ", ".join(missing[:5]))
        rates = rates[~rates["trial_id"].isin(missing)]
        if rates.empty:
            raise UserError("asymmetry: no trial has readable records")
    rows = []
    for (trial_id, attack), pair in rates.groupby(["trial_id", "attack"], sort=False):
        threshold = pair.set_index("role")["threshold"]
        mine = by_trial[trial_id]
        flags = {
            role: mine[mine["model_role"] == role].set_index("record_id")[f"score_{attack}"] >= threshold[role]
            for role in ROLES
        }
        label = mine[mine["model_role"] == "teacher"].set_index("record_id")["label"]
        if not flags["teacher"].index.equals(flags["student"].index):
            flags["student"] = flags["student"].reindex(flags["teacher"].index)
            if flags["student"].isna().any():
                raise UserError(f"trial {trial_id}: teacher and student records differ; the results are corrupt")
        t, s = flags["teacher"].to_numpy(bool), flags["student"].to_numpy(bool)
        for name, value in (("member", 1), ("nonmember", 0)):
            on = label.to_numpy() == value
            rows.append({
                "trial_id": trial_id, "attack": attack, "label": name,
                "both": int((t & s & on).sum()), "teacher_only": int((t & ~s & on).sum()),
                "student_only": int((~t & s & on).sum()), "neither": int((~t & ~s & on).sum()),
            })
    agreement = info.merge(pd.DataFrame(rows), on="trial_id")
    return Asymmetry(rates=rates.drop(columns="threshold").reset_index(drop=True), agreement=agreement,
                     leakage=leakage_table(results.completed[results.completed["trial_id"].isin(rates["trial_id"])]))


def leakage_table(completed: pd.DataFrame) -> pd.DataFrame:
    """``trial_id``, ``method``, ``strength`` and :data:`LEAKAGE_COLUMNS` of ``completed`` trials; a column an
    older store lacks is NaN (the transfer set: ``members``, what every trial before the setting distilled on)."""
    table = completed[["trial_id", "method", "strength"]].copy()
    for column in LEAKAGE_COLUMNS:
        table[column] = completed[column].to_numpy() if column in completed else float("nan")
    if "distill_transfer" not in completed:
        table["distill_transfer"] = "members"
    return table.reset_index(drop=True)


def _ratio(row) -> str:
    if pd.isna(row["leakage_transfer_ratio"]):
        return "n/a"
    return (f"{row['leakage_transfer_ratio']:.3f} [{row['leakage_transfer_ratio_low']:.3f}, "
            f"{row['leakage_transfer_ratio_high']:.3f}]")


def format_asymmetry(asym: Asymmetry, attack: str) -> str:
    """One line per trial: TPR and TNR of teacher (T) and student (S), and the agreement on members and
    non-members as both / teacher only / student only / neither."""
    rates = asym.rates[asym.rates["attack"] == attack]
    wide = rates.pivot_table(index="trial_id", columns="role", values=["tpr", "tnr"])
    agree = asym.agreement[asym.agreement["attack"] == attack]
    lines = [
        f"attack {attack}, eval fold; TPR = members flagged (exposed), TNR = non-members not flagged (protected); "
        "agreement = both / teacher only / student only / neither",
        f"{'trial':<9} {'method':<18} {'strength':>8}  {'TPR T':>6} {'TPR S':>6}  {'TNR T':>6} {'TNR S':>6}  "
        f"{'members':>17}  {'non-members':>17}",
    ]
    info = asym.rates.drop_duplicates("trial_id").set_index("trial_id")
    for trial_id in info.index:
        cells = agree[agree["trial_id"] == trial_id].set_index("label")
        fmt = lambda lab: "/".join(str(int(cells.at[lab, c])) for c in CELLS)  # noqa: E731
        r = wide.loc[trial_id]
        lines.append(
            f"{trial_id:<9} {info.at[trial_id, 'method']:<18} {info.at[trial_id, 'strength']:>8.3g}  "
            f"{r[('tpr', 'teacher')]:>6.3f} {r[('tpr', 'student')]:>6.3f}  {r[('tnr', 'teacher')]:>6.3f} "
            f"{r[('tnr', 'student')]:>6.3f}  {fmt('member'):>17}  {fmt('nonmember'):>17}"
        )
    mean = wide.mean()
    lines.append(
        f"mean over {len(wide)} trials: TPR teacher {mean[('tpr', 'teacher')]:.3f} vs student "
        f"{mean[('tpr', 'student')]:.3f}; TNR teacher {mean[('tnr', 'teacher')]:.3f} vs student "
        f"{mean[('tnr', 'student')]:.3f}"
    )
    if asym.leakage is not None and not asym.leakage.empty:
        lines += [
            "",
            "leakage transfer ratio = student / teacher TPR@1% FPR on eval, for the attack with the highest teacher "
            "TPR@1% FPR on calib (ties: first in config order); 95% paired bootstrap CI over eval records, leaving "
            "out resamples where the teacher's TPR is 0; n/a where the teacher's TPR is 0 or a fold cannot resolve 1% FPR",
            f"{'trial':<9} {'method':<18} {'strength':>8}  {'transfer':<8} {'attack':<10} {'ratio [95% CI]':<24}",
        ]
        for _, row in asym.leakage.iterrows():
            attack_name = row["leakage_transfer_attack"] if isinstance(row["leakage_transfer_attack"], str) else "-"
            transfer = row["distill_transfer"] if isinstance(row["distill_transfer"], str) else "-"
            lines.append(f"{row['trial_id']:<9} {row['method']:<18} {row['strength']:>8.3g}  {transfer:<8} "
                         f"{attack_name:<10} {_ratio(row):<24}")
    return "\n".join(lines)


def write_asymmetry(asym: Asymmetry, attack: str, out, *, baseline: str | None = None) -> list:
    """``asymmetry.parquet`` (rates and agreement, long format) and ``asymmetry.png`` under ``out``; the
    ``baseline`` trial is drawn first, and rows whose attack has no signal (AUC CI holds 0.5) greyed."""
    from mia_kd.analysis import plots

    out.mkdir(parents=True, exist_ok=True)
    parts = [asym.rates.assign(kind="rates"), asym.agreement.assign(kind="agreement")]
    if asym.leakage is not None:
        parts.append(asym.leakage.assign(kind="leakage"))
    table = pd.concat(parts, ignore_index=True)
    path = out / "asymmetry.parquet"
    table.to_parquet(path, index=False)
    return [path, plots.asymmetry_png(asym.rates, asym.agreement, attack, out / "asymmetry.png", baseline=baseline)]


