import pytest

from mia_kd.config import TrialConfig, apply_override, load_config, validate_config
from mia_kd.errors import ConfigError
from mia_kd.validate import check_config


def checked(raw: dict) -> TrialConfig:
    """Structure and ranges (the config layer), then names and options (the plug-ins): what the CLI runs."""
    return check_config(validate_config(raw))


def test_quickstart_config_validates():
    config = load_config("sweeps/quickstart.yaml")
    assert config.sweep_id == "quickstart"
    assert [a.name for a in config.attacks] == ["loss", "zlib", "lowercase", "min_k", "min_k_pp", "recall", "reference"]


def test_overrides_are_parsed_as_yaml():
    raw: dict = {}
    apply_override(raw, "teacher.train.epochs=5")
    apply_override(raw, "data.allow_shifted_split=true")
    apply_override(raw, "attacks=[loss, zlib]")
    config = validate_config(raw)
    assert config.teacher.train.epochs == 5 and config.data.allow_shifted_split is True
    assert [a.name for a in config.attacks] == ["loss", "zlib"]


def test_attack_shorthand_and_params():
    config = validate_config({"attacks": ["loss", {"name": "min_k", "k": [0.1, 0.2]}]})
    assert config.attacks[1].params == {"k": [0.1, 0.2]}


def test_config_hash_ignores_runtime_but_not_science():
    base = TrialConfig()
    assert base.config_hash() == validate_config({"runtime": {"threads": 1}}).config_hash()
    assert base.config_hash() != validate_config({"seed": 1}).config_hash()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"attacks": []}, "at least one attack"),
        ({"attacks": ["loss", "loss"]}, "duplicate"),
        ({"attacks": [{"name": "recall", "shots": [1, 2]}]}, "recall.shots"),
        ({"tokenizer": {"vocab_size": 10}}, "tokenizer.vocab_size"),
        ({"sweep_id": "a/b"}, "sweep_id"),
    ],
)
def test_invalid_values_name_the_key(raw, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        checked(raw)
    assert fragment in str(info.value)


def test_code_cites_only_the_design_document_in_the_repository():
    import re
    from pathlib import Path

    root = Path(__file__).parent.parent
    design = (root / "docs" / "architecture.md").read_text()
    sections = {int(n) for n in re.findall(r"^## (\d+)\.", design, flags=re.M)}
    for path in [*(root / "mia_kd").rglob("*.py"), *(root / "tests").rglob("*.py")]:
        text = path.read_text()
        assert "DESIGN" + " §" not in text, f"{path} cites a design document outside the repository"
        for cited in re.findall(r"docs/architecture\.md §(\d+)", text):
            assert int(cited) in sections, f"{path} cites §{cited}, which docs/architecture.md does not have"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"seed": 2**32}, "seed: must be below 2**32 = 4294967296, the most scikit-learn's random_state takes; got"),
        ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"student_seed": 2**63}, "student_seed: must be below 2**63"),
        ({"runtime": {"device": "tpu9"}}, "runtime.device: must be auto, cpu, cuda, cuda:N (N a GPU index) or mps; got 'tpu9'"),
        ({"runtime": {"device": "cuda:"}}, "runtime.device: must be auto"),
        ({"teacher": {"config": {"n_embd": 100, "n_head": 3}}}, "teacher.config.n_embd: 100 is not divisible by n_head 3"),
        (
            {"student": {"model_type": "llama", "config": {"hidden_size": 64, "num_attention_heads": 6}}},
            "student.config.hidden_size: 64 is not divisible by num_attention_heads 6; make it a multiple of "
            "num_attention_heads (e.g. 60 or 66)",
        ),
    ],
)
def test_values_a_trial_would_crash_on_are_refused_with_the_key(raw, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert str(info.value).startswith(expected)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_devices_the_trial_accepts(device):
    assert validate_config({"runtime": {"device": device}}).runtime.device == device


def test_largest_seeds_and_pretrained_architectures_pass():
    config = validate_config({"seed": 2**32 - 1, "student_seed": 2**63 - 1})
    assert config.effective_student_seed == 2**63 - 1
    # A pretrained model's own config decides its shape: `config` is not used, so not checked.
    assert validate_config({"teacher": {"pretrained": "gpt2", "config": {"n_embd": 100, "n_head": 3}}})


def test_every_schema_problem_has_its_line():
    from pydantic import ValidationError

    from mia_kd.config._load import format_validation_error, validation_problems

    raw = {"seed": -1, "teechr": {}, "runtime": {"device": "tpu9"}, "student": {"config": {"n_embd": 10, "n_head": 4}}}
    with pytest.raises(ValidationError) as info:
        TrialConfig.model_validate(raw)
    lines = validation_problems(info.value, TrialConfig)
    assert [line.split(":")[0].split(";")[0] for line in lines] == [
        "unknown key 'teechr'", "seed", "student.config.n_embd", "runtime.device",
    ]
    assert format_validation_error(info.value, TrialConfig) == f"{lines[0]} (and 3 more problems)"
