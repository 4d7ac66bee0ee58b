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
- ``strong-attacks`` and ``shadow-cost``: ``benchmarks/results/strong_attacks.md``'s sections, written by
  ``benchmarks/strong_attacks.py``; ``transfer-leakage``: ``benchmarks/transfer_leakage.py``'s;
- ``search-efficiency``, ``dp-sgd-speed``, ``cli-speed``, ``smoke``, ``teacher-logits``, ``memory``,
  ``sweep-speedup`` and ``sweep-overhead``: ``benchmarks/results/<name>.md``, written by the benchmarks of the
  same names;
- ``throughput``: one table of the sweep-throughput targets, each ratio read from its benchmark's JSON.

A block may sit in any of the files; each is rewritten where it is.
"""

from __future__ import annotations

import argparse
import json
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
    out.update(_sections(RESULTS / "strong_attacks.md"))  # strong-attacks, shadow-cost
    out.update(_sections(RESULTS / "transfer_leakage.md"))  # transfer-leakage
    for name in ("search-efficiency", "dp-sgd-speed", "cli-speed", "smoke", "teacher-logits", "memory", "sweep-speedup",
                 "sweep-overhead"):
        file = name.replace("-", "_") + ".md"
        if (RESULTS / file).is_file():
            out[name] = (RESULTS / file).read_text().strip()
    out["throughput"] = throughput()
    return out


def _json(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _verdict(met: bool) -> str:
    return "met" if met else "**NOT met**"


def throughput() -> str:
    """The sweep-throughput targets, one row each: the measured ratio, the target, the verdict, where from."""
    rows = []
    speedup = _json("sweep_speedup")
    if speedup:
        before, now = speedup["before"], speedup["now"]
        rows.append((f"quickstart sweep wall time, now ({now['commit']}) / before ({before['commit']})",
                     f"{speedup['ratio']:.2f} ({now['seconds'] / 60:.1f} / {before['seconds'] / 60:.1f} min)",
                     "≤ 0.70", _verdict(speedup["ratio"] <= 0.7), "sweep_speedup.py", speedup["date"]))
        rows.append(("quickstart sweep: students trained", f"{now['students']} (before {before['students']})",
                     "fewer: the neutral point once, not per method", _verdict(now["students"] < before["students"]),
                     "sweep_speedup.py", speedup["date"]))
    dp = _json("dp_sgd_speed")
    if dp:
        ratio = dp["median"]["dp_sgd vectorised"] / dp["median"]["plain"]
        rows.append(("DP-SGD distillation / plain distillation", f"{ratio:.2f}", "≤ 1.5", _verdict(ratio <= 1.5),
                     "dp_sgd_speed.py", dp["date"]))
    logits = _json("teacher_logits")
    if logits:
        rows.append(("distillation speed-up, teacher logits cached vs recomputed", f"{logits['ratio']:.2f}×", "≥ 1.3×",
                     _verdict(logits["ratio"] >= 1.3), "teacher_logits.py", logits["date"]))
    search = _json("search_efficiency")
    if search:
        default = search["default"]
        reached = {m: r["samplers"][default]["reach_95"] for m, r in search["results"].items()}
        oracle = {m: r["oracle"]["reach_95"] for m, r in search["results"].items()}
        limit = 0.25 * search["grid"]
        rows.append((f"default sampler ({default}): trials to 95% of a {search['grid']}-trial grid's hypervolume "
                     f"({' / '.join(reached)}; knowing the surface: {' / '.join(f'{v:g}' for v in oracle.values())})",
                     " / ".join(f"{v:g}" for v in reached.values()), f"≤ {limit:g}",
                     _verdict(all(v <= limit for v in reached.values())), "search_efficiency.py", search["date"]))
    overhead = _json("sweep_overhead")
    if overhead:
        rows.append((f"sweep fixed overhead at {overhead['trials']} trials, share of a trial",
                     f"{100 * overhead['overhead_fraction']:.0f}%", "≤ 10%", _verdict(overhead["overhead_fraction"] <= 0.1),
                     "sweep_overhead.py", overhead["date"]))
    memory = _json("memory")
    if memory and "growth" in memory:
        rows.append(("scoring memory added, 4,000 / 500 records; time vs the previous scorer",
                     f"{memory['growth']['new']:.2f}×; {memory['time_ratio']:.2f}×", "≤ 2×; ≤ 1.10×",
                     _verdict(memory["growth_met"] and memory["time_met"]), "memory.py", memory["date"]))
    rows.append(("GPU: trials per GPU, utilisation, quickstart trial time", "not measured (no GPU lent)", "", "",
                 "gpu_smoke.sh", ""))
    lines = ["| what | measured | target | verdict | `benchmarks/` script, date |", "|---|---:|---|---|---|"]
    lines += [f"| {what} | {value} | {target} | {verdict} | `{script}` {day} |"
              for what, value, target, verdict, script, day in rows]
    return "\n".join(lines)


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
