import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from mia_kd.analysis.pareto import pareto_mask
from mia_kd.analysis.plots import (
    Curve,
    asymmetry_png,
    frontier_figure,
    frontier_png,
    roc_figure,
    roc_png,
)

METHODS = ("dp_sgd", "kd", "label_smoothing")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _points(n_per_method: int = 8, seed: int = 0) -> pd.DataFrame:
    """A small sweep: privacy falls and task loss rises with strength, with noise; fronts from pareto_mask."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, method in enumerate(METHODS):
        for k, strength in enumerate(np.linspace(0.0, 1.0, n_per_method)):
            privacy = 0.78 - (0.12 + 0.04 * m) * strength + rng.normal(0, 0.03)
            ci = np.nan if k == 0 else 0.02  # one trial per method without a CI
            rows.append({
                "trial_id": f"{method[:2]}{k:02d}", "sweep_id": "s", "method": method, "strength": strength,
                "objective_privacy": privacy, "privacy_low": privacy - ci, "privacy_high": privacy + ci,
                "objective_privacy_attack": "loss", "objective_utility": 3.0 + (0.3 + 0.2 * m) * strength ** 2
                + rng.normal(0, 0.08), "epsilon": 8.0 / (1 + 4 * strength) if method == "dp_sgd" else np.nan,
            })
    points = pd.DataFrame(rows)
    xy = points[["objective_privacy", "objective_utility"]].to_numpy()
    points["on_front"] = pareto_mask(xy)
    points["on_method_front"] = False
    for method, idx in points.groupby("method").groups.items():
        points.loc[idx, "on_method_front"] = pareto_mask(xy[idx])
    front = points[points["on_front"]].sort_values("objective_utility")
    points["is_knee"] = points.index == front.index[len(front) // 2]
    return points


def _fronts(points: pd.DataFrame) -> pd.DataFrame:
    rows = [{"method": m, "n_trials": len(g), "n_front": int(g["on_method_front"].sum()), "hypervolume": 0.1 + i / 10,
             "knee_trial_id": g["trial_id"].iloc[0]} for i, (m, g) in enumerate(points.groupby("method"))]
    knee = points.loc[points["is_knee"], "trial_id"].iloc[0]
    rows.append({"method": "all", "n_trials": len(points), "n_front": int(points["on_front"].sum()),
                 "hypervolume": 0.5, "knee_trial_id": knee})
    return pd.DataFrame(rows)


def _rates_agreement(points: pd.DataFrame, attack: str = "loss") -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    rates, agreement = [], []
    for _, p in points.iterrows():
        key = {"trial_id": p["trial_id"], "method": p["method"], "strength": p["strength"], "attack": attack}
        for role, tpr in (("teacher", 0.6), ("student", 0.6 - 0.4 * p["strength"])):
            tnr = 0.7 + rng.normal(0, 0.03)
            rates.append(key | {"role": role, "tpr": tpr, "tpr_low": tpr - 0.05, "tpr_high": tpr + 0.05,
                                "tnr": tnr, "tnr_low": tnr - 0.05, "tnr_high": tnr + 0.05})
        for label, n in (("member", 200), ("nonmember", 200)):
            both, teacher_only, student_only = rng.integers(10, 60, size=3)
            neither = n - both - teacher_only - student_only
            agreement.append(key | {"label": label, "both": both, "teacher_only": teacher_only,
                                    "student_only": student_only, "neither": neither})
    return pd.DataFrame(rates), pd.DataFrame(agreement)


def _curves(n: int = 300) -> list[Curve]:
    """Exact ROC step curves of Gaussian scores (members shifted up by ``shift``)."""
    rng = np.random.default_rng(2)
    curves = []
    for name, shift in (("loss", 0.3), ("min_k_pp", 0.8)):
        scores = np.concatenate([rng.normal(shift, 1, n), rng.normal(0, 1, n)])
        member = np.arange(2 * n) < n
        order = np.argsort(-scores)
        tpr = np.concatenate([[0], np.cumsum(member[order]) / n])
        fpr = np.concatenate([[0], np.cumsum(~member[order]) / n])
        curves.append(Curve(name, fpr, tpr, float(np.trapezoid(tpr, fpr))))
    return curves


def _check_png(path, min_width=300):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width and image.shape[0] >= 200
    return image


def test_frontier_png(tmp_path):
    points = _points()
    path = frontier_png(points, _fronts(points), (0.8, 3.8), "auc", tmp_path / "new" / "frontier.png")
    assert path == tmp_path / "new" / "frontier.png"
    _check_png(path)


def test_asymmetry_png_grows_with_trials(tmp_path):
    heights = []
    for n in (3, 9):  # 9 trials per method: 27 rows
        points = _points(n)
        rates, agreement = _rates_agreement(points)
        image = _check_png(asymmetry_png(rates, agreement, "loss", tmp_path / f"asym{n}.png"), min_width=1000)
        heights.append(image.shape[0])
    assert heights[1] > heights[0] + 500  # a row per trial, not squeezed


def test_roc_png(tmp_path):
    _check_png(roc_png(_curves(), tmp_path / "a" / "b" / "roc.png"))


def test_frontier_figure_traces_and_hover():
    points = _points()
    fig = frontier_figure(points, _fronts(points), (0.8, 3.8), "auc")
    names = [t.name for t in fig.data]
    for i, method in enumerate(METHODS):
        assert f"{method} (HV {0.1 + i / 10:.3g})" in names  # one marker trace per method, HV in its name
        assert f"{method} front" in names
    assert "all methods front (HV 0.5)" in names and "knee" in names
    trace = next(t for t in fig.data if t.name.startswith("dp_sgd ("))
    assert len(trace.x) == 8 and list(trace.marker.size).count(13) == points.query("method == 'dp_sgd'")[
        "on_method_front"].sum()
    hover = trace.text[3]
    assert "trial: dp03" in hover and f"strength: {points['strength'][3]:g}" in hover and "epsilon" in hover
    assert "[" in hover  # the CI
    assert "epsilon" not in next(t for t in fig.data if t.name.startswith("kd (")).text[3]


def test_roc_figure_log_axis():
    curves = _curves()
    fig = roc_figure(curves)
    assert fig.layout.xaxis.type == "log"
    assert {t.name for t in fig.data} == {"chance"} | {f"{c.name} (AUC {c.auc:.3f})" for c in curves}
    assert min(min(t.x) for t in fig.data) > 0  # FPR = 0 clipped to the floor, not dropped by the log axis
    assert "log" in fig.layout.xaxis.title.text


def test_missing_column_is_named(tmp_path):
    points = _points()
    fronts = _fronts(points)
    with pytest.raises(ValueError, match="'objective_utility'"):
        frontier_png(points.drop(columns="objective_utility"), fronts, (0.8, 3.8), "auc", tmp_path / "f.png")
    with pytest.raises(ValueError, match="'hypervolume'"):
        frontier_figure(points, fronts.drop(columns="hypervolume"), (0.8, 3.8), "auc")
    rates, agreement = _rates_agreement(points)
    with pytest.raises(ValueError, match="'tnr_high'"):
        asymmetry_png(rates.drop(columns="tnr_high"), agreement, "loss", tmp_path / "a.png")
    with pytest.raises(ValueError, match="'student_only'"):
        asymmetry_png(rates, agreement.drop(columns="student_only"), "loss", tmp_path / "a.png")
    with pytest.raises(ValueError, match="'zlib'"):
        asymmetry_png(rates, agreement, "zlib", tmp_path / "a.png")
    with pytest.raises(ValueError, match="several rows for"):
        asymmetry_png(pd.concat([rates, rates.iloc[:1]]), agreement, "loss", tmp_path / "a.png")
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "a.png").exists()


def test_curve_checks_its_rates():
    with pytest.raises(ValueError, match="fpr must lie in"):
        Curve("bad", np.array([0.0, 1.5]), np.array([0.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match="equal"):
        Curve("bad", np.array([0.0, 1.0]), np.array([0.0, 0.5, 1.0]), 0.5)
