import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from mia_kd.analysis.pareto import pareto_mask
from mia_kd.analysis.plots import (
    MARGIN,
    PANELS,
    Curve,
    asymmetry_axes,
    asymmetry_png,
    frontier_axes,
    frontier_figure,
    frontier_png,
    no_signal,
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


def _teacher() -> pd.DataFrame:
    return pd.DataFrame([{"attack": "reference", "privacy": 0.93, "privacy_low": 0.91, "privacy_high": 0.95,
                          "utility": 2.9}])


REFERENCE = (1.41, 5.5)  # far outside the data, as a "baseline + 50%" reference point is


def _data_span(points: pd.DataFrame, teacher: pd.DataFrame) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (x, y) extent the frontier's axes must show: points with CIs, the teacher, chance (0.5)."""
    x = np.concatenate([points["objective_utility"], teacher["utility"]])
    y = np.concatenate([points[c].dropna() for c in ("objective_privacy", "privacy_low", "privacy_high")]
                       + [teacher[c] for c in ("privacy", "privacy_low", "privacy_high")] + [[0.5]])
    return (x.min(), x.max()), (y.min(), y.max())


def _check_limits(limits, extent):
    """Each axis shows its extent plus at most MARGIN of it on each side (and so not the reference point)."""
    for (low, high), (lo, hi) in zip(limits, extent, strict=True):
        pad = MARGIN * (hi - lo)
        assert lo - pad - 1e-9 <= low <= lo and hi <= high <= hi + pad + 1e-9, (low, high, lo, hi)


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


def test_frontier_axes_show_the_data_chance_and_teacher():
    points, teacher = _points(), _teacher()
    ax = frontier_axes(points, _fronts(points), REFERENCE, "auc", teacher=teacher)
    extent = _data_span(points, teacher)
    _check_limits((ax.get_xlim(), ax.get_ylim()), extent)
    assert ax.get_ylim()[1] < 1.0 < REFERENCE[0]  # the reference point no longer stretches the AUC axis
    chance = [line for line in ax.get_lines() if line.get_label().startswith("chance")]
    assert len(chance) == 1 and set(chance[0].get_ydata()) == {0.5}
    assert "teacher (reference)" in [t.get_text() for t in ax.get_legend().get_texts()]
    teacher_bars = [c for c in ax.containers if c.get_label() == "teacher (reference)"]
    assert len(teacher_bars) == 1 and tuple(teacher_bars[0].lines[0].get_xydata()[0]) == (2.9, 0.93)
    [reference] = [t for t in ax.texts if t.get_text().startswith("hypervolume reference")]
    assert "1.41" in reference.get_text() and "off the axes" in reference.get_text()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 <= reference.xy[0] <= x1 and y0 <= reference.xy[1] <= y1  # drawn at the edge, inside the axes
    shapes = {}
    for collection in ax.collections:  # one marker shape per method
        if collection.get_label() in {f"{m} (HV {0.1 + i / 10:.3g})" for i, m in enumerate(METHODS)}:
            shapes[collection.get_label()] = collection.get_paths()[0].vertices.round(6).tobytes()
    assert len(shapes) == len(METHODS) == len(set(shapes.values()))


def test_method_fronts_span_their_own_points_only():
    points = _points()
    ax = frontier_axes(points, _fronts(points), REFERENCE, "auc")
    fig = frontier_figure(points, _fronts(points), REFERENCE, "auc")
    for method in METHODS:
        own = points[(points["method"] == method) & points["on_method_front"]]["objective_utility"]
        [line] = [line for line in ax.get_lines() if line.get_gid() == f"{method} front"]
        [trace] = [t for t in fig.data if t.name == f"{method} front"]
        for x in (line.get_xdata(), trace.x):
            assert min(x) == own.min() and max(x) == own.max()


def test_frontier_figure_axes_chance_teacher_and_shapes():
    points, teacher = _points(), _teacher()
    fig = frontier_figure(points, _fronts(points), REFERENCE, "auc", teacher=teacher)
    _check_limits((fig.layout.xaxis.range, fig.layout.yaxis.range), _data_span(points, teacher))
    assert [(s.y0, s.y1) for s in fig.layout.shapes] == [(0.5, 0.5)]  # the chance line
    [trace] = [t for t in fig.data if t.name == "teacher (reference)"]
    assert (trace.x[0], trace.y[0]) == (2.9, 0.93)
    symbols = {t.name: t.marker.symbol for t in fig.data if t.mode == "markers" and t.name.split(" (")[0] in METHODS}
    assert len(symbols) == len(METHODS) == len(set(symbols.values()))
    [reference] = [a for a in fig.layout.annotations if a.text.startswith("hypervolume reference")]
    assert fig.layout.xaxis.range[0] <= reference.x <= fig.layout.xaxis.range[1]
    assert fig.layout.yaxis.range[0] <= reference.y <= fig.layout.yaxis.range[1]
    tpr_fig = frontier_figure(points, _fronts(points), REFERENCE, "tpr_at_fpr_1pct")
    assert [s.y0 for s in tpr_fig.layout.shapes] == [0.01]  # chance of TPR at 1% FPR


def test_asymmetry_panels_greyed_rows_baseline_and_teacher_once():
    points = _points(4)
    rates, agreement = _rates_agreement(points)
    teacher = rates["role"] == "teacher"
    rates.loc[teacher, ["tnr", "tnr_low", "tnr_high"]] = [0.7, 0.65, 0.75]  # one teacher: same rates everywhere
    auc = np.where(rates["strength"] > 0.5, 0.52, 0.7)  # the stronger half: the student's attack at chance
    rates["auc_low"], rates["auc_high"] = auc - 0.05, auc + 0.05
    axes = asymmetry_axes(rates, agreement, "loss", baseline="kd00")
    titles = [ax.get_title() for ax in axes]
    assert titles == list(PANELS) and len(set(titles)) == 4
    assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)", "(d)"]
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels[0] == "baseline: kd@0 (plain distillation)" and "kd@0" not in labels  # drawn once
    order = points.set_index(points["method"] + "@" + points["strength"].map("{:.3g}".format))["trial_id"]
    grey = no_signal(rates)
    expected = [bool(grey[order[lab.removeprefix("baseline: ").removesuffix(" (plain distillation)")]]) for lab in labels]
    assert 0 < sum(expected) < len(labels)
    colours = [matplotlib.colors.to_hex(t.get_color()) for t in axes[0].get_yticklabels()]
    assert [c != "#000000" for c in colours] == expected  # no-signal rows greyed, the rest black
    for ax in axes[:2]:  # the teacher drawn once per panel, as a line (and its CI band)
        assert sum(line.get_gid() == "teacher" for line in ax.get_lines()) == 1
    rates.loc[teacher & (rates["trial_id"] == "kd01"), "tpr"] = 0.1  # teachers differ: a marker per row again
    axes = asymmetry_axes(rates.drop(columns=["auc_low", "auc_high"]), agreement, "loss")
    assert not any(line.get_gid() == "teacher" for line in axes[0].get_lines())
    assert all(matplotlib.colors.to_hex(t.get_color()) == "#000000" for t in axes[0].get_yticklabels())


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
