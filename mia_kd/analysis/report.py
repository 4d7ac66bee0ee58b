"""One self-contained HTML report of a sweep: summary, frontier, per-method tables, teacher-vs-student
asymmetry, ROC curves, the chosen ensemble and the commands that reproduce it all.

The file works offline: plotly.js is inlined once in ``<head>``, each interactive figure is a ``<div>`` that
calls it, and matplotlib figures are base64 PNG ``<img>``. Every piece of text is escaped with
:func:`html.escape`. Each section is an element with a stable id (:data:`SECTIONS`) to link to or test for.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from mia_kd.analysis.plots import Curve, asymmetry_png, frontier_figure, roc_figure

__all__ = ["SECTIONS", "write_report"]

SECTIONS = ("summary", "frontier", "methods", "asymmetry", "roc", "ensemble", "reproduce")

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 1300px; margin: 0 auto; padding: 0 24px 48px; }
h1 { margin: 24px 0 8px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
nav a { margin-right: 14px; color: #1f77b4; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; } pre { background: #f6f6f6; padding: 10px; overflow-x: auto; }
p.note { color: #555; max-width: 900px; }
"""

_ASYMMETRY_NOTE = (
    "TPR (true-positive rate) is the share of training members the attack flags as members: members "
    "exposed, lower is more private. TNR (true-negative rate) is the share of non-members it does not "
    "flag: non-members protected. Both are measured on an eval fold for teacher and student; whiskers "
    "are 95% confidence intervals. The bars split each trial's records by which model flags them as a "
    "member: both, the teacher only, the student only, or neither."
)
_ROC_NOTE = "TPR against FPR on a log scale, so the low-FPR regime, where an attack is most damaging, is visible."


def _format(value: Any) -> str:
    """Display text of one value: floats to 4 significant digits, missing as "–", sequences joined by ", "."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_format(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return ", ".join(_format(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}" if np.isfinite(value) else "–"
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, Number) and not isinstance(value, (bool, np.bool_))
    attributes = ' class="num"' if numeric else ""
    return f"<td{attributes}>{html.escape(_format(value))}</td>"


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(map(_cell, row)) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _key_value_table(mapping: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in mapping.items())
    return f"<table><tbody>{rows}</tbody></table>"


def _plotly_div(fig: go.Figure, div_id: str) -> str:
    # plotly.js itself is inlined once in <head>; plotly escapes "<" in its JSON, so trace text is safe.
    height = f"{fig.layout.height or 550}px"
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, default_height=height,
                       config={"displaylogo": False, "responsive": True})


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{html.escape(title)}</h2>{body}</section>'


def _asymmetry_img(rates: pd.DataFrame, agreement: pd.DataFrame, attack: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        png = asymmetry_png(rates, agreement, attack, Path(tmp) / "asymmetry.png").read_bytes()
    alt = html.escape(f"teacher vs student rates and agreement, attack {attack}", quote=True)
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def write_report(
    path: str | Path,
    *,
    title: str,
    summary: Mapping[str, str],
    points: pd.DataFrame,
    fronts: pd.DataFrame,
    reference: tuple[float, float],
    privacy_label: str,
    method_tables: Mapping[str, pd.DataFrame],
    rates: pd.DataFrame,
    agreement: pd.DataFrame,
    attack: str,
    curves: Sequence[Curve],
    ensemble: Mapping[str, Any] | None,
    commands: Sequence[str],
) -> Path:
    """Write the report to ``path`` (parent folders created) and return it.

    The tables follow the contracts of :mod:`mia_kd.analysis.plots`; ``reference`` is the hypervolume's
    (privacy, utility) point; ``method_tables`` maps a method to its table; ``ensemble`` (e.g. ``members``,
    ``weights``, ``objectives``) is None until one is chosen; ``commands`` reproduce the report.
    """
    frontier = _plotly_div(frontier_figure(points, fronts, reference, privacy_label), "frontier-plot")
    roc = _plotly_div(roc_figure(curves), "roc-plot")
    methods = "".join(f"<h3>{html.escape(m)}</h3>{_table(t)}" for m, t in method_tables.items())
    chosen = (
        _key_value_table(ensemble) if ensemble is not None
        else "<p>no ensemble chosen yet: run <code>mia-kd ensemble DIR</code></p>"
    )
    sections = [
        _section("summary", "Summary", _key_value_table(summary)),
        _section("frontier", "Privacy / utility frontier", frontier + "<h3>Fronts</h3>" + _table(fronts)),
        _section("methods", "Methods", methods or "<p>no per-method tables</p>"),
        _section("asymmetry", f"Teacher vs student ({attack})",
                 f'<p class="note">{html.escape(_ASYMMETRY_NOTE)}</p>' + _asymmetry_img(rates, agreement, attack)),
        _section("roc", "ROC curves", f'<p class="note">{html.escape(_ROC_NOTE)}</p>' + roc),
        _section("ensemble", "Ensemble", chosen),
        _section("reproduce", "Reproduce", f"<pre>{html.escape(chr(10).join(commands))}</pre>"),
    ]
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in SECTIONS)
    document = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{_CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head>'
        f'<body><h1>{html.escape(title)}</h1><nav>{nav}</nav>{"".join(sections)}</body></html>\n'
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path
