"""The README and docs/: generated blocks equal their sources, the README stays short, its links resolve."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "docs" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _block(path: Path, name: str) -> str:
    text = path.read_text()
    start = text.index(f"<!-- {name}:start -->\n") + len(f"<!-- {name}:start -->\n")
    return text[start:text.index(f"<!-- {name}:end -->")].strip()


def test_config_reference_matches_the_code():
    from mia_kd.config.reference import reference_markdown

    assert _block(ROOT / "docs" / "config.md", "config-reference") == reference_markdown(), (
        "regenerate with: python docs/update_readme.py")


def test_methods_table_matches_the_registry():
    from mia_kd.privacy import methods_markdown

    assert _block(ROOT / "docs" / "methods.md", "methods-table") == methods_markdown()


def test_generated_blocks_match_their_sources():
    # Measured numbers are copied into the README and docs/ by docs/update_readme.py from benchmarks/results/,
    # never by hand.
    module = _update_readme()
    generated = module.blocks()
    assert {"methods-effect", "quickstart-trial", "quickstart-sweep", "cli-speed", "smoke"} <= set(generated)
    for path in module.files():
        text = path.read_text()
        assert module.render(text, generated) == text, f"{path.name}: regenerate with python docs/update_readme.py"


def test_every_block_is_placed_and_filled():
    module = _update_readme()
    text = "".join(path.read_text() for path in module.files())
    for name in module.blocks():
        assert f"<!-- {name}:start -->" in text, f"block {name} is generated but placed nowhere"
    for path in module.files():
        for name in re.findall(r"<!-- ([\w-]+):start -->", path.read_text()):
            assert _block(path, name), f"{path.name}: block {name} is empty"


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert readme[:readme.index("<!-- ci:test-command -->")].count("\n") < 40, "the two set-up commands stay at the top"
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"
