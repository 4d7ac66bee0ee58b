"""The ``shadows:`` section: the shadow models the ``lira`` and ``rmia`` attacks read (docs/architecture.md §4)."""

from __future__ import annotations

from pydantic import Field, field_validator

from mia_kd.config._strict import Strict


class ShadowsConfig(Strict):
    """Shadow models for the attacks that read them (``lira``, ``rmia``)."""

    count: int = Field(
        8, ge=2, description="shadow teachers (each trained like the teacher on a random half of the attack records; "
        "every record is IN for exactly half of them), and as many shadow students; even"
    )
    online: bool = Field(
        False, description="false: shadow students at the neutral strength, trained once and shared by every trial "
        "(offline attacks); true: each trial distils its own at its method and strength"
    )

    @field_validator("count")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even (every record IN for half of the shadows); got {value}")
        return value
