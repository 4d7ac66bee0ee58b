"""Schema checks of cluster/ (no cloud and no Kubernetes offline): the fields `ray up` and the KubeRay
operator require, GPU workers, and that the commands and versions agree with the project."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import ray
import yaml

from mia_kd.cli import _parser

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
LAUNCHERS = ["aws.yaml", "gcp.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_config_has_what_ray_up_needs(name):
    cfg = _load(name)
    for key in ("cluster_name", "max_workers", "provider", "auth", "available_node_types", "head_node_type",
                "setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in cfg, key
    provider = cfg["provider"]
    assert provider["type"] == name.removesuffix(".yaml") and provider["region"]
    assert cfg["auth"]["ssh_user"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    for node_type in types.values():
        assert {"node_config", "resources", "min_workers", "max_workers"} <= set(node_type)
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= cfg["max_workers"]
    assert types[cfg["head_node_type"]]["resources"]["CPU"] == 0  # the head drives, workers run trials
    gpu_types = [t for t in types.values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu_types and all(t["max_workers"] > t["min_workers"] for t in gpu_types)  # autoscaling
    if provider["type"] == "gcp":
        assert provider["project_id"] and provider["availability_zone"]
        for t in gpu_types:
            assert t["node_config"]["guestAccelerators"][0]["acceleratorCount"] >= 1
            assert {"onHostMaintenance": "TERMINATE"} in t["node_config"]["scheduling"]
    assert any("ray start --head" in c for c in cfg["head_start_ray_commands"])
    assert any("ray start --address=$RAY_HEAD_IP:6379" in c for c in cfg["worker_start_ray_commands"])
    for command in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]:  # one token everywhere
        assert "ray stop" in command or command.startswith("RAY_AUTH_MODE=token ")
    assert "~/.ray/auth_token" in cfg["file_mounts"].values()
    assert any(".ci/constraints.txt" in c for c in cfg["setup_commands"])  # the pinned install


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def _check_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"] == ray.__version__  # the image's Ray must be the driver's
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and _containers(head)[0]["image"]
    assert spec["workerGroupSpecs"]
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"] and 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        limits = _containers(group)[0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1


def test_kuberay_raycluster():
    doc = _load("kuberay/raycluster.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayCluster") and doc["metadata"]["name"]
    _check_cluster_spec(doc["spec"])


def test_kuberay_rayjob_runs_a_valid_sweep_command():
    doc = _load("kuberay/rayjob.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayJob")
    spec = doc["spec"]
    _check_cluster_spec(spec["rayClusterSpec"])
    assert spec["shutdownAfterJobFinishes"] is True
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["mia-kd", "sweep"]
    args = _parser().parse_args(argv[1:])  # the CLI accepts it
    assert (CLUSTER.parent / args.config).is_file()
    assert args.address == "auto" and args.out.startswith("s3://")
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"


def test_cluster_readme_gives_the_commands_the_loopback_test_runs():
    readme = (CLUSTER / "README.md").read_text()
    test = (CLUSTER.parent / "tests" / "sweep" / "test_cluster.py").read_text()
    for command in ('"start", "--head"', '"start", f"--address=', '"job", "submit"', '"--working-dir",\n               "."'):
        assert command in test, command
    for command in ("ray start --head", "ray start --address=", "ray job submit --address", "--working-dir . --",
                    "mia-kd sweep", "--allow-local-out"):
        assert command in readme, command
