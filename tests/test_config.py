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


def test_readme_config_reference_matches_the_code():
    from pathlib import Path

    from mia_kd.config.reference import reference_markdown

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- config-reference:start -->\n") + len("<!-- config-reference:start -->\n")
    end = readme.index("<!-- config-reference:end -->")
    assert readme[start:end].strip() == reference_markdown(), "regenerate with: python docs/update_readme.py"


def test_readme_methods_table_matches_the_registry():
    from pathlib import Path

    from mia_kd.privacy import methods_markdown

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- methods-table:start -->\n") + len("<!-- methods-table:start -->\n")
    end = readme.index("<!-- methods-table:end -->")
    assert readme[start:end].strip() == methods_markdown()


def test_readme_generated_blocks_match_their_sources():
    # Measured numbers are copied into the README by docs/update_readme.py from benchmarks/results/, never by hand.
    import importlib.util
    from pathlib import Path

    root = Path(__file__).parent.parent
    spec = importlib.util.spec_from_file_location("update_readme", root / "docs" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (root / "README.md").read_text()
    generated = module.blocks()
    assert {"methods-effect", "quickstart-trial", "quickstart-sweep"} <= set(generated)
    assert module.render(readme, generated) == readme, "regenerate with: python docs/update_readme.py"


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
