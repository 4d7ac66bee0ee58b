"""Shared fixtures: a CI-sized trial config (a few hundred records, a 2-layer teacher, seconds to run)."""

from __future__ import annotations

import copy
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # as the CLI sets it; datasets reads it on import
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

CI_CONFIG = {
    "sweep_id": "ci",
    "seed": 0,
    "data": {"members": 200, "nonmembers": 200, "utility": 100, "public": 400, "blind_check_bootstrap": 200},
    "tokenizer": {"vocab_size": 1024, "max_length": 80},
    "teacher": {
        "config": {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 256},
        "train": {"epochs": 20, "batch_size": 16, "lr": 5e-3},
    },
    "student": {"config": {"n_layer": 1, "n_embd": 64, "n_head": 4, "n_positions": 256}},
    "distill": {"epochs": 4, "batch_size": 16, "lr": 3e-3},
    "reference": {"epochs": 2, "batch_size": 32, "lr": 3e-3},
    "metrics": {"n_bootstrap": 200},
    "runtime": {"progress": False, "threads": 2},
}


def make_ci_raw(cache_dir) -> dict:
    raw = copy.deepcopy(CI_CONFIG)
    raw["runtime"]["cache_dir"] = str(cache_dir)
    return raw


@pytest.fixture
def ci_raw(tmp_path) -> dict:
    """The CI-sized config as a plain mapping, caching models under this test's temp folder."""
    return make_ci_raw(tmp_path / "cache")


@pytest.fixture(scope="session")
def ci_raw_factory():
    """``make(cache_dir) -> dict`` for fixtures wider than one test."""
    return make_ci_raw


@pytest.fixture(scope="module")
def ci_config(ci_raw_factory, tmp_path_factory):
    """The CI-sized config, validated, caching models in a folder of the test module's own."""
    from mia_kd.config import validate_config

    return validate_config(ci_raw_factory(tmp_path_factory.mktemp("cache")))
