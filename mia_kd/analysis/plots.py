"""Figures of a sweep: the privacy/utility frontier, teacher-vs-student asymmetry, ROC curves.

Static figures are PNGs from matplotlib; they are drawn on a bare :class:`matplotlib.figure.Figure` (Agg
canvas, no pyplot), so nothing needs a display and no global figure state is kept. Interactive figures are
plotly ``Figure`` objects. Every function takes the analysis tables described in its docstring, checks
their columns (a missing one is a ``ValueError`` naming it) and creates the parent folders of ``path``.

Both frontier objectives are minimised: x = utility (task loss, nats/token), y = privacy (e.g. the
worst-case attack AUC); the better corner is the lower left. Which points are on a front is decided on the
calib selection objective; y shows each point's eval value (the reported one), so a front drawn through
them need not be a perfect staircase.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mia_kd.objectives import REPORTED_PRIVACY, UTILITY

__all__ = [
    "Curve",
    "asymmetry_png",
    "frontier_figure",
    "frontier_png",
    "roc_figure",
    "roc_png",
]

# The frontier's axes: the reported values (eval privacy, task loss); fronts were chosen on the selection values.
X, Y = UTILITY.column, REPORTED_PRIVACY.column
POINT_COLUMNS = (
    "trial_id", "method", "strength", Y, "privacy_low", "privacy_high",
    REPORTED_PRIVACY.attack, X, "on_front", "on_method_front", "is_knee", "epsilon",
)
FRONT_COLUMNS = ("method", "n_trials", "n_front", "hypervolume", "knee_trial_id")
RATE_COLUMNS = (
    "trial_id", "method", "strength", "attack", "role",
    "tpr", "tpr_low", "tpr_high", "tnr", "tnr_low", "tnr_high",
)
AGREEMENT_COLUMNS = (
    "trial_id", "method", "strength", "attack", "label", "both", "teacher_only", "student_only", "neither",
)
AGREEMENT_PARTS = ("both", "teacher_only", "student_only", "neither")
UTILITY_LABEL = UTILITY.label

# matplotlib's tab10, shared by both back ends so a method has one colour everywhere.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
_ROLE_STYLE = {"teacher": ("#444444", "o"), "student": ("#d95f02", "D")}
_PART_COLOURS = {"both": "#c0392b", "teacher_only": "#444444", "student_only": "#d95f02", "neither": "#d9d9d9"}


@dataclass(frozen=True)
class Curve:
    """One exact ROC step curve: ``fpr``, ``tpr`` are ``(n_points,)`` rates in [0, 1] from (0, 0) to (1, 1)."""

    name: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float

    def __post_init__(self) -> None:
        fpr, tpr = np.asarray(self.fpr, dtype=np.float64), np.asarray(self.tpr, dtype=np.float64)
        if fpr.ndim != 1 or fpr.shape != tpr.shape or len(fpr) < 2:
            raise ValueError(f"curve {self.name!r}: fpr {fpr.shape} and tpr {tpr.shape} must be equal 1-d, >= 2")
        for key, rate in (("fpr", fpr), ("tpr", tpr)):
            if not np.isfinite(rate).all() or rate.min() < 0 or rate.max() > 1:
                raise ValueError(f"curve {self.name!r}: {key} must lie in [0, 1], got [{rate.min()}, {rate.max()}]")
        object.__setattr__(self, "fpr", fpr)
        object.__setattr__(self, "tpr", tpr)


# ---------------------------------------------------------------------------------------------- helpers


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column {missing[0]!r} (missing {missing}; has {list(frame.columns)})")


def _check_points(points: pd.DataFrame, fronts: pd.DataFrame, reference: Sequence[float]) -> None:
    _require(points, POINT_COLUMNS, "points")
    _require(fronts, FRONT_COLUMNS, "fronts")
    if points.empty:
        raise ValueError("points: no completed trials to plot")
    if len(reference) != 2 or not np.isfinite(np.asarray(reference, dtype=np.float64)).all():
        raise ValueError(f"reference must be a finite (privacy, utility) pair, got {reference!r}")


def _colours(methods: Iterable[str]) -> dict[str, str]:
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(sorted(set(methods)))}


def _with_hypervolume(label: str, fronts: pd.DataFrame, method: str) -> str:
    """``label`` plus the hypervolume of ``method``'s front (``"all"``: all methods) when ``fronts`` has it."""
    hv = fronts.loc[fronts["method"] == method, "hypervolume"].to_numpy(np.float64)
    return f"{label} (HV {hv[0]:.3g})" if len(hv) and np.isfinite(hv[0]) else label


