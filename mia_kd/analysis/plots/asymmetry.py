"""Teacher vs student: TPR, TNR and the agreement of their per-record predictions, per trial."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mia_kd.analysis.plots._common import (
    _PART_COLOURS,
    _ROLE_STYLE,
    AGREEMENT_COLUMNS,
    AGREEMENT_PARTS,
    RATE_COLUMNS,
    _require,
    _save,
)


def _trial_order(*frames: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per trial (``trial_id``, ``label``) sorted by method then strength, the ``baseline`` trial
    (if any) first; label "method@strength"."""
    trials = pd.concat([f[["trial_id", "method", "strength"]] for f in frames]).drop_duplicates("trial_id")
    trials = trials.assign(first=trials["trial_id"] != baseline)  # False sorts first
    trials = trials.sort_values(["first", "method", "strength", "trial_id"]).drop(columns="first").reset_index(drop=True)
    trials["label"] = [f"{m}@{s:.3g}" for m, s in zip(trials["method"], trials["strength"], strict=True)]
    repeated = trials["label"].duplicated(keep=False)  # repeats at one setting: tell them apart by id
    trials.loc[repeated, "label"] += " (" + trials.loc[repeated, "trial_id"].astype(str) + ")"
    trials.loc[trials["trial_id"] == baseline, "label"] = "baseline: " + trials["label"] + " (plain distillation)"
    return trials


def _per_trial(frame: pd.DataFrame, key: str, name: str) -> dict[str, pd.DataFrame]:
    """``{value of key: frame of its rows indexed by trial_id}``; at most one row per trial and value."""
    duplicated = frame.duplicated(["trial_id", key])
    if duplicated.any():
        raise ValueError(f"{name}: several rows for {dict(frame.loc[duplicated, ['trial_id', key]].iloc[0])}")
    return {value: rows.set_index("trial_id") for value, rows in frame.groupby(key)}


def no_signal(rates: pd.DataFrame, role: str = "student") -> pd.Series:
    """Per trial (index ``trial_id``): whether ``role``'s attack AUC 95% CI contains 0.5, i.e. the attack
    tells members from non-members no better than a coin on this fold, so its TPR and TNR are noise around
    its threshold. False where ``rates`` has no ``auc_low``/``auc_high`` (nothing to judge by)."""
    rows = rates[rates["role"] == role].set_index("trial_id")
    if not {"auc_low", "auc_high"} <= set(rates.columns):
        return pd.Series(False, index=rows.index)
    low, high = rows["auc_low"].astype(np.float64), rows["auc_high"].astype(np.float64)
    return (low <= 0.5) & (high >= 0.5)


def _constant(rows: pd.DataFrame, columns: Sequence[str]) -> bool:
    """Whether every row holds the same values in ``columns`` (one teacher seen in every trial)."""
    values = rows[list(columns)].to_numpy(np.float64)
    return len(values) > 1 and bool(np.all(np.isclose(values, values[0], equal_nan=True)))


_GREY, _GREY_ROW = "#9a9a9a", "#ececec"
PANELS = ("(a) TPR: members exposed", "(b) TNR: non-members protected",
          "(c) members: flagged by", "(d) non-members: flagged by")


def asymmetry_png(
    rates: pd.DataFrame, agreement: pd.DataFrame, attack: str, path: str | Path, *, baseline: str | None = None
) -> Path:
    """Teacher vs student for one ``attack`` as a PNG at ``path`` (see :func:`asymmetry_axes`). Returns ``path``."""
    return _save(asymmetry_axes(rates, agreement, attack, baseline=baseline)[0].figure, path)


