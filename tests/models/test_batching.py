import numpy as np
import torch

from mia_kd.models.batching import bucketed_batches, pad


def test_pad_right_pads_and_masks():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == torch.long


def test_bucketed_batches_cover_every_index_once_and_group_similar_lengths():
    lengths = np.random.default_rng(0).integers(1, 100, size=103)
    batches = bucketed_batches(lengths, 10, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(103))
    spreads = [np.ptp(lengths[b]) for b in batches]
    assert np.median(spreads) < np.ptp(lengths) / 4  # far tighter than random batches


def test_bucketed_batches_are_seeded():
    lengths = np.arange(50) % 7
    a = bucketed_batches(lengths, 8, np.random.default_rng(3))
    b = bucketed_batches(lengths, 8, np.random.default_rng(3))
    c = bucketed_batches(lengths, 8, np.random.default_rng(4))
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(a, c, strict=True))
