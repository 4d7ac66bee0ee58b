"""The privacy/utility frontier: a PNG and an interactive plotly figure (see the package docstring)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from mia_kd.analysis.plots._common import (
    _MARKERS,
    _SYMBOLS,
    _TEACHER_MARKER,
    CHANCE,
    UTILITY_LABEL,
    X,
    Y,
    _check_points,
    _check_teacher,
    _colours,
    _privacy_axis,
    _privacy_errors,
    _save,
    _span,
    _staircase,
    _styles,
    _with_hypervolume,
)
from mia_kd.objectives import REPORTED_PRIVACY

def frontier_limits(
    points: pd.DataFrame, teacher: pd.DataFrame | None, privacy_label: str
) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((x_low, x_high), (y_low, y_high))`` of the frontier's axes: the points (privacy CIs included), the
    teacher and the chance level, plus :data:`MARGIN` of the span. The hypervolume reference point is left
    out: it lies past the worst point by construction and would squeeze the data into a corner."""
    teacher = _check_teacher(teacher)
    x = [*points[X].to_numpy(np.float64), *teacher["utility"].to_numpy(np.float64)]
    y = [*(points[c].to_numpy(np.float64) for c in (Y, "privacy_low", "privacy_high")),
         *(teacher[c].to_numpy(np.float64) for c in ("privacy", "privacy_low", "privacy_high"))]
    chance = CHANCE.get(privacy_label)
    return _span(x), _span([*np.concatenate(y), *([chance] if chance is not None else [])])


def _edge(reference: Sequence[float], limits) -> tuple[float, float, int, int]:
    """The hypervolume reference ``(utility, privacy)`` clipped into the axes, and per axis whether it was
    clipped (-1 below, +1 above, 0 inside)."""
    (x0, x1), (y0, y1) = limits
    x, y = reference[1], reference[0]
    side = lambda v, lo, hi: -1 if v < lo else (1 if v > hi else 0)  # noqa: E731
    return float(np.clip(x, x0, x1)), float(np.clip(y, y0, y1)), side(x, x0, x1), side(y, y0, y1)


def _reference_text(reference: Sequence[float], privacy_label: str, outside: bool) -> str:
    text = f"hypervolume reference: {privacy_label} {reference[0]:.3g}, task loss {reference[1]:.3g}"
    return text + (" (off the axes, this way)" if outside else "")


def _chance_text(privacy_label: str) -> str:
    return f"chance ({privacy_label} {CHANCE[privacy_label]:g})"


def frontier_png(
    points: pd.DataFrame,
    fronts: pd.DataFrame,
    reference: tuple[float, float],
    privacy_label: str,
    path: str | Path,
    *,
    teacher: pd.DataFrame | None = None,
) -> Path:
    """The privacy/utility frontier as a PNG at ``path`` (see :func:`frontier_axes`). Returns ``path``."""
    return _save(frontier_axes(points, fronts, reference, privacy_label, teacher=teacher).figure, path)


