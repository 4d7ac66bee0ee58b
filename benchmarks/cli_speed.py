"""Command-line start-up: how long the light ``mia-kd`` commands take, each run as a user runs it.

Each command runs ``--repeats`` times in a fresh process of the installed ``mia-kd`` (the console script next
to this Python), after one unmeasured run that warms the file cache; the median wall time is compared with
its target. Argument parsing imports nothing heavy and ``methods`` reads the methods' metadata without torch
(``mia_kd/cli.py``), so these answer well under the seconds a ``trial`` spends loading torch.

    python benchmarks/cli_speed.py [--repeats 5] [--json benchmarks/results/cli_speed.json]

``--json PATH`` writes the medians there and the Markdown table next to it (``PATH`` with ``.md``), which
``docs/update_readme.py`` puts into the README.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# command line after `mia-kd` -> target median in seconds (None: measured, no target)
COMMANDS: dict[str, float | None] = {
    "--help": 0.3,
    "--version": 0.3,
    "methods": 1.0,
    "validate sweeps/quickstart.yaml": 3.0,  # a config without pretrained models: no torch
}


def run_once(exe: str, command: str) -> tuple[float, float] | None:
    """Wall and CPU (user + system) seconds of one ``mia-kd COMMAND``, process start to exit; None (and its
    error shown) if it fails. CPU time tells the command's own cost on a machine other work shares."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([exe, *command.split()], cwd=ROOT, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(f"mia-kd {command} exited {proc.returncode}: {proc.stderr.strip()}", file=sys.stderr)
        return None
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--exe", default=str(Path(sys.executable).parent / "mia-kd"),
                        help="the console script to time (default: the mia-kd next to this Python)")
    parser.add_argument("--json", metavar="PATH", help="write the medians here, and the table to PATH with .md")
    args = parser.parse_args()
    if not Path(args.exe).is_file():
        raise SystemExit(f"{args.exe}: no mia-kd console script; install the package (pip install -e .) or pass --exe")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # validate must not reach the network

    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    median: dict[str, float | None] = {}  # None: the command failed (the table says so, the others still run)
    for command in COMMANDS:
        warm = run_once(args.exe, command)  # warms the file cache; not counted
        runs = [] if warm is None else [run_once(args.exe, command) for _ in range(args.repeats)]
        done = [run for run in runs if run is not None]
        times[command], cpu[command] = [run[0] for run in done], [run[1] for run in done]
        median[command] = statistics.median(times[command]) if runs and len(done) == len(runs) else None

    lines = [
        f"CLI start-up ({date.today()}, `python benchmarks/cli_speed.py --repeats {args.repeats}`; "
        f"median of {args.repeats} runs each, warm file cache, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f})",
        "",
        "| command | median s | CPU s | target s | ok |",
        "|---|---:|---:|---:|---|",
    ]
    for command, target in COMMANDS.items():
        seconds = median[command]
        ok = "FAILED" if seconds is None else "-" if target is None else "yes" if seconds <= target else "NO"
        shown = "-" if seconds is None else f"{seconds:.2f}"
        cpu_shown = f"{statistics.median(cpu[command]):.2f}" if seconds is not None else "-"
        lines.append(f"| `mia-kd {command}` | {shown} | {cpu_shown} | {'-' if target is None else target} | {ok} |")
    table = "\n".join(lines)
    print(table)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "date": str(date.today()), "repeats": args.repeats, "cpus": os.cpu_count(), "median": median,
            "seconds": times, "cpu_seconds": cpu, "target": COMMANDS,
            "met": all(median[c] is not None and (t is None or median[c] <= t) for c, t in COMMANDS.items()),
        }, indent=2))
        out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
