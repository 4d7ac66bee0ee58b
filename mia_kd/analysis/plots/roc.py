"""ROC curves on a log FPR axis: a PNG and an interactive plotly figure."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure

from mia_kd.analysis.plots._common import _PALETTE, Curve, _save


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
