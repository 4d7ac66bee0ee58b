"""Sweep fixtures: a CI-sized sweep file, one Ray instance per test session, process-tree cleanup."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml


def write_sweep(path: Path, base: dict, sweep: dict) -> Path:
    path.write_text(yaml.safe_dump({**base, "sweep": sweep}))
    return path


@pytest.fixture
def sweep_file(tmp_path, ci_raw):
    """``make(sweep_section) -> path`` of a CI-sized sweep config (models cached in this test's folder)."""

    def make(sweep: dict, name: str = "sweep.yaml") -> Path:
        return write_sweep(tmp_path / name, ci_raw, sweep)

    return make


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """Ray started once for the in-process sweep tests, with a private temp dir; stopped at the end."""
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    temp = tmp_path_factory.mktemp("ray")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(temp), log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from /proc), children first discovered first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process it started (Ray's raylet, GCS, workers), by PID."""
    for target in [pid, *descendants(pid)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def process_tools():
    return {"descendants": descendants, "kill_tree": kill_tree}
