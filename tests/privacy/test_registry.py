import pytest

from mia_kd.errors import ConfigError
from mia_kd.privacy._methods import check_method


def test_none_is_plain_distillation_and_deterministic(distil):
    from mia_kd.privacy._base import PrivacyMethod  # noqa: F401

    a, _ = distil("none", 0.0)
    b, _ = distil("none", 0.0)
    pa, pb = dict(a.student.named_parameters()), dict(b.student.named_parameters())
    assert all(bool((pa[k] == pb[k]).all()) for k in pa)
    assert a.n_transfer == 40


def test_unknown_method_and_out_of_range_strength_are_config_errors():
    with pytest.raises(ConfigError, match="unknown privacy method 'nonee'"):
        check_method("nonee", 0.0, {}, "train")
    with pytest.raises(ConfigError, match=r"privacy.strength: got 0.5, none allows \[0, 0\]"):
        check_method("none", 0.5, {}, "train")
    with pytest.raises(ConfigError, match="privacy.stage"):
        check_method("none", 0.0, {}, "serve")


def test_default_strength_space_is_the_class_range_searched_as_a_float():
    from mia_kd.config import TrialConfig
    from mia_kd.privacy import StrengthSpace, method_classes

    config = TrialConfig()
    for cls in method_classes():
        if cls.name in ("nonorm", "bottleneck", "dp_sgd"):
            continue  # their spaces depend on the student (tests in their own files) or are their own
        assert cls.strength_space(config) == StrengthSpace(cls.low, cls.high, False), cls.name
    space = StrengthSpace(0.0, 1.0, False)
    with pytest.raises(AttributeError):
        space.low = 0.5  # frozen: a value
