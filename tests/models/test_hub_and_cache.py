"""What `mia-kd trial` meets before any training: a model path that does not exist, a cache folder that is a file."""

from __future__ import annotations

import pytest

from mia_kd.errors import ConfigError
from mia_kd.models.cache import ModelCache
from mia_kd.models.hub import load_pretrained, looks_like_path


def _never(*args, **kwargs):
    raise AssertionError("a missing local folder must not be tried as a hub id")


@pytest.mark.parametrize("name", ["./models/x", "/nonexistent/teacher", "~/no-such-model"])
def test_a_missing_model_path_is_named_as_a_path_not_a_hub_id(name):
    assert looks_like_path(name)
    with pytest.raises(ConfigError, match="does not exist; give the folder a model was saved to"):
        load_pretrained(_never, name, what="teacher.pretrained")


def test_hub_ids_are_not_paths():
    assert not looks_like_path("gpt2") and not looks_like_path("EleutherAI/pythia-70m")


def test_a_cache_dir_that_is_a_file_is_refused_before_training(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    for root in (blocker, blocker / "below"):
        with pytest.raises(ConfigError, match="is a file, not a folder"):
            ModelCache(root)
    ModelCache(tmp_path / "fresh")  # a folder that does not exist yet is fine: it is made when first needed
