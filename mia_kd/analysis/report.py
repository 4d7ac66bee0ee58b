"""One self-contained HTML report of a sweep: summary, blind check, frontier, per-method tables, each
attack's eval metrics, DP-SGD's ε, teacher-vs-student asymmetry, ROC curves, the chosen ensemble, failed
trials, provenance and the commands that reproduce it all.

By default the file works offline: plotly.js (4.8 MB) is inlined once in ``<head>``; ``plotly_js="cdn"``
loads it from plotly's CDN instead (a small file that needs the network to draw). Each interactive figure
is a ``<div>`` that calls it, and matplotlib figures are base64 PNG ``<img>``. Every piece of text is
escaped with :func:`html.escape`. Each section is an element with a stable id (:data:`SECTIONS`) to link
to or test for.
"""

from __future__ import annotations

import base64
import hashlib
import html
import tempfile
from collections.abc import Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from mia_kd.analysis.plots import Curve, asymmetry_png, frontier_figure, no_signal, roc_figure

__all__ = ["PLOTLY_JS", "SECTIONS", "plotly_cdn_url", "write_report"]

SECTIONS = ("summary", "blind", "frontier", "methods", "attacks", "epsilon", "asymmetry", "roc", "ensemble",
            "failed", "provenance", "reproduce")
PLOTLY_JS = ("inline", "cdn")

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
_BLIND_NOTE = (
    "Before any model is trained, a bag-of-words classifier with no model access tries to tell members from "
    "non-members by their text alone. If its AUC's 95% CI contains 0.5 the split is as good as IID and an "
    "attack's success is membership; if not, the attacks partly measure the shift between the two sets."
)
_ATTACKS_NOTE = (
    "Eval fold (attack settings, orientation and thresholds were chosen on calib). Each cell: the value and "
    "its 95% bootstrap CI. TPR at 1% FPR is missing (–) where the eval fold has fewer than 100 non-members "
    "and so cannot resolve a 1% FPR."
)
_EPSILON_NOTE = (
    "DP-SGD's (ε, δ) from its RDP accountant after training. Its scope: a bound on a transfer record's "
    "influence on the student given a fixed teacher, not on what the student reveals about the teacher's "
    "members. ε = inf: clipping without noise, no guarantee."
)


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


def plotly_cdn_url() -> str:
    """plotly's CDN address of the plotly.js this plotly package bundles."""
    return f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"


def _plotly_script(mode: str) -> str:
    """The one ``<script>`` that loads plotly.js: inlined, or from the CDN with an integrity hash of the
    bundled file (a browser refuses a CDN file that differs from what the figures were made for)."""
    if mode not in PLOTLY_JS:
        raise ValueError(f"plotly_js: got {mode!r}; allowed: {', '.join(PLOTLY_JS)}")
    js = get_plotlyjs()
    if mode == "inline":
        return f'<script type="text/javascript">{js}</script>'
    sri = "sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    return f'<script charset="utf-8" src="{plotly_cdn_url()}" integrity="{sri}" crossorigin="anonymous"></script>'


def _plotly_div(fig: go.Figure, div_id: str) -> str:
    # plotly.js itself is loaded once in <head>; plotly escapes "<" in its JSON, so trace text is safe.
    height = f"{fig.layout.height or 550}px"
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, default_height=height,
                       config={"displaylogo": False, "responsive": True})


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{html.escape(title)}</h2>{body}</section>'


