"""The sweep refuses a results folder only the driver's machine sees when its Ray cluster has several nodes."""

from __future__ import annotations

import pytest

from mia_kd.errors import ConfigError
from mia_kd.store import SweepStorage


def test_a_local_out_is_refused_on_a_multi_node_cluster(tmp_path, monkeypatch):
    import ray

    from mia_kd.sweep.tune import check_shared

    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True}, {"Alive": True}, {"Alive": False}])
    with pytest.raises(ConfigError, match="this Ray cluster has 2 nodes"):
        check_shared(SweepStorage.parse(str(tmp_path)), allow_local_out=False)
    check_shared(SweepStorage.parse(str(tmp_path)), allow_local_out=True)
    check_shared(SweepStorage.parse(f"file://{tmp_path}"), allow_local_out=False)
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True}])
    check_shared(SweepStorage.parse(str(tmp_path)), allow_local_out=False)
