import pytest

from mia_kd.errors import ConfigError
from mia_kd.privacy import MethodContext, build_method, check_method


def filter_method(vulnerability, strength: float, **params):
    context = MethodContext(vulnerability=vulnerability, vocab_size=64, seed=0, n_records=len(vulnerability.member_ids))
    return build_method("vulnerable_filter", strength, params, context)


def test_neutral_strength_is_plain_distillation_even_with_a_margin(distil, plain, weight_diff):
    result, _ = distil("vulnerable_filter", 0.0, margin=0.1)
    assert result.n_transfer == 40
    assert weight_diff(result.student, plain.student) < 1e-6


def test_full_strength_keeps_exactly_the_non_vulnerable_members_in_order(vulnerability, record_ids):
    # The fixture ranks r039 first and flags the top 10, so r030..r039 are the vulnerable subset.
    keep = filter_method(vulnerability, 1.0).select_records(record_ids)
    assert keep == list(range(30))
    assert {record_ids[i] for i in keep}.isdisjoint(vulnerability.vulnerable_ids)


def test_strength_drops_a_fraction_of_the_vulnerable_subset_and_margin_the_next_ranked(vulnerability, record_ids):
    half = filter_method(vulnerability, 0.5).select_records(record_ids)
    assert [record_ids[i] for i in range(40) if i not in half] == ["r035", "r036", "r037", "r038", "r039"]
    # margin 0.05 of 40 members = 2 more, the next two in the ranking (r034, r033)
    wider = filter_method(vulnerability, 0.5, margin=0.05).select_records(record_ids)
    assert wider == list(range(33))
    # the study's "vulnerable + 10%" subset: 10 + 4 dropped
    assert filter_method(vulnerability, 1.0, margin=0.1).select_records(record_ids) == list(range(26))


def test_indices_refer_to_the_given_order_and_unranked_records_are_kept(vulnerability):
    transfer = ["x1", "r039", "r000", "r031", "x2", "r029"]  # x*: transfer records that are not ranked members
    keep = filter_method(vulnerability, 1.0).select_records(transfer)
    assert keep == [0, 2, 4, 5]


def test_distilling_at_full_strength_uses_30_records_and_changes_the_student(distil, plain, weight_diff):
    result, _ = distil("vulnerable_filter", 1.0)
    assert result.n_transfer == 30
    assert weight_diff(result.student, plain.student) > 1e-4


def test_dropping_every_transfer_record_is_a_config_error(vulnerability):
    with pytest.raises(ConfigError, match="drops all 2 transfer records"):
        filter_method(vulnerability, 1.0).select_records(["r039", "r030"])


def test_margin_range_is_checked():
    with pytest.raises(ConfigError, match="privacy.params.margin"):
        check_method("vulnerable_filter", 1.0, {"margin": 0.6}, "train")
    check_method("vulnerable_filter", 1.0, {"margin": 0.05}, "train")
