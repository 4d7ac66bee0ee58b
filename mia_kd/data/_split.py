"""Splitting one record pool into disjoint parts with exact membership (docs/architecture.md §3)."""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from mia_kd.data._record import Record
from mia_kd.errors import ConfigError, DataError

__all__ = ["Split", "SplitSizes", "require_records", "source_demands", "split_records", "split_shifted"]


@dataclass(frozen=True)
class SplitSizes:
    """How many records each part gets. Errors name the config keys ``data.<field>``."""

    members: int
    nonmembers: int
    utility: int
    public: int
    calib_fraction: float = 0.5
    transfer: int = 0  # a transfer pool disjoint from the rest (distill.transfer disjoint); 0: none

    def __post_init__(self) -> None:
        for name in ("members", "nonmembers", "utility", "public"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"data.{name}: must be a positive integer; got {value!r}")
        if isinstance(self.transfer, bool) or not isinstance(self.transfer, numbers.Integral) or self.transfer < 0:
            raise ConfigError(f"data.transfer: must be a non-negative integer; got {self.transfer!r}")
        fraction = self.calib_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ConfigError(f"data.calib_fraction: must be strictly between 0 and 1; got {fraction!r}")
        for name in ("members", "nonmembers"):
            n_calib = _n_calib(getattr(self, name), fraction)
            if n_calib == 0 or n_calib == getattr(self, name):
                raise ConfigError(
                    f"data.{name}: {getattr(self, name)} records leave an empty calib or eval fold at "
                    f"calib_fraction {fraction}; ask for more"
                )

    @property
    def total(self) -> int:
        """Records one IID split needs."""
        return self.members + self.nonmembers + self.utility + self.public + self.transfer


def _n_calib(n: int, fraction: float) -> int:
    return int(round(n * fraction))


@dataclass(frozen=True)
class Split:
    """Disjoint parts of the pool, each a tuple of records in shuffled order.

    ``members`` = ``members_calib + members_eval`` (the teacher's training and transfer set);
    ``nonmembers`` likewise. ``transfer`` is a pool disjoint from every other part (``data.transfer``; empty
    unless asked for), the students' transfer set under ``distill.transfer: disjoint``. ``shifted`` is True
    when non-members came from another source (:func:`split_shifted`).
    """

    members_calib: tuple[Record, ...]
    members_eval: tuple[Record, ...]
    nonmembers_calib: tuple[Record, ...]
    nonmembers_eval: tuple[Record, ...]
    utility: tuple[Record, ...]
    public: tuple[Record, ...]
    transfer: tuple[Record, ...] = ()
    shifted: bool = False

    @property
    def members(self) -> tuple[Record, ...]:
        """Every member: calib fold then eval fold."""
        return self.members_calib + self.members_eval

    @property
    def nonmembers(self) -> tuple[Record, ...]:
        """Every non-member: calib fold then eval fold."""
        return self.nonmembers_calib + self.nonmembers_eval

    @property
    def attack_records(self) -> tuple[Record, ...]:
        """The records the attacks score, in their fixed order: calib members, calib non-members, eval
        members, eval non-members (so the members among them, in order, are :attr:`members`)."""
        return self.members_calib + self.nonmembers_calib + self.members_eval + self.nonmembers_eval

    @property
    def attack_labels(self) -> np.ndarray:
        """``(len(attack_records),)`` int8, 1 = member."""
        sizes = (len(self.members_calib), len(self.nonmembers_calib), len(self.members_eval), len(self.nonmembers_eval))
        return np.repeat(np.array([1, 0, 1, 0], dtype=np.int8), sizes)

    @property
    def n_calib(self) -> int:
        """The first ``n_calib`` attack records form the calib fold, the rest the eval fold."""
        return len(self.members_calib) + len(self.nonmembers_calib)

    def parts(self) -> dict[str, tuple[Record, ...]]:
        """The six parts by name, in the fixed order the fingerprint uses, then ``transfer`` where it is not
        empty (so a split without one fingerprints as splits did before the part existed)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "shifted" and (f.name != "transfer" or self.transfer)}

    def without_transfer(self) -> Split:
        """This split without its transfer pool: what the teacher and the attacks depend on (the teacher's
        cache key reads its fingerprint, so a transfer pool does not retrain an identical teacher)."""
        return replace(self, transfer=())

    def fingerprint(self) -> str:
        """sha256 (hex) over every part's name and record ids, in order: equal iff the split is equal."""
        digest = hashlib.sha256()
        for name, records in self.parts().items():
            digest.update(f"{name}:{len(records)}\n".encode())
            for record in records:
                digest.update(record.record_id.encode() + b"\n")
        return digest.hexdigest()

    def summary(self) -> dict[str, int]:
        """Number of records in each part."""
        return {name: len(records) for name, records in self.parts().items()}


def _dedupe(records: Sequence[Record]) -> list[Record]:
    """``records`` without repeated texts (first occurrence kept), so no text lands in two parts."""
    seen: set[str] = set()
    out: list[Record] = []
    for record in records:
        if record.text not in seen:
            seen.add(record.text)
            out.append(record)
    return out


def _shuffled(records: list[Record], rng: np.random.Generator) -> list[Record]:
    return [records[i] for i in rng.permutation(len(records))]


def _too_few(what: str, asked: dict[str, int], available: int) -> DataError:
    parts = " + ".join(f"{n} {name}" for name, n in asked.items())
    return DataError(
        f"data: {what} has {available} distinct records, the split asks for {parts} = {sum(asked.values())}; "
        "lower these sizes or use a larger source"
    )