def _asymmetry_img(rates: pd.DataFrame, agreement: pd.DataFrame, attack: str, baseline: str | None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        png = asymmetry_png(rates, agreement, attack, Path(tmp) / "asymmetry.png", baseline=baseline).read_bytes()
    alt = html.escape(f"teacher vs student rates and agreement, attack {attack}", quote=True)
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _ci(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    """``"0.612 [0.550, 0.670]"``; the value alone without a CI; "–" without a value."""
    value, low, high = (float(v) if v is not None and v is not pd.NA else np.nan for v in (value, low, high))
    if not np.isfinite(value):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _missing(what: str) -> str:
    return f"<p>{html.escape(what)}</p>"


def _blind(blind: pd.DataFrame | None) -> str:
    if blind is None or blind.empty:
        return _note(_BLIND_NOTE) + _missing("no blind check recorded")
    table = pd.DataFrame({
        "split": blind["split_fingerprint"].astype(str).str[:12],
        "blind AUC [95% CI]": [_ci(*r) for r in blind[["blind_auc", "blind_auc_low", "blind_auc_high"]].to_numpy()],
        "verdict": blind["verdict"], "shifted split allowed": blind["split_shifted"], "trials": blind["n_trials"],
    })
    return _note(_BLIND_NOTE) + _table(table)


def _attack_tables(frame: pd.DataFrame | None) -> str:
    """Two wide tables, AUC and TPR at 1% FPR: a row per model (teacher, then students), a column per attack."""
    if frame is None or frame.empty:
        return _missing("no attack metrics given")
    order = list(dict.fromkeys(frame["model"]))
    info = frame.drop_duplicates("model").set_index("model").reindex(order)[["method", "strength"]]
    parts = [_note(_ATTACKS_NOTE)]
    for stat, title in (("auc", "AUC, eval fold [95% CI]"), ("tpr_at_fpr_1pct", "TPR at 1% FPR, eval fold [95% CI]")):
        cells = frame.assign(cell=[_ci(*r) for r in frame[[stat, f"{stat}_low", f"{stat}_high"]].to_numpy()])
        wide = cells.pivot(index="model", columns="attack", values="cell").reindex(order)
        wide = info.join(wide).reset_index()
        parts.append(f"<h3>{html.escape(title)}</h3>" + _table(wide.astype(object).fillna("–")))
    return "".join(parts)


def _epsilon(dp: pd.DataFrame | None) -> str:
    if dp is None or dp.empty:
        return _missing("no trial reports an ε (no dp_sgd trial above its neutral strength)")
    return _note(_EPSILON_NOTE) + _table(dp)


def _failed(failed: pd.DataFrame | None) -> str:
    if failed is None or failed.empty:
        return _missing("no failed trials")
    return _note(f"{len(failed)} trial(s) failed; each is a trials row with status failed and its error's last line.") + _table(failed)


def _provenance(prov: Mapping[str, Any] | None) -> str:
    if not prov:
        return _missing("no provenance given")
    parts = []
    for key in ("git revision", "hosts", "devices"):
        counts = prov.get(key) or {}
        rows = pd.DataFrame({key: list(counts), "trials": list(counts.values())})
        parts.append(f"<h3>{html.escape(key)}</h3>" + (_table(rows) if counts else _missing("not recorded")))
    parts.append("<h3>package versions</h3>")
    for entry in prov.get("package versions") or []:
        parts.append(_note(f"used by {entry['n_trials']} trial(s)") + _key_value_table(entry["versions"]))
    if "config" in prov:
        parts.append(f"<h3>config</h3><pre>{html.escape(str(prov['config']))}</pre>")
    return "".join(parts)


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
    teacher: pd.DataFrame | None = None,
    baseline: str | None = None,
    attack_metrics: pd.DataFrame | None = None,
    dp: pd.DataFrame | None = None,
    blind: pd.DataFrame | None = None,
    failed: pd.DataFrame | None = None,
    provenance: Mapping[str, Any] | None = None,
    plotly_js: Literal["inline", "cdn"] = "inline",
) -> Path:
    """Write the report to ``path`` (parent folders created) and return it.

    The tables follow the contracts of :mod:`mia_kd.analysis.plots` and :mod:`mia_kd.analysis.sweep_tables`;
    ``reference`` is the hypervolume's (privacy, utility) point; ``teacher`` the teacher's frontier point(s);
    ``baseline`` the trial id of the sweep's shared plain-distillation trial; ``method_tables`` maps a method
    to its table; ``attack_metrics`` holds :data:`~mia_kd.analysis.sweep_tables.ATTACK_COLUMNS`; ``dp``,
    ``blind``, ``failed`` and ``provenance`` are those functions' results (a section says so where one is
    None); ``ensemble`` (e.g. ``members``, ``weights``, ``objectives``) is None until one is chosen;
    ``commands`` reproduce the report; ``plotly_js``: ``"inline"`` (works offline) or ``"cdn"``.
    """
    script = _plotly_script(plotly_js)
    frontier = _plotly_div(frontier_figure(points, fronts, reference, privacy_label, teacher=teacher), "frontier-plot")
    roc = _plotly_div(roc_figure(curves), "roc-plot")
    methods = "".join(f"<h3>{html.escape(m)}</h3>{_table(t)}" for m, t in method_tables.items())
    chosen = (
        _key_value_table(ensemble) if ensemble is not None
        else "<p>no ensemble chosen yet: run <code>mia-kd ensemble DIR</code></p>"
    )
    asymmetry = _asymmetry_img(rates, agreement, attack, baseline)  # checks rates and agreement first
    n_grey = int(no_signal(rates[rates["attack"] == attack]).sum())
    grey_note = (f" Grey rows ({n_grey}): the student's attack has no signal there (its eval AUC's 95% CI contains "
                 "0.5), so its TPR and TNR are noise." if n_grey else "")
    once = " The teacher is one model: where its rates are the same in every trial it is drawn once, as a line and a band."
    sections = [
        _section("summary", "Summary", _key_value_table(summary)),
        _section("blind", "Blind check (is the split IID?)", _blind(blind)),
        _section("frontier", "Privacy / utility frontier",
                 _note("Points show eval values; which points are on a front was decided on calib. The dotted line is "
                       "chance; the hypervolume reference point, outside the data, is marked at the edge.")
                 + frontier + "<h3>Fronts</h3>" + _table(fronts)),
        _section("methods", "Methods", methods or "<p>no per-method tables</p>"),
        _section("attacks", "Attacks (eval fold)", _attack_tables(attack_metrics)),
        _section("epsilon", "DP-SGD privacy budget (ε)", _epsilon(dp)),
        _section("asymmetry", f"Teacher vs student ({attack})",
                 _note(_ASYMMETRY_NOTE + once + grey_note) + asymmetry),
        _section("roc", "ROC curves", _note(_ROC_NOTE) + roc),
        _section("ensemble", "Ensemble", chosen),
        _section("failed", "Failed trials", _failed(failed)),
        _section("provenance", "Provenance", _provenance(provenance)),
        _section("reproduce", "Reproduce", f"<pre>{html.escape(chr(10).join(commands))}</pre>"),
    ]
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in SECTIONS)
    document = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{_CSS}</style>{script}</head>'
        f'<body><h1>{html.escape(title)}</h1><nav>{nav}</nav>{"".join(sections)}</body></html>\n'
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path
