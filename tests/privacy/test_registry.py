import pytest

from mia_kd.errors import ConfigError
from mia_kd.privacy import check_method


# `none` distilled twice gives the same student, its range and stage are checked: tests/privacy/test_contract.py.


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown privacy method 'nonee'"):
        check_method("nonee", 0.0, {}, "train")


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
