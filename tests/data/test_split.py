from __future__ import annotations

import itertools

import pytest

from mia_kd.data import Record, Split, SplitSizes, make_records, split_records, split_shifted
from mia_kd.errors import ConfigError, DataError

SIZES = SplitSizes(members=40, nonmembers=30, utility=10, public=20, calib_fraction=0.25)


def pool(n: int, source: str = "toy") -> list[Record]:
    return make_records([f"sentence number {i} of the {source} pool" for i in range(n)], source)


def assert_disjoint(split: Split) -> None:
    parts = split.parts()
    for (a, ra), (b, rb) in itertools.combinations(parts.items(), 2):
        assert not {r.record_id for r in ra} & {r.record_id for r in rb}, (a, b)
        assert not {r.text for r in ra} & {r.text for r in rb}, (a, b)


def test_parts_disjoint_and_sized() -> None:
    split = split_records(pool(150), SIZES, seed=0)
    assert_disjoint(split)
    assert split.summary() == {
        "members_calib": 10, "members_eval": 30, "nonmembers_calib": 8, "nonmembers_eval": 22,
        "utility": 10, "public": 20,
    }
    assert split.members == split.members_calib + split.members_eval
    assert len(split.nonmembers) == 30
    assert not split.shifted


def test_deterministic_per_seed() -> None:
    records = pool(150)
    first, again, other = (split_records(records, SIZES, seed=s) for s in (7, 7, 8))
    assert first == again and first.fingerprint() == again.fingerprint()
    assert first.members != other.members and first.fingerprint() != other.fingerprint()


def test_fingerprint_is_stable_hex_and_order_sensitive() -> None:
    split = split_records(pool(150), SIZES, seed=0)
    fingerprint = split.fingerprint()
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    swapped = Split(split.members_eval, split.members_calib, split.nonmembers_calib, split.nonmembers_eval,
                    split.utility, split.public)
    assert swapped.fingerprint() != fingerprint
    # Pinned: the record ids, the shuffle and the hash are all stable across runs and machines.
    assert fingerprint == split_records(pool(150), SIZES, seed=0).fingerprint()


def test_duplicate_texts_removed_before_splitting() -> None:
    unique = pool(100)
    # Same texts again (as if two sources or two rows held them): they must not land in two parts.
    doubled = unique + [Record(f"dup{i:013d}", r.text, "other") for i, r in enumerate(unique)]
    split = split_records(doubled, SIZES, seed=3)
    assert_disjoint(split)
    texts = [r.text for part in split.parts().values() for r in part]
    assert len(texts) == len(set(texts)) == SIZES.total


def test_too_few_records() -> None:
    with pytest.raises(DataError, match=r"^data: the source has 99 distinct records, .*40 members \+ 30 "
                                         r"nonmembers \+ 10 utility \+ 20 public = 100"):
        split_records(pool(99), SIZES, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"members": 0}, "data.members"), ({"public": 2.5}, "data.public"),
     ({"calib_fraction": 1.0}, "data.calib_fraction"), ({"members": 2, "calib_fraction": 0.1}, "data.members")],
)
def test_sizes_validated(kwargs: dict[str, object], key: str) -> None:
    values: dict[str, object] = {"members": 10, "nonmembers": 10, "utility": 1, "public": 1, **kwargs}
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        SplitSizes(**values)  # type: ignore[arg-type]


def test_shifted_split_draws_nonmembers_from_second_source() -> None:
    members, others = pool(80, "a"), pool(60, "b")
    # Ten texts also in the member pool: they must never become non-members.
    others += make_records([r.text for r in members[:10]], "b")
    split = split_shifted(members, others, SIZES, seed=0)
    assert_disjoint(split)
    assert split.shifted
    assert {r.source for r in split.nonmembers} == {"b"}
    assert {r.source for part in (split.members, split.utility, split.public) for r in part} == {"a"}
    member_texts = {r.text for r in members}
    assert not member_texts & {r.text for r in split.nonmembers}
    assert split == split_shifted(members, others, SIZES, seed=0)


def test_shifted_split_too_few_nonmembers() -> None:
    with pytest.raises(DataError, match=r"^data: the non-member source has 29 distinct records"):
        split_shifted(pool(80, "a"), pool(29, "b"), SIZES, seed=0)


def test_labelled_split_takes_members_from_one_source_and_everything_else_from_the_other() -> None:
    from mia_kd.data import split_labelled

    members = make_records([f"member record number {i}" for i in range(30)], "m")
    others = make_records([f"never seen record {i}" for i in range(60)] + ["member record number 3"], "n")
    sizes = SplitSizes(members=20, nonmembers=20, utility=10, public=15)
    split = split_labelled(members, others, sizes, seed=1)
    member_texts = {r.text for r in members}
    assert len(split.members) == 20 and {r.text for r in split.members} <= member_texts
    rest = [*split.nonmembers, *split.utility, *split.public]
    assert len(rest) == 45 and len({r.record_id for r in rest}) == 45  # disjoint
    assert not {r.text for r in rest} & member_texts  # a text in both sources is a member only
    assert not split.shifted  # the blind check decides, not the construction
    assert split_labelled(members, others, sizes, seed=1).fingerprint() == split.fingerprint()
    with pytest.raises(DataError, match="the non-member source"):
        split_labelled(members, others[:40], sizes, seed=1)
    with pytest.raises(DataError, match="the member source"):
        split_labelled(members[:10], others, sizes, seed=1)


# ---- the transfer pool (distill.transfer: disjoint)

TRANSFER = SplitSizes(members=40, nonmembers=30, utility=10, public=20, calib_fraction=0.25, transfer=25)


@pytest.mark.parametrize("seed", [0, 5])
def test_transfer_pool_disjoint_sized_and_leaves_other_parts_alone(seed: int) -> None:
    records = pool(150)
    split, plain = split_records(records, TRANSFER, seed=seed), split_records(records, SIZES, seed=seed)
    assert len(split.transfer) == 25 and plain.transfer == ()
    assert_disjoint(split)  # parts() holds transfer, so this checks it against every other part by id and text
    assert "transfer" in split.parts() and "transfer" not in plain.parts()
    for name, records_ in plain.parts().items():
        assert getattr(split, name) == records_, name
    # A split without a pool fingerprints as before the part existed; the pool changes the split's own fingerprint
    # but not what the teacher is keyed on.
    assert split.fingerprint() != plain.fingerprint()
    assert split.without_transfer() == plain and split.without_transfer().fingerprint() == plain.fingerprint()


def test_transfer_pool_needs_enough_records() -> None:
    with pytest.raises(DataError, match="25 transfer"):
        split_records(pool(124), TRANSFER, seed=0)  # 100 for the other parts + 25
    assert len(split_records(pool(125), TRANSFER, seed=0).transfer) == 25


def test_transfer_pool_shifted_and_labelled() -> None:
    members, others = pool(150, "a"), pool(60, "b")
    split, plain = split_shifted(members, others, TRANSFER, seed=2), split_shifted(members, others, SIZES, seed=2)
    assert len(split.transfer) == 25 and {r.source for r in split.transfer} == {"a"}
    assert_disjoint(split)
    assert split.without_transfer() == plain
    from mia_kd.data import split_labelled

    with pytest.raises(ConfigError, match="data.transfer: 25; membership pretraining"):
        split_labelled(members, others, TRANSFER, seed=1)


@pytest.mark.parametrize("bad", [-1, True, 2.5])
def test_transfer_size_checked(bad) -> None:
    with pytest.raises(ConfigError, match="data.transfer"):
        SplitSizes(members=40, nonmembers=30, utility=10, public=20, transfer=bad)