def _staircase(front: pd.DataFrame) -> pd.DataFrame:
    """Front points in drawing order: utility ascending, privacy descending (a 'post' step line)."""
    return front.sort_values([X, Y], ascending=[True, False])


def _privacy_errors(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(minus, plus)`` lengths of the privacy CI whiskers, NaN where the CI is missing."""
    y = frame[Y].to_numpy(np.float64)
    minus = np.clip(y - frame["privacy_low"].to_numpy(np.float64), 0, None)
    plus = np.clip(frame["privacy_high"].to_numpy(np.float64) - y, 0, None)
    return minus, plus


def _privacy_axis(privacy_label: str) -> str:
    return f"privacy: worst-case attack {privacy_label}, eval (attack and front chosen on calib; lower is better)"


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    return path


# --------------------------------------------------------------------------------------------- frontier


def frontier_png(
    points: pd.DataFrame,
    fronts: pd.DataFrame,
    reference: tuple[float, float],
    privacy_label: str,
    path: str | Path,
) -> Path:
    """The privacy/utility frontier as a PNG at ``path``: every trial coloured by method, each method's
    front as a step line, the all-methods front in thick black, the knee starred, the reference point
    (privacy, utility) of the hypervolume marked, privacy CIs as whiskers. Returns ``path``."""
    _check_points(points, fronts, reference)
    colours = _colours(points["method"])
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    for method, rows in points.groupby("method", sort=True):
        c = colours[method]
        minus, plus = _privacy_errors(rows)
        has_ci = np.isfinite(minus) & np.isfinite(plus)
        if has_ci.any():
            sub = rows[has_ci]
            ax.errorbar(sub[X], sub[Y], yerr=[minus[has_ci], plus[has_ci]],
                        fmt="none", ecolor=c, alpha=0.45, capsize=2, lw=1)
        front = rows["on_method_front"].astype(bool)
        ax.scatter(rows.loc[~front, X], rows.loc[~front, Y], s=25, color=c,
                   alpha=0.6, label=_with_hypervolume(method, fronts, method))
        ax.scatter(rows.loc[front, X], rows.loc[front, Y], s=60, color=c,
                   edgecolor="black", linewidth=1, zorder=3)
        steps = _staircase(rows[front])
        ax.plot(steps[X], steps[Y], drawstyle="steps-post", color=c, lw=1.5)
    steps = _staircase(points[points["on_front"].astype(bool)])
    ax.plot(steps[X], steps[Y], drawstyle="steps-post", color="black", lw=3,
            zorder=2, label=_with_hypervolume("all methods front", fronts, "all"))
    for _, knee in points[points["is_knee"].astype(bool)].iterrows():
        ax.scatter(knee[X], knee[Y], marker="*", s=350, color="gold",
                   edgecolor="black", zorder=4, label="knee")
        ax.annotate(f"knee: {knee['trial_id']}\n{knee['method']}@{knee['strength']:.3g}",
                    (knee[X], knee[Y]), xytext=(12, 12),
                    textcoords="offset points", fontsize=9, arrowprops={"arrowstyle": "-", "color": "black"},
                    bbox={"boxstyle": "round", "fc": "white", "ec": "black", "alpha": 0.85})
    ax.scatter(reference[1], reference[0], marker="X", s=90, color="grey", label="hypervolume reference")
    ax.scatter([], [], s=60, color="white", edgecolor="black", label="on its method's front")
    ax.set_xlabel(UTILITY_LABEL)
    ax.set_ylabel(_privacy_axis(privacy_label))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9, frameon=False)
    return _save(fig, path)


def _hover(row: pd.Series, privacy_label: str) -> str:
    ci = ""
    if np.isfinite(row["privacy_low"]) and np.isfinite(row["privacy_high"]):
        ci = f" [{row['privacy_low']:.3f}, {row['privacy_high']:.3f}]"
    lines = [
        f"trial: {row['trial_id']}",
        f"method: {row['method']}",
        f"strength: {row['strength']:g}",
        f"privacy ({privacy_label}, {row[REPORTED_PRIVACY.attack]}): {row[Y]:.3f}{ci}",
        f"utility: {row[X]:.4f} nats/token",
    ]
    if np.isfinite(row["epsilon"]):
        lines.append(f"epsilon: {row['epsilon']:.3g}")
    return "<br>".join(html.escape(line) for line in lines)  # plotly renders hover text as HTML


def frontier_figure(
    points: pd.DataFrame, fronts: pd.DataFrame, reference: tuple[float, float], privacy_label: str
) -> go.Figure:
    """The interactive frontier: one marker trace per method (named with its hypervolume; front points
    larger and outlined), one step trace per method front (``"<method> front"``), the all-methods front
    (``"all methods front"``), the knee, the reference point. Hover shows id, method, strength, privacy
    with CI, utility and epsilon when present."""
    _check_points(points, fronts, reference)
    colours = _colours(points["method"])
    fig = go.Figure()
    for method, rows in points.groupby("method", sort=True):
        front = rows["on_method_front"].astype(bool).to_numpy()
        minus, plus = _privacy_errors(rows)
        fig.add_scatter(
            x=rows[X], y=rows[Y], mode="markers", legendgroup=method,
            name=_with_hypervolume(method, fronts, method), hovertemplate="%{text}<extra></extra>",
            text=[_hover(r, privacy_label) for _, r in rows.iterrows()],
            marker={"color": colours[method], "size": np.where(front, 13, 8), "opacity": 0.85,
                    "line": {"color": "black", "width": np.where(front, 1.5, 0)}},
            error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "color": colours[method], "thickness": 1, "width": 2},
        )
        steps = _staircase(rows[front])
        fig.add_scatter(
            x=steps[X], y=steps[Y], mode="lines", line_shape="hv",
            line={"color": colours[method], "width": 1.5}, name=f"{method} front", legendgroup=method,
            showlegend=False, hoverinfo="skip",
        )
    steps = _staircase(points[points["on_front"].astype(bool)])
    fig.add_scatter(
        x=steps[X], y=steps[Y], mode="lines", line_shape="hv",
        line={"color": "black", "width": 4}, name=_with_hypervolume("all methods front", fronts, "all"),
        hoverinfo="skip",
    )
    knees = points[points["is_knee"].astype(bool)]
    if not knees.empty:
        fig.add_scatter(
            x=knees[X], y=knees[Y], mode="markers", name="knee",
            marker={"symbol": "star", "size": 22, "color": "gold", "line": {"color": "black", "width": 1.5}},
            text=[_hover(r, privacy_label) for _, r in knees.iterrows()], hovertemplate="%{text}<extra>knee</extra>",
        )
        for _, knee in knees.iterrows():
            fig.add_annotation(x=knee[X], y=knee[Y], ax=40, ay=-40,
                               text=html.escape(f"knee: {knee['trial_id']}"), bgcolor="white",
                               bordercolor="black")
    fig.add_scatter(
        x=[reference[1]], y=[reference[0]], mode="markers", name="hypervolume reference",
        marker={"symbol": "x", "size": 12, "color": "grey"},
        hovertemplate="reference<br>utility %{x:.4f}<br>privacy %{y:.3f}<extra></extra>",
    )
    fig.update_layout(
        xaxis_title=UTILITY_LABEL, yaxis_title=_privacy_axis(privacy_label), template="plotly_white",
        height=600, legend={"x": 1.02, "y": 1, "xanchor": "left"}, margin={"t": 30},
    )
    return fig


# -------------------------------------------------------------------------------------------- asymmetry


def _trial_order(*frames: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (``trial_id``, ``label``) sorted by method then strength; label "method@strength"."""
    trials = pd.concat([f[["trial_id", "method", "strength"]] for f in frames]).drop_duplicates("trial_id")
    trials = trials.sort_values(["method", "strength", "trial_id"]).reset_index(drop=True)
    trials["label"] = [f"{m}@{s:.3g}" for m, s in zip(trials["method"], trials["strength"], strict=True)]
    repeated = trials["label"].duplicated(keep=False)  # repeats at one setting: tell them apart by id
    trials.loc[repeated, "label"] += " (" + trials.loc[repeated, "trial_id"].astype(str) + ")"
    return trials


def _per_trial(frame: pd.DataFrame, key: str, name: str) -> dict[str, pd.DataFrame]:
    """``{value of key: frame of its rows indexed by trial_id}``; at most one row per trial and value."""
    duplicated = frame.duplicated(["trial_id", key])
    if duplicated.any():
        raise ValueError(f"{name}: several rows for {dict(frame.loc[duplicated, ['trial_id', key]].iloc[0])}")
    return {value: rows.set_index("trial_id") for value, rows in frame.groupby(key)}


def asymmetry_png(rates: pd.DataFrame, agreement: pd.DataFrame, attack: str, path: str | Path) -> Path:
    """Teacher vs student for one ``attack``, one row per trial ("method@strength"), as a PNG at ``path``.

    (a) TPR (members exposed) and TNR (non-members protected) of teacher and student with 95% CI whiskers;
    (b) per record, who flags it as a member (both / teacher only / student only / neither) as 100% stacked
    bars, members and non-members apart. The height grows with the number of trials. Returns ``path``.
    """
    _require(rates, RATE_COLUMNS, "rates")
    _require(agreement, AGREEMENT_COLUMNS, "agreement")
    if attack not in set(rates["attack"]):
        raise ValueError(f"attack {attack!r} not in rates; has {sorted(set(rates['attack']))}")
    rates, agreement = rates[rates["attack"] == attack], agreement[agreement["attack"] == attack]
    trials = _trial_order(rates, agreement)
    by_role, by_label = _per_trial(rates, "role", "rates"), _per_trial(agreement, "label", "agreement")
    empty_rates, empty_counts = pd.DataFrame(columns=RATE_COLUMNS), pd.DataFrame(columns=AGREEMENT_PARTS)
    y = np.arange(len(trials))

    fig = Figure(figsize=(15, 1.8 + 0.3 * len(trials)), layout="constrained")
    axes = fig.subplots(1, 4, sharey=True, gridspec_kw={"width_ratios": [1, 1, 1.2, 1.2]})
    for ax, rate, title in ((axes[0], "tpr", "(a) TPR: members exposed"),
                            (axes[1], "tnr", "(a) TNR: non-members protected")):
        for offset, role in ((-0.17, "teacher"), (0.17, "student")):
            colour, marker = _ROLE_STYLE[role]
            sub = by_role.get(role, empty_rates).reindex(trials["trial_id"])
            value, low, high = (sub[c].to_numpy(np.float64) for c in (rate, f"{rate}_low", f"{rate}_high"))
            err = np.nan_to_num([value - low, high - value]).clip(0)  # no whisker where the CI is missing
            ax.errorbar(value, y + offset, xerr=err, fmt=marker, color=colour, ms=5, capsize=2, lw=1)
        ax.set(title=title, xlim=(-0.02, 1.02))
        ax.grid(axis="x", alpha=0.3)
    for ax, label, title in ((axes[2], "member", "(b) members: flagged by"),
                             (axes[3], "nonmember", "(b) non-members: flagged by")):
        counts = by_label.get(label, empty_counts).reindex(trials["trial_id"])[list(AGREEMENT_PARTS)]
        counts = counts.to_numpy(np.float64)
        with np.errstate(invalid="ignore"):  # a trial without counts (0 / 0, NaN / NaN) gets no bar
            shares = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
        left = np.zeros(len(trials))
        for part, share in zip(AGREEMENT_PARTS, shares.T, strict=True):
            ax.barh(y, share, left=left, height=0.75, color=_PART_COLOURS[part])
            left += share
        ax.set(title=title, xlim=(0, 1))
        ax.xaxis.set_major_formatter("{x:.0%}")
    axes[0].set(yticks=y, yticklabels=trials["label"], ylim=(len(trials) - 0.5, -0.5))
    role_handles = [Line2D([], [], color=c, marker=m, ls="", label=r) for r, (c, m) in _ROLE_STYLE.items()]
    part_handles = [Patch(color=c, label=p.replace("_", " ")) for p, c in _PART_COLOURS.items()]
    fig.legend(handles=role_handles, loc="outside lower left", ncol=2, frameon=False)
    fig.legend(handles=part_handles, loc="outside lower right", ncol=4, frameon=False)
    fig.suptitle(f"teacher vs student, attack {attack} (eval fold; whiskers: 95% CI)")
    return _save(fig, path)


# -------------------------------------------------------------------------------------------------- ROC


def _check_curves(curves: Sequence[Curve]) -> float:
    """The FPR floor of the log axis: half the smallest positive FPR (1 / (2 n_nonmembers) for an exact
    curve), at most 1e-3; FPR = 0 is drawn there."""
    if not curves:
        raise ValueError("curves: need at least one ROC curve")
    positive = [c.fpr[c.fpr > 0].min() for c in curves if (c.fpr > 0).any()]
    return min(1e-3, min(positive) / 2) if positive else 1e-3


def _fpr_label(floor: float) -> str:
    return f"FPR (log scale; FPR below {floor:.1e} drawn at {floor:.1e})"


def roc_png(curves: Sequence[Curve], path: str | Path) -> Path:
    """ROC curves (TPR vs log-scale FPR, AUC in the legend) with the chance line, as a PNG at ``path``."""
    floor = _check_curves(curves)
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    chance = np.logspace(np.log10(floor), 0, 200)
    ax.plot(chance, chance, ls="--", color="grey", lw=1, label="chance")
    for i, c in enumerate(curves):
        ax.plot(np.maximum(c.fpr, floor), c.tpr, color=_PALETTE[i % len(_PALETTE)], lw=1.8,
                label=f"{c.name} (AUC {c.auc:.3f})")
    ax.set(xscale="log", xlim=(floor, 1), ylim=(0, 1.01), xlabel=_fpr_label(floor), ylabel="TPR")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=9)
    return _save(fig, path)


def roc_figure(curves: Sequence[Curve]) -> go.Figure:
    """Interactive ROC curves: one trace per curve named with its AUC, a chance trace, log-scale FPR."""
    floor = _check_curves(curves)
    fig = go.Figure()
    chance = np.logspace(np.log10(floor), 0, 200)
    fig.add_scatter(x=chance, y=chance, mode="lines", name="chance", line={"dash": "dash", "color": "grey"},
                    hoverinfo="skip")
    for i, c in enumerate(curves):
        fig.add_scatter(
            x=np.maximum(c.fpr, floor), y=c.tpr, mode="lines", name=f"{c.name} (AUC {c.auc:.3f})",
            line={"color": _PALETTE[i % len(_PALETTE)], "width": 2},
            hovertemplate=f"{html.escape(c.name)}<br>FPR %{{x:.2e}}<br>TPR %{{y:.3f}}<extra></extra>",
        )
    fig.update_layout(template="plotly_white", height=550, yaxis_title="TPR", xaxis_title=_fpr_label(floor),
                      margin={"t": 30})
    fig.update_xaxes(type="log", range=[np.log10(floor), 0])
    fig.update_yaxes(range=[0, 1.01])
    return fig
