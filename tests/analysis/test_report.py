import html
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from plotly.offline import get_plotlyjs

from mia_kd.analysis.pareto import pareto_mask
from mia_kd.analysis.plots import Curve
from mia_kd.analysis.report import SECTIONS, plotly_cdn_url, write_report
from mia_kd.store import TRIALS

ATTACK = "loss"
PLOTLY_HEAD = get_plotlyjs()[:400]  # plotly.js's licence banner and first bytes: found once per copy inlined


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
                auc = 0.9 if role == "teacher" else 0.5 + 0.3 * (1 - strength)  # no signal at strength > ~0.8
                rates.append(key | {"role": role, "tpr": tpr, "tpr_low": tpr - 0.05, "tpr_high": tpr + 0.05,
                                    "tnr": 0.7, "tnr_low": 0.65, "tnr_high": 0.75,
                                    "auc_low": auc - 0.05, "auc_high": auc + 0.05})
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
        "teacher": pd.DataFrame([{"attack": "reference", "privacy": 0.93, "privacy_low": 0.91, "privacy_high": 0.95,
                                  "utility": 2.9}]),
        "baseline": "kd00",
        "attack_metrics": pd.DataFrame([
            {"model": model, "method": method, "strength": strength, "attack": attack, "auc": auc,
             "auc_low": auc - 0.04, "auc_high": auc + 0.04, "tpr_at_fpr_1pct": tpr, "tpr_at_fpr_1pct_low": tpr / 2,
             "tpr_at_fpr_1pct_high": tpr * 2, "fpr_step": 0.005}
            for model, method, strength in (("teacher", "–", np.nan), ("kd03", "kd", 0.43))
            for attack, auc, tpr in ((ATTACK, 0.812, 0.2), ("zlib", 0.645, 0.05))
        ]),
        "dp": pd.DataFrame([{"trial_id": "dp02", "method": "dp_sgd", "strength": 0.29, "epsilon": 3.217,
                             "delta": 1e-4, "steps": 120, "accountant": "rdp"}]),
        "blind": pd.DataFrame([{"split_fingerprint": "abcdef0123456789", "blind_auc": 0.512, "blind_auc_low": 0.47,
                                "blind_auc_high": 0.55, "split_shifted": False, "n_trials": 24,
                                "verdict": "passed: the CI contains 0.5"}]),
        "failed": pd.DataFrame([{"trial_id": "la09", "method": "label_smoothing", "strength": 0.9,
                                 "error": "FloatingPointError: non-finite objectives <nan>"}]),
        "provenance": {"git revision": {"0123abcd" * 5: 24}, "hosts": {"node-1": 24}, "devices": {"cpu": 24},
                       "package versions": [{"versions": {"python": "3.11.9", "torch": "2.5.1"}, "n_trials": 24}],
                       "config": '{"seed": 7, "teacher": "tiny"}'},
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
    assert document.count(PLOTLY_HEAD) == 1  # plotly.js inlined exactly once
    assert len(get_plotlyjs()) < len(document) < 1.5 * len(get_plotlyjs())  # and no second copy in any other form
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


def test_report_sections_hold_their_facts(tmp_path):
    document = write_report(tmp_path / "r.html", **_inputs()).read_text(encoding="utf-8")
    blind = _section(document, "blind")
    assert "0.512 [0.470, 0.550]" in blind and "passed" in blind and "abcdef012345" in blind
    attacks = _section(document, "attacks")
    assert "eval fold" in attacks and attacks.count("<table>") == 2  # AUC, TPR at 1% FPR
    assert "0.812 [0.772, 0.852]" in attacks and "0.200 [0.100, 0.400]" in attacks  # value [CI]
    assert "<th>zlib</th>" in attacks and "<td>teacher</td>" in attacks and "<td>kd03</td>" in attacks
    epsilon = _section(document, "epsilon")
    assert "3.217" in epsilon and "dp02" in epsilon and "<th>delta</th>" in epsilon
    failed = _section(document, "failed")
    assert "la09" in failed and "FloatingPointError: non-finite objectives &lt;nan&gt;" in failed
    provenance = _section(document, "provenance")
    assert "0123abcd" * 5 in provenance and "<th>torch</th><td>2.5.1</td>" in provenance
    assert "node-1" in provenance and "<td>cpu</td>" in provenance
    assert "&quot;seed&quot;: 7" in provenance or '"seed": 7' in provenance
    asymmetry = _section(document, "asymmetry")
    student = _inputs()["rates"].query("role == 'student'")
    n_grey = int(((student["auc_low"] <= 0.5) & (student["auc_high"] >= 0.5)).sum())
    assert n_grey == 6 and f"Grey rows ({n_grey})" in asymmetry  # the two strongest of each method: CI holds 0.5
    nav = re.search(r"<nav>(.*?)</nav>", document).group(1)
    assert re.findall(r'href="#(\w+)"', nav) == list(SECTIONS)


