"""A real 2-node Ray cluster on loopback: `ray job submit` a CI-sized sweep, trials land from both nodes;
then again with the worker node killed mid-sweep, and every trial is still there exactly once.

The commands are the ones cluster/README.md gives (`ray start --head`, `ray start --address`,
`ray job submit --working-dir . -- mia-kd sweep ...`). Every process the test starts is ended by PID (the
Ray processes are found by their own temp dirs), also when it fails: never `ray stop`, which would end
every Ray instance on the machine.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mia_kd.store import read_table

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_using(path: str) -> list[int]:
    """Processes whose command line names ``path`` (a node's own temp dir)."""
    return [int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and int(e.name) != os.getpid() and path in _cmdline(int(e.name))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill(pids: list[int], process_tools) -> None:
    for pid in pids:
        process_tools["kill_tree"](pid)


class Cluster:
    """Head (1 CPU) + worker (1 CPU, custom resource ``worker_node``), each with its own short temp dir."""

    def __init__(self, process_tools) -> None:
        self.tools = process_tools
        self.head_tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: socket paths must fit in 107 bytes
        self.worker_tmp = tempfile.mkdtemp(prefix="rw", dir="/tmp")
        self.port, self.dashboard = _free_port(), _free_port()
        # Ray 2.60 clusters use token authentication: every node and client reads the cluster's token.
        token = Path(self.head_tmp) / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.env = {
            **os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
            # Declare a killed node dead after about 3 s instead of Ray's default 30 s or so.
            "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3",
        }

    def ray(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "ray"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check, cwd=REPO)

    def start(self) -> None:
        self.ray("start", "--head", f"--port={self.port}", f"--temp-dir={self.head_tmp}", "--num-cpus=1",
                 "--num-gpus=0", "--node-ip-address=127.0.0.1", "--include-dashboard=true",
                 "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard}", "--disable-usage-stats",
                 f"--dashboard-agent-listen-port={_free_port()}")
        self.start_worker()
        self.wait_for_job_agent()

    def wait_for_job_agent(self, timeout: float = 180) -> None:
        """Until a job can be submitted: right after `ray start` (slower on a loaded machine) the head answers
        "No available agent to submit job, please try again later"."""
        deadline = time.monotonic() + timeout
        while True:
            probe = self.ray("job", "submit", f"--address=http://127.0.0.1:{self.dashboard}", "--", "true",
                             check=False)
            if probe.returncode == 0:
                return
            if "No available agent" not in probe.stdout + probe.stderr or time.monotonic() > deadline:
                raise AssertionError(f"ray job submit does not work: {(probe.stdout + probe.stderr)[-2000:]}")
            time.sleep(2)

    def start_worker(self) -> None:
        self.ray("start", f"--address=127.0.0.1:{self.port}", f"--temp-dir={self.worker_tmp}", "--num-cpus=1",
                 "--num-gpus=0", "--node-ip-address=127.0.0.1", '--resources={"worker_node": 1}',
                 # Each node's agent on its own HTTP port: both default to 52365, and when the worker's agent
                 # binds it first the head's serves no HTTP, so the head accepts no job ("No available agent").
                 f"--dashboard-agent-listen-port={_free_port()}")

    def worker_processes(self) -> list[int]:
        """The worker node's Ray processes and their children (Ray workers retitle themselves ``ray::...``)."""
        roots = _pids_using(self.worker_tmp)
        return roots + [child for pid in roots for child in self.tools["descendants"](pid)]

    def kill_worker(self) -> None:
        _kill(_pids_using(self.worker_tmp), self.tools)

    def submit(self, *sweep_args: str, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
        cmd = [str(BIN / "ray"), "job", "submit", f"--address=http://127.0.0.1:{self.dashboard}", "--working-dir",
               ".", "--", "mia-kd", "sweep", *sweep_args, "-q"]
        if wait:
            return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=900, cwd=REPO)
        return subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=REPO, start_new_session=True)

    def stop(self) -> None:
        for path in (self.worker_tmp, self.head_tmp):
            _kill(_pids_using(path), self.tools)
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster(process_tools):
    c = Cluster(process_tools)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def job_sweep(tmp_path, ci_raw):
    """A CI-sized sweep: `none` (the baseline), 3 `temperature` trials (one of them the baseline) and `nonorm`
    (which does not share the baseline, so it starts beside it: two actors at once, one per node), one CPU
    each, two at a time, attacked by `lira` too: 4 shadow teachers and their neutral students first, as Ray
    tasks of one CPU."""
    path = tmp_path / "cluster_sweep.yaml"
    path.write_text(yaml.safe_dump({**ci_raw, "attacks": ["loss", "reference", "lira"], "shadows": {"count": 4},
                                    "sweep": {
        "methods": {"none": {}, "temperature": {}, "nonorm": {}}, "trials_per_method": 3, "max_concurrent": 2,
        "resources": {"cpu": 1}, "save_students": "none", "max_failures": 2,
    }}))
    return path


def _shadow_nodes(trials: pd.DataFrame) -> list[str]:
    """The nodes the sweep's shadow models ran on, as every trial row records them."""
    nodes = {tuple(json.loads(times)["shadows"]["nodes"]) for times in trials["stage_times"]}
    assert len(nodes) == 1, nodes
    return list(nodes.pop())


def _check_shadows(out: Path, trials: pd.DataFrame, count: int = 4) -> None:
    """Every attack record carries every shadow's statistic, and lira's metrics are there for both models."""
    import numpy as np

    records = read_table(str(out), "records", columns=["model_role", "fold", "shadow_inside"]).to_pandas()
    attack = records[(records["fold"] != "utility") & records["model_role"].isin(["teacher", "student"])]
    inside = np.stack(attack["shadow_inside"].to_numpy())
    assert inside.shape[1] == count and (inside.sum(axis=1) == count // 2).all()
    metrics = read_table(str(out), "metrics").to_pandas()
    assert set(metrics.loc[metrics["attack"] == "lira", "model_role"]) == {"teacher", "student"}


def _trials(out: Path) -> pd.DataFrame:
    return read_table(str(out), "trials").to_pandas()


def _nodes(cluster: Cluster) -> dict[str, str]:
    """node id -> 'head' | 'worker', from `ray list nodes`."""
    listed = cluster.ray("list", "nodes", "--format=json", f"--address=http://127.0.0.1:{cluster.dashboard}")
    nodes = json.loads(listed.stdout)
    return {n["node_id"]: ("head" if n["is_head_node"] else "worker") for n in nodes}


def test_job_submit_runs_trials_on_both_nodes(cluster, job_sweep, tmp_path):
    out = tmp_path / "out"
    refused = cluster.submit(str(job_sweep), "--out", str(out))
    assert refused.returncode != 0
    assert "is a local path and this Ray cluster has 2 nodes" in refused.stdout + refused.stderr
    assert not out.exists(), "the refusal must come before anything is written"

    # The preparation (teacher included) is a Ray task: pinned here to the worker node, away from the driver,
    # which `ray job submit` runs on the head.
    done = cluster.submit(str(job_sweep), "--out", str(out), "--allow-local-out",
                          "--set", "sweep.prepare_resources.resources={worker_node: 1}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    trials = _trials(out)
    assert len(trials) == 4 and trials["trial_id"].is_unique and (trials["status"] == "completed").all()
    roles = _nodes(cluster)
    ran_on = {roles.get(node) for node in trials["node_id"]}
    assert ran_on == {"head", "worker"}, f"trials ran on {ran_on}"
    assert {roles.get(node) for node in trials["prepare_node_id"]} == {"worker"}, trials["prepare_node_id"]
    assert {roles.get(node) for node in _shadow_nodes(trials)} == {"head", "worker"}, "shadow tasks on both nodes"
    _check_shadows(out, trials)
    assert (out / "optuna" / "journal.log").is_file() and (out / "sweep.json").is_file()


@pytest.mark.parametrize("victim", ["ImplicitFunc", "mia_kd.shadow_"])
def test_a_killed_worker_node_loses_no_trial(cluster, job_sweep, tmp_path, victim):
    """The worker node dies while it runs a trial (its Tune actor) or a shadow model's task: the trial runs
    again, the shadow task is retried, and every trial and every shadow statistic is there exactly once."""
    out = tmp_path / "out"
    job = cluster.submit(str(job_sweep), "--out", str(out), "--allow-local-out", wait=False)
    try:
        deadline = time.monotonic() + 600  # preparation (a teacher) comes first, slow on a loaded machine
        worker = None
        while time.monotonic() < deadline and job.poll() is None and worker is None:
            # Kill the worker node while the victim runs there (Ray workers retitle themselves ray::<task>).
            busy = [p for p in cluster.worker_processes() if victim in _cmdline(p)]
            if busy:
                time.sleep(3)  # inside the trial, not at its start
                worker = busy
                cluster.kill_worker()
            time.sleep(0.5)
        assert worker, ("no trial reached the worker node" if job.poll() is None
                        else f"the job ended (exit {job.returncode}) first: {job.communicate()[0][-3000:]}")
        output, _ = job.communicate(timeout=900)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 0, output[-3000:]
    trials = _trials(out)
    assert len(trials) == 4 and trials["trial_id"].is_unique, trials[["trial_id", "status"]]
    assert (trials["status"] == "completed").all(), trials[["trial_id", "status", "error"]]
    # The trial that was on the dead node failed once and ran again; nothing it wrote half-way shows. The sweep
    # is one Tune experiment (the baseline is its first trial).
    states = [p.read_text() for p in (out / "tune").glob("*/experiment_state-*.json")]
    assert len(states) == 1, [p.name for p in (out / "tune").iterdir()]
    if victim == "ImplicitFunc":  # a trial failed with its node and ran again
        assert sum(int(n) for state in states for n in re.findall(r'num_failures\\": (\d+)', state)) >= 1
    _check_shadows(out, trials)
    records = read_table(str(out), "records").to_pandas()
    # Each trial's student rows, and the teacher's and reference model's once for the prepared state.
    assert set(records["trial_id"]) == {*trials["trial_id"], *(f"prepared-{k}" for k in trials["prepared_key"])}
    assert trials["prepared_key"].nunique() == 1