def asymmetry_axes(
    rates: pd.DataFrame, agreement: pd.DataFrame, attack: str, *, baseline: str | None = None
) -> np.ndarray:
    """Teacher vs student for one ``attack``, one row per trial ("method@strength"), on a new Agg figure;
    returns its four axes.

    (a) TPR (members exposed) and (b) TNR (non-members protected) of teacher and student with 95% CI
    whiskers; the teacher, the same model with the same rates in every trial of a sweep, is drawn once, as
    a line and its CI band (as markers per row where the rates differ). (c), (d): per record, who flags it
    as a member (both / teacher only / student only / neither) as 100% stacked bars, members and
    non-members apart. ``baseline`` (a trial id: the sweep's neutral, plain-distillation trial, which
    every method's front shares) is drawn once, as the first row. Rows where the student's attack has no
    signal (:func:`no_signal`; ``rates`` may carry ``auc_low``/``auc_high``) are greyed. The height grows
    with the number of trials.
    """
    _require(rates, RATE_COLUMNS, "rates")
    _require(agreement, AGREEMENT_COLUMNS, "agreement")
    if attack not in set(rates["attack"]):
        raise ValueError(f"attack {attack!r} not in rates; has {sorted(set(rates['attack']))}")
    rates, agreement = rates[rates["attack"] == attack], agreement[agreement["attack"] == attack]
    trials = _trial_order(rates, agreement, baseline=baseline)
    by_role, by_label = _per_trial(rates, "role", "rates"), _per_trial(agreement, "label", "agreement")
    empty_rates, empty_counts = pd.DataFrame(columns=RATE_COLUMNS), pd.DataFrame(columns=AGREEMENT_PARTS)
    y = np.arange(len(trials))
    grey = no_signal(rates).reindex(trials["trial_id"], fill_value=False).to_numpy(bool)
    teacher = by_role.get("teacher", empty_rates).reindex(trials["trial_id"])
    teacher_once = _constant(teacher, RATE_COLUMNS[5:])  # tpr, tpr_low, ..., tnr_high

    fig = Figure(figsize=(15, 1.8 + 0.3 * len(trials)), layout="constrained")
    axes = fig.subplots(1, 4, sharey=True, gridspec_kw={"width_ratios": [1, 1, 1.2, 1.2]})
    for ax in axes:
        for row in y[grey]:
            ax.axhspan(row - 0.5, row + 0.5, color=_GREY_ROW, zorder=0, lw=0)
        if baseline is not None and (trials["trial_id"] == baseline).any() and len(trials) > 1:
            ax.axhline(0.5, color="black", lw=0.8)  # the baseline row apart from the methods' rows
    for ax, rate, title in ((axes[0], "tpr", PANELS[0]), (axes[1], "tnr", PANELS[1])):
        for offset, role in ((-0.17, "teacher"), (0.17, "student")):
            colour, marker = _ROLE_STYLE[role]
            sub = by_role.get(role, empty_rates).reindex(trials["trial_id"])
            value, low, high = (sub[c].to_numpy(np.float64) for c in (rate, f"{rate}_low", f"{rate}_high"))
            if role == "teacher" and teacher_once:
                ax.axvspan(low[0], high[0], color=colour, alpha=0.12, lw=0, gid="teacher")
                ax.axvline(value[0], color=colour, lw=1.5, gid="teacher")
                continue
            err = np.nan_to_num([value - low, high - value]).clip(0)  # no whisker where the CI is missing
            colours = np.where(grey, _GREY, colour) if role == "student" else np.full(len(y), colour)
            for c in dict.fromkeys(colours):
                on = colours == c
                ax.errorbar(value[on], y[on] + offset * (not teacher_once), xerr=err[:, on], fmt=marker, color=c,
                            ms=5, capsize=2, lw=1)
        ax.set(title=title, xlim=(-0.02, 1.02))
        ax.grid(axis="x", alpha=0.3)
    for ax, label, title in ((axes[2], "member", PANELS[2]), (axes[3], "nonmember", PANELS[3])):
        counts = by_label.get(label, empty_counts).reindex(trials["trial_id"])[list(AGREEMENT_PARTS)]
        counts = counts.to_numpy(np.float64)
        with np.errstate(invalid="ignore"):  # a trial without counts (0 / 0, NaN / NaN) gets no bar
            shares = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
        left = np.zeros(len(trials))
        for part, share in zip(AGREEMENT_PARTS, shares.T, strict=True):
            bars = ax.barh(y, share, left=left, height=0.75, color=_PART_COLOURS[part])
            for bar, faded in zip(bars, grey, strict=True):
                bar.set_alpha(0.35 if faded else 1.0)
            left += share
        ax.set(title=title, xlim=(0, 1))
        ax.xaxis.set_major_formatter("{x:.0%}")
    axes[0].set(yticks=y, yticklabels=trials["label"], ylim=(len(trials) - 0.5, -0.5))
    for tick, faded in zip(axes[0].get_yticklabels(), grey, strict=True):
        tick.set_color(_GREY if faded else "black")
    role_handles = [Line2D([], [], color=c, marker=m, ls="", label=r) for r, (c, m) in _ROLE_STYLE.items()]
    if teacher_once:
        role_handles[0] = Line2D([], [], color=_ROLE_STYLE["teacher"][0], lw=1.5, label="teacher (same in every row)")
    if grey.any():
        role_handles.append(Patch(color=_GREY_ROW, label="no signal: the student's attack AUC 95% CI contains 0.5"))
    part_handles = [Patch(color=c, label=p.replace("_", " ")) for p, c in _PART_COLOURS.items()]
    fig.legend(handles=role_handles, loc="outside lower left", ncol=len(role_handles), frameon=False)
    fig.legend(handles=part_handles, loc="outside lower right", ncol=4, frameon=False)
    fig.suptitle(f"teacher vs student, attack {attack} (eval fold; whiskers and band: 95% CI)")
    return axes


# -------------------------------------------------------------------------------------------------- ROC


