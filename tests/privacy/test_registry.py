import subprocess
import sys

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


def test_method_metadata_and_checks_need_no_torch():
    """Discovery imports every method module: none may load torch (or the models behind it) at import, so that
    `mia-kd methods` and config checks stay fast; torch loads when a method runs."""
    code = (
        "import sys\nfrom mia_kd.privacy import check_method, method_classes, methods_markdown\n"
        "assert len(method_classes()) >= 9 and 'dp_sgd' in methods_markdown()\n"
        "check_method('dp_sgd', 1.0, {'max_grad_norm': 2.0}, 'train')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'opacus'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_the_architecture_methods_module_classes_load_on_first_use():
    import torch

    from mia_kd.privacy import bottleneck, nonorm

    assert issubclass(bottleneck.BottleneckProjection, torch.nn.Module) and issubclass(nonorm.NoNorm, torch.nn.Module)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchLayer'"):
        nonorm.NoSuchLayer  # noqa: B018
