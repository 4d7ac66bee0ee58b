import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from mia_kd.analysis.pareto import pareto_mask
from mia_kd.analysis.plots import Curve
from mia_kd.analysis.report import SECTIONS, write_report

ATTACK = "loss"


def _inputs(n_per_method: int = 8, seed: int = 0) -> dict:
    """Every keyword of write_report, from a synthetic sweep of three methods (~``3 * n_per_method`` trials)."""
    rng = np.random.default_rng(seed)
    rows, rates, agreement = [], [], []
    for m, method in enumerate(("dp_sgd", "kd", "label_smoothing")):
        for k, strength in enumerate(np.linspace(0.0, 1.0, n_per_method)):
            key = {"trial_id": f"{method[:2]}{k:02d}", "method": method, "strength": strength, "attack": ATTACK}
            privacy = 0.78 - (0.12 + 0.04 * m) * strength + rng.normal(0, 0.03)
            rows.append(key | {
                "sweep_id": "s", "objective_privacy": privacy, "privacy_low": privacy - 0.02,
                "privacy_high": privacy + 0.02, "objective_privacy_attack": ATTACK,
                "objective_utility": 3.0 + (0.3 + 0.2 * m) * strength ** 2 + rng.normal(0, 0.08),
                "epsilon": 8.0 / (1 + 4 * strength) if method == "dp_sgd" else np.nan,
            })
            for role, tpr in (("teacher", 0.6), ("student", 0.6 - 0.4 * strength)):
                rates.append(key | {"role": role, "tpr": tpr, "tpr_low": tpr - 0.05, "tpr_high": tpr + 0.05,
                                    "tnr": 0.7, "tnr_low": 0.65, "tnr_high": 0.75})
            for label in ("member", "nonmember"):
                both, teacher_only, student_only = rng.integers(10, 60, size=3)
                neither = 200 - both - teacher_only - student_only
                agreement.append(key | {"label": label, "both": both, "teacher_only": teacher_only,
                                        "student_only": student_only, "neither": neither})
    points = pd.DataFrame(rows).drop(columns="attack")
    xy = points[["objective_privacy", "objective_utility"]].to_numpy()
    points["on_front"] = pareto_mask(xy)
    points["on_method_front"] = False
    for rows in points.groupby("method").indices.values():
        points.loc[rows, "on_method_front"] = pareto_mask(xy[rows])
    points["is_knee"] = points.index == points[points["on_front"]].sort_values("objective_utility").index[1]
    fronts = points.groupby("method").agg(n_trials=("trial_id", "size"), n_front=("on_method_front", "sum"))
    fronts = pd.concat([fronts.reset_index(), pd.DataFrame([{"method": "all", "n_trials": len(points),
                                                              "n_front": points["on_front"].sum()}])])
    fronts["hypervolume"] = np.linspace(0.1, 0.4, len(fronts))
    fronts["knee_trial_id"] = points.loc[points["is_knee"], "trial_id"].iloc[0]
    curves = []
    for name, shift in ((ATTACK, 0.3), ("min_k_pp", 0.8)):  # exact ROC of Gaussian scores, 300 per class
        member = np.arange(600) < 300
        order = np.argsort(-np.concatenate([rng.normal(shift, 1, 300), rng.normal(0, 1, 300)]))
        tpr, fpr = (np.concatenate([[0], np.cumsum(c[order]) / 300]) for c in (member, ~member))
        curves.append(Curve(name, fpr, tpr, float(np.trapezoid(tpr, fpr))))
    return {
        "title": "sweep s <test>",
        "summary": {"sweep": "s", "trials": str(len(points)), "note": "<script>alert(1)</script>"},
        "points": points, "fronts": fronts, "reference": (0.8, 3.8), "privacy_label": "auc",
        "method_tables": {m: g[["trial_id", "strength", "objective_privacy", "objective_utility"]]
                          for m, g in points.groupby("method")},
        "rates": pd.DataFrame(rates), "agreement": pd.DataFrame(agreement), "attack": ATTACK, "curves": curves,
        "ensemble": {"members": ["kd03", "dp02"], "weights": [0.7, 0.3], "objectives": {"auc": 0.61, "loss": 3.2}},
        "commands": ["mia-kd sweep sweeps/s.yaml", "mia-kd report runs/s --out report.html"],
    }


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        reason = "chromium not found (on PATH or at /usr/bin/chromium): cannot check that the report renders"
        if os.environ.get("MIA_KD_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; MIA_KD_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return found


def _run_chromium(browser: str, profile: Path, *args: str) -> str:
    """Run headless chromium (its own process group, killed on timeout) and return its stdout."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group holds only this chromium and its helpers
        proc.communicate()
        pytest.fail(f"chromium did not finish in 60 s: {command}")
    assert proc.returncode == 0, err[-2000:]
    return out


def _section(document: str, section_id: str) -> str:
    start = document.index(f'<section id="{section_id}"')
    return document[start : document.index("</section>", start)]


def test_report_is_self_contained(tmp_path):
    path = write_report(tmp_path / "out" / "report.html", **_inputs())
    document = path.read_text(encoding="utf-8")
    for section_id in SECTIONS:
        assert f'<section id="{section_id}"' in document
    assert document.count(get_plotlyjs()[:400]) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", document, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document and "<script>alert(1)" not in document
    assert "sweep s &lt;test&gt;" in document
    assert _section(document, "asymmetry").count('src="data:image/png;base64,') == 1
    for section_id in ("frontier", "roc"):  # main-svg is drawn at run time: the browser test's evidence
        assert "main-svg" not in _section(document, section_id)
    frontier = _section(document, "frontier")
    assert "frontier-plot" in frontier and "knee_trial_id" in frontier  # the fronts table
    methods = _section(document, "methods")
    assert all(f"<h3>{m}</h3>" in methods for m in ("dp_sgd", "kd", "label_smoothing"))
    assert "kd03" in _section(document, "ensemble") and "0.7" in _section(document, "ensemble")
    assert "<pre>mia-kd sweep sweeps/s.yaml\nmia-kd report runs/s --out report.html</pre>" in document


def test_no_ensemble_yet(tmp_path):
    document = write_report(tmp_path / "r.html", **(_inputs(3) | {"ensemble": None})).read_text(encoding="utf-8")
    assert "no ensemble chosen yet: run <code>mia-kd ensemble DIR</code>" in _section(document, "ensemble")


def test_bad_input_names_the_column(tmp_path):
    inputs = _inputs(3)
    with pytest.raises(ValueError, match="'role'"):
        write_report(tmp_path / "r.html", **(inputs | {"rates": inputs["rates"].drop(columns="role")}))
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    path = write_report(tmp_path / "report.html", **_inputs())
    dom = _run_chromium(browser, tmp_path / "profile", "--dump-dom", path.as_uri())
    for section_id in ("frontier", "roc"):  # plotly.js ran and drew both figures
        assert "main-svg" in _section(dom, section_id), section_id
    shot = tmp_path / "shot.png"
    _run_chromium(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000", path.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert matplotlib.image.imread(shot).shape[:2] == (2000, 1400)
