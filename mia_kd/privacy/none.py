"""``none``: plain distillation, the baseline every method is compared with."""

from __future__ import annotations

from mia_kd.privacy._base import METHODS, PrivacyMethod


@METHODS.register()
class NoPrivacy(PrivacyMethod):
    hook = "none"
    low = 0.0
    high = 0.0
    neutral = 0.0
    summary = "plain distillation (the baseline)"
    trades = "nothing: the reference point of every front"
