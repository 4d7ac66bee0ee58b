import numpy as np
import pytest

from mia_kd.analysis.pareto import pareto_mask


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


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_with_ties_and_duplicates(seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 6, size=(40, 2)).astype(float)  # small integer grid: many ties and duplicates
    np.testing.assert_array_equal(pareto_mask(points), _brute_force(points))


def test_hand_case():
    points = np.array([[0.5, 3.0], [0.6, 2.0], [0.7, 2.5], [0.5, 3.0], [0.9, 1.0]])
    assert pareto_mask(points).tolist() == [True, True, False, True, True]


def test_analysis_imports_neither_torch_nor_ray():
    import subprocess
    import sys

    code = "import sys, mia_kd.analysis.pareto; print(any(m in sys.modules for m in ('torch', 'ray')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
