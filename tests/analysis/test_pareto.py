import numpy as np
import pytest

from mia_kd.analysis.pareto import hypervolume, knee_index, pareto_mask


def _brute_force(points):
    n = len(points)
    on = []
    for i in range(n):
        dominated = any(
            all(points[j][k] <= points[i][k] for k in range(points.shape[1]))
            and any(points[j][k] < points[i][k] for k in range(points.shape[1]))
            for j in range(n)
        )
        on.append(not dominated)
    return np.array(on)


def _brute_force_hypervolume(points, reference):
    """Union of the boxes [p, reference], cell by cell on the grid of all distinct coordinates (any dimension)."""
    points = points[(points < reference).all(axis=1)]
    if len(points) == 0:
        return 0.0
    axes = [np.unique(np.r_[points[:, k], reference[k]]) for k in range(points.shape[1])]
    volume = 0.0
    for cell in np.ndindex(*[len(a) - 1 for a in axes]):
        low = np.array([axes[k][i] for k, i in enumerate(cell)])
        high = np.array([axes[k][i + 1] for k, i in enumerate(cell)])
        if (points <= low).all(axis=1).any():  # the cell lies inside some point's box
            volume += float(np.prod(high - low))
    return volume


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_objectives", [2, 3])
def test_matches_brute_force_with_ties_and_duplicates(seed, n_objectives):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 6, size=(40, n_objectives)).astype(float)  # small grid: many ties and duplicates
    np.testing.assert_array_equal(pareto_mask(points), _brute_force(points))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_objectives", [2, 3])
def test_hypervolume_matches_brute_force(seed, n_objectives):
    rng = np.random.default_rng(seed)
    points = np.r_[rng.integers(0, 6, size=(15, n_objectives)), rng.random((10, n_objectives)) * 6]
    points = np.r_[points, points[:3]]  # duplicates
    reference = np.full(n_objectives, 5.0)  # some points lie on or beyond it
    assert hypervolume(points, reference) == pytest.approx(_brute_force_hypervolume(points, reference), rel=1e-12)
    # Only the front matters, and the hypervolume of the front equals that of all points.
    assert hypervolume(points[pareto_mask(points)], reference) == pytest.approx(hypervolume(points, reference))


def test_hypervolume_hand_case_and_edges():
    points = np.array([[1.0, 3.0], [2.0, 1.0]])
    assert hypervolume(points, np.array([4.0, 4.0])) == pytest.approx(3 * 1 + 2 * 2)  # 3 + 4 = 7
    assert hypervolume(points, np.array([1.0, 1.0])) == 0.0  # nothing strictly dominates the reference
    assert hypervolume(np.zeros((0, 2)), np.array([1.0, 1.0])) == 0.0
    with pytest.raises(ValueError, match="reference"):
        hypervolume(points, np.array([1.0]))


def test_knee_is_closest_to_the_ideal_point_after_scaling():
    front = np.array([[0.0, 10.0], [0.2, 2.0], [0.5, 1.0], [1.0, 0.0]])
    assert knee_index(front) == 1  # scaled (0.2, 0.2): nearest to (0, 0)
    assert knee_index(np.array([[3.0, 1.0]])) == 0
    assert knee_index(np.array([[1.0, 5.0], [1.0, 2.0]])) == 1  # a constant objective is ignored


def test_hand_case():
    points = np.array([[0.5, 3.0], [0.6, 2.0], [0.7, 2.5], [0.5, 3.0], [0.9, 1.0]])
    assert pareto_mask(points).tolist() == [True, True, False, True, True]


def test_analysis_imports_neither_torch_nor_ray():
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys, mia_kd.analysis as a\n"
        "names = [m.name for m in pkgutil.iter_modules(a.__path__)]\n"
        "for name in names: importlib.import_module(f'mia_kd.analysis.{name}')\n"
        "import mia_kd.distill.ensemble  # the CLI runs the ensemble's export beside the analysis\n"
        "print(len(names), sorted(m for m in ('torch', 'ray', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n_modules, imported = out.stdout.strip().split(" ", 1)
    assert int(n_modules) >= 8 and imported == "[]"
