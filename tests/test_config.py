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


# ---- the transfer set (distill.transfer, data.transfer)


def _hash_before_the_transfer_keys(config: TrialConfig, exclude) -> str:
    """The hash as computed before data.transfer, distill.transfer and shadows existed: the same dump without them."""
    import hashlib
    import json

    payload = config.model_dump(mode="json", exclude=exclude)
    payload.get("data", {}).pop("transfer")
    payload.get("distill", {}).pop("transfer", None)
    payload.pop("shadows")
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def test_transfer_keys_at_their_defaults_leave_stored_hashes_unchanged():
    from pathlib import Path

    from mia_kd.config import load_sweep

    quickstart = load_sweep(Path(__file__).parent.parent / "sweeps" / "quickstart.yaml").base
    for config in (quickstart, TrialConfig()):
        assert config.data.transfer == 0 and config.distill.transfer == "members"
        assert config.config_hash() == _hash_before_the_transfer_keys(
            config, {"runtime": True, "distill": {"teacher_logits", "teacher_logits_max_mb"}})
        assert config.prepare_key() == _hash_before_the_transfer_keys(
            config, {"runtime", "privacy", "distill", "student_seed", "sweep_id"})
        explicit = validate_config({**config.model_dump(), "data": {**config.data.model_dump(), "transfer": 0},
                                    "distill": {**config.distill.model_dump(), "transfer": "members"}})
        assert explicit.config_hash() == config.config_hash() and explicit.prepare_key() == config.prepare_key()


def test_shadow_settings_change_the_hashes_only_away_from_their_defaults():
    base = TrialConfig()
    explicit = validate_config({"shadows": {"count": 8, "online": False}})
    assert explicit.config_hash() == base.config_hash() and explicit.prepare_key() == base.prepare_key()
    more, online = validate_config({"shadows": {"count": 4}}), validate_config({"shadows": {"online": True}})
    assert len({base.config_hash(), more.config_hash(), online.config_hash()}) == 3
    assert more.prepare_key() != base.prepare_key(), "the shadow teachers are part of the preparation"
    with pytest.raises(ConfigError, match="shadows.count.*even"):
        validate_config({"shadows": {"count": 3}})


def test_transfer_settings_change_the_hashes():
    base = TrialConfig()
    pool = validate_config({"data": {"transfer": 100}})
    disjoint = validate_config({"data": {"transfer": 100}, "distill": {"transfer": "disjoint"}})
    assert len({base.config_hash(), pool.config_hash(), disjoint.config_hash()}) == 3
    assert base.prepare_key() != pool.prepare_key()
    # The transfer mode changes what is distilled, not what is prepared (split, teacher, reference, attacks).
    assert pool.prepare_key() == disjoint.prepare_key()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"distill": {"transfer": "disjoint"}},
         "distill.transfer: disjoint needs a transfer pool; set data.transfer to its size"),
        ({"distill": {"transfer": "disjoint"}, "data": {"transfer": 0}}, "distill.transfer: disjoint needs"),
        ({"data": {"transfer": -1}}, "data.transfer: Input should be greater than or equal to 0"),
        ({"distill": {"transfer": "pool"}}, "distill.transfer: Input should be 'members' or 'disjoint'"),
        ({"data": {"transfer": 10, "membership": "pretraining", "nonmember_source": "python-docs"},
          "teacher": {"pretrained": "gpt2", "train": {"epochs": 0}}},
         "data.transfer: membership pretraining has no source for a transfer pool"),
    ],
)
def test_bad_transfer_settings_are_one_line(raw, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_disjoint_without_a_pool_exits_2_from_the_cli(tmp_path, capsys):
    import yaml

    from mia_kd.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"distill": {"transfer": "disjoint"}}))
    assert main(["trial", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "distill.transfer: disjoint needs a transfer pool" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