def test_optional_sections_say_what_is_missing(tmp_path):
    inputs = _inputs(3) | dict.fromkeys(("teacher", "baseline", "attack_metrics", "dp", "blind", "failed", "provenance"))
    document = write_report(tmp_path / "r.html", **inputs).read_text(encoding="utf-8")
    assert "no blind check recorded" in _section(document, "blind")
    assert "no failed trials" in _section(document, "failed")
    assert "no trial reports an ε" in _section(document, "epsilon")
    assert "no provenance given" in _section(document, "provenance")
    empty = write_report(tmp_path / "e.html", **(inputs | {"failed": _inputs(3)["failed"].iloc[:0]}))
    assert "no failed trials" in _section(empty.read_text(encoding="utf-8"), "failed")


def test_plotly_js_from_the_cdn(tmp_path):
    document = write_report(tmp_path / "cdn.html", **_inputs(3), plotly_js="cdn").read_text(encoding="utf-8")
    assert PLOTLY_HEAD not in document and len(document) < 1_000_000  # not inlined
    url = plotly_cdn_url()
    assert url.startswith("https://cdn.plot.ly/plotly-") and url.endswith(".min.js")
    scripts = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"[^>]*>", document)
    assert scripts == [url]  # loaded once, from the CDN
    assert 'integrity="sha256-' in document
    with pytest.raises(ValueError, match="plotly_js: got 'vendored'"):
        write_report(tmp_path / "bad.html", **_inputs(3), plotly_js="vendored")
    assert not (tmp_path / "bad.html").exists()


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


@pytest.mark.slow
def test_report_command_on_a_stored_sweep(trial_store, tmp_path):
    """``mia_kd.analysis.commands.report`` on real rows: a DP-SGD trial (a stored trial relabelled, with
    an ε) and a failed trial added, every section filled from the store."""
    from mia_kd.analysis.commands import report
    from mia_kd.store import write_trial
    from mia_kd.store.rows import failed_row, tables

    root = shutil.copytree(trial_store[0], tmp_path / "out")
    source = next(iter(trial_store[1].values()))
    sweep_id = source.trial["sweep_id"]
    dp_report = {"epsilon": 4.321, "delta": 1e-5, "steps": 12, "sampling": "poisson", "accountant": "rdp test"}
    trial = source.trial | {"trial_id": "t9-dp_sgd", "method": "dp_sgd", "strength": 1.5, "epsilon": 4.321,
                            "method_report": json.dumps(dp_report)}
    metrics = [m | {"trial_id": "t9-dp_sgd"} for m in source.metrics]
    records = source.records.set_column(source.records.schema.get_field_index("trial_id"), "trial_id",
                                        pa.array(["t9-dp_sgd"] * source.records.num_rows))
    write_trial(str(root), sweep_id=sweep_id, method="dp_sgd", trial_id="t9-dp_sgd",
                tables=tables(trial, metrics, records))
    failed = failed_row(sweep_id=sweep_id, trial_id="t8-broken", error="RuntimeError: CUDA out of memory <gpu0>",
                        method="temperature", strength=0.9, stage="train", params={})
    write_trial(str(root), sweep_id=sweep_id, method="temperature", trial_id="t8-broken",
                tables={"trials": pa.Table.from_pylist([failed], schema=TRIALS)})

    outcome = report(str(root), out=str(tmp_path / "inline"))
    document = outcome.paths[0].read_text(encoding="utf-8")
    assert document.count(PLOTLY_HEAD) == 1 and len(document) < 1.5 * len(get_plotlyjs())
    blind = _section(document, "blind")
    assert f"{source.trial['blind_auc']:.3f} [{source.trial['blind_auc_low']:.3f}" in blind
    attacks = _section(document, "attacks")
    assert "<td>teacher</td>" in attacks and all(f"<td>{t}</td>" in attacks for t in [*trial_store[1], "t9-dp_sgd"])
    teacher_auc = next(m for m in source.metrics if m["model_role"] == "teacher" and m["attack"] == "loss")
    assert f"{teacher_auc['auc']:.3f} [{teacher_auc['auc_low']:.3f}, {teacher_auc['auc_high']:.3f}]" in attacks
    epsilon = _section(document, "epsilon")
    assert "t9-dp_sgd" in epsilon and "4.321" in epsilon and "rdp test" in epsilon
    assert not any(t in epsilon for t in trial_store[1])  # the others report no ε
    failed_section = _section(document, "failed")
    assert "t8-broken" in failed_section and "RuntimeError: CUDA out of memory &lt;gpu0&gt;" in failed_section
    provenance = _section(document, "provenance")
    versions = json.loads(source.trial["package_versions"])
    assert f"<th>pyarrow</th><td>{versions['pyarrow']}</td>" in provenance
    assert (source.trial["git_revision"] or "not recorded") in provenance
    assert html.escape(source.trial["hostname"]) in provenance and html.escape(source.trial["device"]) in provenance
    assert "&quot;attacks&quot;" in provenance  # the config
    assert "teacher (" in _section(document, "frontier")  # the teacher's frontier trace is in the figure's JSON
    cdn = report(str(root), out=str(tmp_path / "cdn"), plotly_js="cdn").paths[0].read_text(encoding="utf-8")
    assert PLOTLY_HEAD not in cdn and f'src="{plotly_cdn_url()}"' in cdn