def source_demands(sizes: SplitSizes, kind: str) -> tuple[dict[str, int], dict[str, int]]:
    """``(asked of the source, asked of the non-member source)``, part name -> records, for a split ``kind``:
    ``iid`` (:func:`split_records`), ``shifted`` (:func:`split_shifted`) or ``labelled`` (:func:`split_labelled`)."""
    parts = {"members": sizes.members, "nonmembers": sizes.nonmembers, "utility": sizes.utility, "public": sizes.public}
    if sizes.transfer:  # last: the slices before it are those of a split without a transfer pool
        parts["transfer"] = sizes.transfer
    other = {"iid": (), "shifted": ("nonmembers",), "labelled": ("nonmembers", "utility", "public")}[kind]
    return ({k: n for k, n in parts.items() if k not in other}, {k: n for k, n in parts.items() if k in other})


def require_records(what: str, asked: dict[str, int], available: int) -> None:
    """A :class:`DataError` naming the sizes when ``available`` distinct records are fewer than ``asked``."""
    if available < sum(asked.values()):
        raise _too_few(what, asked, available)


def _slices(shuffled: list[Record], asked: dict[str, int]) -> dict[str, list[Record]]:
    """Consecutive slices of ``shuffled``, part name -> records, in the order and sizes of ``asked``."""
    bounds = np.cumsum([0, *asked.values()])
    return {name: shuffled[a:b] for name, a, b in zip(asked, bounds[:-1], bounds[1:])}


def _folds(records: list[Record], fraction: float) -> tuple[tuple[Record, ...], tuple[Record, ...]]:
    n_calib = _n_calib(len(records), fraction)
    return tuple(records[:n_calib]), tuple(records[n_calib:])


def split_records(records: Sequence[Record], sizes: SplitSizes, *, seed: int) -> Split:
    """An IID split: one seeded shuffle of the deduplicated pool, then consecutive slices.

    Order of the slices: members, nonmembers, utility, public, then transfer (``sizes.transfer``, so the
    other parts are those of the same split without it); members and nonmembers are each cut into calib
    (the first ``round(n * calib_fraction)``) and eval. Records left over are unused.
    """
    pool = _dedupe(records)
    asked, _ = source_demands(sizes, "iid")
    require_records("the source", asked, len(pool))
    shuffled = _shuffled(pool, np.random.default_rng(seed))
    parts = _slices(shuffled, asked)
    return Split(*_folds(parts["members"], sizes.calib_fraction), *_folds(parts["nonmembers"], sizes.calib_fraction),
                 tuple(parts["utility"]), tuple(parts["public"]), tuple(parts.get("transfer", ())))


def split_shifted(
    member_records: Sequence[Record], nonmember_records: Sequence[Record], sizes: SplitSizes, *, seed: int
) -> Split:
    """A split whose non-members come from another source (not IID: the blind check should refuse it).

    Members, utility, public and transfer are drawn from ``member_records`` as in :func:`split_records`;
    non-members from ``nonmember_records``, after dropping every text also in the member pool.
    """
    pool = _dedupe(member_records)
    pool_texts = {record.text for record in pool}
    others = [record for record in _dedupe(nonmember_records) if record.text not in pool_texts]
    member_asked, other_asked = source_demands(sizes, "shifted")
    require_records("the member source", member_asked, len(pool))
    require_records("the non-member source", other_asked, len(others))
    member_rng, nonmember_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    parts = _slices(_shuffled(pool, member_rng), member_asked)
    nonmembers = _shuffled(others, nonmember_rng)[: sizes.nonmembers]
    return Split(*_folds(parts["members"], sizes.calib_fraction), *_folds(nonmembers, sizes.calib_fraction),
                 tuple(parts["utility"]), tuple(parts["public"]), tuple(parts.get("transfer", ())), shifted=True)


def split_labelled(
    member_records: Sequence[Record], nonmember_records: Sequence[Record], sizes: SplitSizes, *, seed: int
) -> Split:
    """A split whose membership the user gives (membership ``pretraining``: the teacher trained on
    ``member_records`` and never saw ``nonmember_records``).

    Members come from ``member_records``; non-members, utility and public from ``nonmember_records`` (after
    dropping every text also in the member pool), since records the teacher saw must not measure its task
    loss or train the reference model. Whether the two are IID is the blind check's call, not assumed.
    No transfer pool: records of the member source are the teacher's training data, and the other source's
    are not drawn like the members.
    """
    if sizes.transfer:
        raise ConfigError(
            f"data.transfer: {sizes.transfer}; membership pretraining cannot draw a transfer pool disjoint from the "
            "teacher's training data: set data.transfer: 0 and distill.transfer: members"
        )
    pool = _dedupe(member_records)
    pool_texts = {record.text for record in pool}
    others = [record for record in _dedupe(nonmember_records) if record.text not in pool_texts]
    member_asked, other_asked = source_demands(sizes, "labelled")
    require_records("the member source", member_asked, len(pool))
    require_records("the non-member source", other_asked, len(others))
    member_rng, nonmember_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    members = _shuffled(pool, member_rng)[: sizes.members]
    bounds = np.cumsum([0, *other_asked.values()])
    shuffled = _shuffled(others, nonmember_rng)
    nonmembers, utility, public = (shuffled[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    return Split(*_folds(members, sizes.calib_fraction), *_folds(nonmembers, sizes.calib_fraction),
                 tuple(utility), tuple(public))
