"""Rewrite the generated blocks of README.md and docs/*.md from the code and from measured output, so they
cannot go stale.

    python docs/update_readme.py          # rewrite the files in place
    python docs/update_readme.py --check  # exit 1 if a file differs from what it would write

Each block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``:

- ``config-reference``: every config key with its default and help (from ``mia_kd.config``);
- ``methods-table``: the privacy methods (from the registry);
- ``methods-effect``: ``benchmarks/results/methods_effect.md``, written by ``benchmarks/methods_effect.py``;
- ``quickstart-trial`` and ``quickstart-sweep``: ``benchmarks/results/quickstart.md``'s sections of the same
  names, written by ``benchmarks/quickstart.py``;
- ``search-efficiency``, ``dp-sgd-speed``, ``cli-speed`` and ``smoke``: ``benchmarks/results/search_efficiency.md``,
  ``dp_sgd_speed.md``, ``cli_speed.md`` and ``smoke.md``, written by the benchmarks of the same names.

A block may sit in any of the files; each is rewritten where it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _sections(path: Path) -> dict[str, str]:
    """``## name`` sections of a measured-output Markdown file."""
    if not path.is_file():
        return {}
    parts = re.split(r"^## (\S+)\n", path.read_text(), flags=re.M)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def blocks() -> dict[str, str]:
    from mia_kd.config.reference import reference_markdown
    from mia_kd.privacy import methods_markdown

    out = {"config-reference": reference_markdown(), "methods-table": methods_markdown()}
    effect = RESULTS / "methods_effect.md"
    if effect.is_file():
        out["methods-effect"] = effect.read_text().strip()
    out.update(_sections(RESULTS / "quickstart.md"))
    for name in ("search-efficiency", "dp-sgd-speed", "cli-speed", "smoke"):
        file = name.replace("-", "_") + ".md"
        if (RESULTS / file).is_file():
            out[name] = (RESULTS / file).read_text().strip()
    return out


def render(readme: str, generated: dict[str, str]) -> str:
    for name, body in generated.items():
        pattern = re.compile(rf"(<!-- {re.escape(name)}:start -->\n).*?(<!-- {re.escape(name)}:end -->)", re.S)
        readme = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), readme)
    return readme


def files() -> list[Path]:
    """The files whose blocks are generated: the README and the documents under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is not up to date")
    args = parser.parse_args()
    generated = blocks()
    stale = []
    for path in files():
        old = path.read_text()
        new = render(old, generated)
        if new != old:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"stale: {', '.join(map(str, stale))}: run python docs/update_readme.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