def frontier_axes(
    points: pd.DataFrame,
    fronts: pd.DataFrame,
    reference: tuple[float, float],
    privacy_label: str,
    *,
    teacher: pd.DataFrame | None = None,
):
    """The frontier drawn on a new Agg figure; returns its axes.

    Every trial has its method's colour and marker shape; each method's front is a step line over its own
    points only, the all-methods front thick black, the knee starred, the teacher (``teacher``: one row per
    teacher, :data:`TEACHER_COLUMNS`) a black cross with its CI, chance a dotted line. The axes hold the
    data (:func:`frontier_limits`); the hypervolume reference point, usually far outside, is an
    annotation at the edge pointing its way.
    """
    _check_points(points, fronts, reference)
    teacher = _check_teacher(teacher)
    colours, markers = _colours(points["method"]), _styles(points["method"], _MARKERS)
    limits = frontier_limits(points, teacher, privacy_label)
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    if privacy_label in CHANCE:
        ax.axhline(CHANCE[privacy_label], ls=":", color="grey", lw=1.2, label=_chance_text(privacy_label))
    for method, rows in points.groupby("method", sort=True):
        c, marker = colours[method], markers[method]
        minus, plus = _privacy_errors(rows)
        has_ci = np.isfinite(minus) & np.isfinite(plus)
        if has_ci.any():
            sub = rows[has_ci]
            ax.errorbar(sub[X], sub[Y], yerr=[minus[has_ci], plus[has_ci]],
                        fmt="none", ecolor=c, alpha=0.45, capsize=2, lw=1)
        front = rows["on_method_front"].astype(bool)
        ax.scatter(rows.loc[~front, X], rows.loc[~front, Y], s=25, color=c, marker=marker,
                   alpha=0.6, label=_with_hypervolume(method, fronts, method))
        ax.scatter(rows.loc[front, X], rows.loc[front, Y], s=60, color=c, marker=marker,
                   edgecolor="black", linewidth=1, zorder=3)
        steps = _staircase(rows[front])  # the method's own front points: the line spans their range only
        ax.plot(steps[X], steps[Y], drawstyle="steps-post", color=c, lw=1.5, gid=f"{method} front")
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
    for _, t in teacher.iterrows():
        err = np.nan_to_num([[t["privacy"] - t["privacy_low"]], [t["privacy_high"] - t["privacy"]]]).clip(0)
        ax.errorbar([t["utility"]], [t["privacy"]], yerr=err, fmt=_TEACHER_MARKER, color="black", ms=10, mew=2.5,
                    capsize=3, zorder=5, label=f"teacher ({t['attack']})", gid="teacher")
    x, y, sx, sy = _edge(reference, limits)
    outside = bool(sx or sy)
    ax.scatter(x, y, marker="X" if not outside else "o", s=90 if not outside else 30, color="grey", clip_on=False,
               zorder=5, gid="hypervolume reference")
    # The text runs toward the middle of the axes, so it never leaves them (into the legend).
    right = sx > 0 or (sx == 0 and x > sum(limits[0]) / 2)
    ax.annotate(_reference_text(reference, privacy_label, outside), (x, y), xytext=(-8 if right else 8, -8 * sy or 8),
                textcoords="offset points", fontsize=8, color="dimgrey", annotation_clip=False,
                ha="right" if right else "left", va="top" if sy > 0 else "bottom")
    ax.scatter([], [], s=60, color="white", edgecolor="black", label="on its method's front")
    ax.set(xlim=limits[0], ylim=limits[1])
    ax.set_xlabel(UTILITY_LABEL)
    ax.set_ylabel(_privacy_axis(privacy_label))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9, frameon=False)
    return ax


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
    points: pd.DataFrame,
    fronts: pd.DataFrame,
    reference: tuple[float, float],
    privacy_label: str,
    *,
    teacher: pd.DataFrame | None = None,
) -> go.Figure:
    """The interactive frontier: one marker trace per method (its own colour and symbol, named with its
    hypervolume; front points larger and outlined), one step trace per method front (``"<method> front"``,
    over the method's own front points), the all-methods front (``"all methods front"``), the knee, the
    teacher (``"teacher (<attack>)"``), a chance line; axes clipped to the data (:func:`frontier_limits`),
    the hypervolume reference an annotation at the edge. Hover shows id, method, strength, privacy with
    CI, utility and epsilon when present."""
    _check_points(points, fronts, reference)
    teacher = _check_teacher(teacher)
    colours, symbols = _colours(points["method"]), _styles(points["method"], _SYMBOLS)
    limits = frontier_limits(points, teacher, privacy_label)
    fig = go.Figure()
    for method, rows in points.groupby("method", sort=True):
        front = rows["on_method_front"].astype(bool).to_numpy()
        minus, plus = _privacy_errors(rows)
        fig.add_scatter(
            x=rows[X], y=rows[Y], mode="markers", legendgroup=method,
            name=_with_hypervolume(method, fronts, method), hovertemplate="%{text}<extra></extra>",
            text=[_hover(r, privacy_label) for _, r in rows.iterrows()],
            marker={"color": colours[method], "symbol": symbols[method], "size": np.where(front, 13, 8),
                    "opacity": 0.85, "line": {"color": "black", "width": np.where(front, 1.5, 0)}},
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
    for _, t in teacher.iterrows():
        fig.add_scatter(
            x=[t["utility"]], y=[t["privacy"]], mode="markers", name=f"teacher ({t['attack']})",
            marker={"symbol": "x-thin", "size": 16, "color": "black", "line": {"color": "black", "width": 3}},
            error_y={"type": "data", "symmetric": False, "array": [max(t["privacy_high"] - t["privacy"], 0)],
                     "arrayminus": [max(t["privacy"] - t["privacy_low"], 0)], "color": "black", "thickness": 1},
            hovertemplate=html.escape(f"teacher ({t['attack']})") + "<br>utility %{x:.4f}<br>privacy %{y:.3f}<extra></extra>",
        )
    if privacy_label in CHANCE:
        fig.add_hline(y=CHANCE[privacy_label], line={"dash": "dot", "color": "grey", "width": 1.2},
                      annotation_text=_chance_text(privacy_label), annotation_position="bottom right")
    x, y, sx, sy = _edge(reference, limits)
    outside = bool(sx or sy)
    fig.add_annotation(x=x, y=y, ax=-60 * sx if outside else 40, ay=60 * sy if outside else -40,
                       text=html.escape(_reference_text(reference, privacy_label, outside)),
                       showarrow=True, arrowhead=2, font={"color": "dimgrey", "size": 11}, name="hypervolume reference")
    fig.update_layout(
        xaxis_title=UTILITY_LABEL, yaxis_title=_privacy_axis(privacy_label), template="plotly_white",
        height=600, legend={"x": 1.02, "y": 1, "xanchor": "left"}, margin={"t": 30},
    )
    fig.update_xaxes(range=list(limits[0]))
    fig.update_yaxes(range=list(limits[1]))
    return fig


# -------------------------------------------------------------------------------------------- asymmetry


