"""``vulnerable_filter``: leave the teacher's most vulnerable members out of the transfer set.

From Cui, Zhang, Pei 2025, *On Membership Inference Attacks in Knowledge Distillation*: the members the
teacher's attack flags (the vulnerable subset, docs/architecture.md §6) are the ones a distilled student most readily
gives away, so the student is distilled without them. The study's later method distils on the
non-vulnerable members only, and also drops the vulnerable subset plus the next 5 % / 10 % of members.

Strength s ∈ [0, 1] is the fraction of the vulnerable subset dropped: the first ``round(s · n_vulnerable)``
members of the teacher's ranking (most vulnerable first) leave the transfer set, and ``margin`` drops the
``round(margin · n_members)`` members ranked next. s = 1 is "non-vulnerable members only"; s = 1 with
``margin`` 0.05 / 0.10 are the study's "vulnerable + 5 % / 10 %" subsets. s = 0 is neutral (plain
distillation) whatever ``margin`` says: the trainer skips every hook at neutral strength, so the margin
only ever widens a non-empty drop.

Records of the transfer set that are not ranked members (non-member transfer data) are always kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from mia_kd.errors import ConfigError
from mia_kd.privacy._base import METHODS, MethodParams, PrivacyMethod


class VulnerableFilterParams(MethodParams):
    margin: float = Field(
        default=0.0,
        ge=0.0,
        le=0.5,
        description="fraction of all members, ranked just after the dropped vulnerable ones, dropped as well "
        "(the study's 'vulnerable + 5%/10%' subsets: strength 1, margin 0.05/0.10)",
    )


@METHODS.register()
class VulnerableFilter(PrivacyMethod):
    hook = "records"
    low = 0.0
    high = 1.0
    neutral = 0.0
    summary = "leave the first `strength` fraction of the teacher's vulnerable members out of the transfer set"
    trades = "less leakage of the most exposed members for a smaller transfer set"
    needs_vulnerability = True
    Params = VulnerableFilterParams

    @property
    def margin(self) -> float:
        return self.params.margin  # type: ignore[attr-defined]  # self.params is a VulnerableFilterParams

    def dropped_ids(self) -> tuple[str, ...]:
        """Record ids left out: a prefix of the ranking (most vulnerable first); empty at neutral strength."""
        if self.is_neutral:
            return ()
        vulnerability = self.context.vulnerability
        assert vulnerability is not None  # checked by PrivacyMethod.__init__
        n_drop = round(self.strength * vulnerability.n_vulnerable) + round(self.margin * len(vulnerability.member_ids))
        return vulnerability.member_ids[:n_drop]

    def select_records(self, member_ids: Sequence[str]) -> list[int]:
        """Indices into ``member_ids`` (the transfer set, in its order) of the records kept, in that order."""
        dropped = set(self.dropped_ids())
        keep = [i for i, rid in enumerate(member_ids) if rid not in dropped]
        if not keep:
            raise ConfigError(
                f"privacy.strength: {self.name} at strength {self.strength:g} with margin "
                f"{self.margin:g} drops all {len(member_ids)} transfer records "
                "(nothing left to distil on); lower privacy.strength or privacy.params.margin"
            )
        return keep

