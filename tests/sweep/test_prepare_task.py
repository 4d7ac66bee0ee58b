"""Where a sweep's preparation runs: the Ray task's shape from ``sweep.prepare_resources`` and the cluster."""

from __future__ import annotations

import pytest

from mia_kd.config import PrepareResources

pytestmark = pytest.mark.ray  # imports the Tune adapter


def _shape(nodes, **given):
    from mia_kd.sweep.tune import prepare_shape

    return prepare_shape(PrepareResources(**given), nodes)


def test_a_gpu_where_the_cluster_has_one_with_the_cpus_of_its_node():
    head, gpu_node, cpu_node = {"CPU": 0.0}, {"CPU": 8.0, "GPU": 1.0}, {"CPU": 32.0}
    assert _shape([head, gpu_node, cpu_node]) == (8.0, 1.0)
    assert _shape([head, cpu_node]) == (32.0, 0.0)  # no GPU up: the largest node's CPUs
    assert _shape([{"CPU": 2.0}]) == (2.0, 0.0)  # one machine: all of it (trials wait for prepare anyway)


def test_what_the_config_says_wins():
    nodes = [{"CPU": 8.0, "GPU": 2.0}]
    assert _shape(nodes, gpu=0) == (8.0, 0.0)
    assert _shape(nodes, cpu=3, gpu=0.5) == (3.0, 0.5)
    assert _shape([{"CPU": 4.0}], gpu=1) == (4.0, 1.0)  # asked for: waits for an autoscaled GPU node
    assert _shape([], cpu=None) == (1.0, 0.0)
