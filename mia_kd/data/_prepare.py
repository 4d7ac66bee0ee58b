"""A trial's records: loaded, cleaned, split with exact membership, and blind-checked (docs/architecture.md §3)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mia_kd.data._blind import BlindCheck, blind_check, require_iid
from mia_kd.data._load import load_texts
from mia_kd.data._record import make_records
from mia_kd.data._split import Split, SplitSizes, split_labelled, split_records, split_shifted

if TYPE_CHECKING:
    from mia_kd.config import TrialConfig

__all__ = ["prepare_split"]

log = logging.getLogger(__name__)


def prepare_split(config: TrialConfig) -> tuple[Split, BlindCheck, bool]:
    """``(split, blind check, shifted)`` of ``config.data``, split with ``config.seed``.

    Loads, cleans and splits the records and runs the blind check; a shifted split (the check tells members
    from non-members without a model) is refused unless ``data.allow_shifted_split``, and ``shifted`` says
    it was allowed.
    """
    dcfg = config.data
    sizes = SplitSizes(
        members=dcfg.members, nonmembers=dcfg.nonmembers, utility=dcfg.utility, public=dcfg.public,
        calib_fraction=dcfg.calib_fraction, transfer=dcfg.transfer,
    )
    name, texts = load_texts(dcfg.source)
    records = make_records(texts, name)
    if dcfg.nonmember_source is None:
        split = split_records(records, sizes, seed=config.seed)
    else:
        other, other_texts = load_texts(dcfg.nonmember_source, "data.nonmember_source")
        divide = split_labelled if dcfg.membership == "pretraining" else split_shifted
        split = divide(records, make_records(other_texts, other), sizes, seed=config.seed)
    log.info("split %s", split.summary())
    blind = blind_check(split, seed=config.seed, n_bootstrap=dcfg.blind_check_bootstrap)
    # Given splits (pretraining) are often separable without a model: the verdict is always shown.
    log.log(
        logging.WARNING if not blind.passed else logging.INFO,
        "blind check: bag-of-words AUC %.3f (95%% CI %.3f–%.3f): %s", blind.auc, blind.auc_low, blind.auc_high,
        "members and non-members are separable without a model" if not blind.passed else "no signal without a model",
    )
    require_iid(blind, allow_shifted=dcfg.allow_shifted_split)
    return split, blind, not blind.passed
