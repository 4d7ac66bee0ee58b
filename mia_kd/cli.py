"""The ``mia-kd`` command line. User errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from mia_kd import __version__
from mia_kd.errors import UserError

log = logging.getLogger("mia_kd")

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if hasattr(args, "overrides") and not sys.stderr.isatty():
        args.overrides = ["runtime.progress=false", *args.overrides]  # no progress bars in log files
    try:
        return args.func(args)
    except UserError as exc:
        print(f"mia-kd: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("mia-kd: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mia-kd", description="Distil language models and measure what they leak to membership inference."
    )
    parser.add_argument("--version", action="version", version=f"mia-kd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    trial = sub.add_parser(
        "trial", help="run one trial: teacher, distilled student, attacks, metrics; write Parquet",
        description="Run one trial and write its rows of the trials, metrics and records tables under --out.",
    )
    trial.add_argument("config", help="YAML trial config, e.g. sweeps/quickstart.yaml")
    trial.add_argument("--out", default="results", help="results folder or URL (default: ./results)")
    trial.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set teacher.train.epochs=5 (repeatable)",
    )
    _verbosity(trial)
    trial.set_defaults(func=_cmd_trial)

    sweep = sub.add_parser(
        "sweep", help="run (or resume) a sweep: Ray Tune trials, Optuna search per method, Parquet results",
        description="Run the sweep a config's `sweep:` section describes. Rerunning the same command on the same "
        "--out resumes it: completed trials are not run again.",
    )
    sweep.add_argument("config", help="YAML config with a sweep: section, e.g. sweeps/quickstart.yaml")
    sweep.add_argument("--out", help="results folder (default: the config's sweep.out)")
    sweep.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to run on (auto, ray://HOST:PORT); default: $RAY_ADDRESS, else Ray in this process",
    )
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set sweep.trials_per_method=2 (repeatable)")
    _verbosity(sweep)
    sweep.set_defaults(func=_cmd_sweep)

    status = sub.add_parser("status", help="trials per method and status, best objectives, elapsed and ETA")
    status.add_argument("out", help="a sweep's results folder")
    _verbosity(status)
    status.set_defaults(func=_cmd_status)

    export = sub.add_parser(
        "export", help="copy one trial's student out as a Hugging Face model folder with a model card"
    )
    export.add_argument("out", help="a sweep's results folder")
    export.add_argument("trial_id", help="the trial whose student to export (see mia-kd status)")
    export.add_argument("dest", help="destination folder (must not exist)")
    _verbosity(export)
    export.set_defaults(func=_cmd_export)

    methods = sub.add_parser(
        "methods", help="list the privacy-preserving distillation methods",
        description="Privacy methods with their hook, strength range, neutral value and stages.",
    )
    _verbosity(methods)
    methods.set_defaults(func=_cmd_methods)
    return parser


def _verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, library warnings")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final table")


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _cmd_trial(args: argparse.Namespace) -> int:
    from mia_kd.config import load_config

    config = load_config(args.config, args.overrides)  # validated before anything heavy is imported

    from mia_kd.store import write_result
    from mia_kd.trial import run_trial

    start = time.perf_counter()
    result = run_trial(config)
    paths = write_result(args.out, result)
    print(format_trial(result.trial, result.metrics))
    print(f"\nwrote trial {result.trial_id} in {time.perf_counter() - start:.0f} s: {len(paths)} tables under {args.out}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from mia_kd.sweep.config import load_sweep

    load_sweep(args.config, args.overrides)  # every user error before Ray starts
    if not args.verbose:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    from mia_kd.sweep.runner import run_sweep

    outcome = run_sweep(args.config, out=args.out, address=args.address, overrides=args.overrides, verbose=args.verbose)
    print(
        f"\nsweep done in {outcome.seconds / 60:.1f} min: {outcome.ran} trials run now; the store holds "
        f"{outcome.completed} completed, {outcome.failed} failed trials\nresults: {outcome.out}\n"
        f"next: mia-kd status {outcome.out}   (optuna-dashboard {outcome.out / 'optuna' / 'journal.log'})"
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from mia_kd.sweep.status import format_status, sweep_status

    print(format_status(sweep_status(args.out)))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from mia_kd.sweep.export import export_student

    dest = export_student(args.out, args.trial_id, args.dest)
    print(f"exported trial {args.trial_id} to {dest}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from mia_kd.privacy import method_classes

    rows = [("method", "hook", "strength", "neutral", "stages", "what it does")]
    for cls in method_classes():
        rows.append(
            (cls.name, cls.hook, f"[{cls.low:g}, {cls.high:g}]", f"{cls.neutral:g}", ",".join(sorted(cls.stages)), cls.summary)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[-1])
    print("\nuse: privacy: {method: NAME, strength: X, stage: train|serve, ...params} in a trial config")
    return 0


def format_trial(trial: dict, metrics: list[dict]) -> str:
    """Per attack: teacher and student AUC, TPR, TNR with 95% CIs; then both task losses."""
    by_attack: dict[str, dict[str, dict]] = {}
    for row in metrics:
        by_attack.setdefault(row["attack"], {})[row["model_role"]] = row

    def cell(row: dict | None, stat: str) -> str:
        if row is None:
            return "-"
        return f"{row[stat]:.3f} [{row[stat + '_low']:.2f},{row[stat + '_high']:.2f}]"

    header = ["attack", "teacher AUC", "TPR", "TNR", "student AUC", "TPR", "TNR"]
    lines = [header]
    for attack, roles in by_attack.items():
        lines.append(
            [attack]
            + [cell(roles.get("teacher"), s) for s in ("auc", "tpr", "tnr")]
            + [cell(roles.get("student"), s) for s in ("auc", "tpr", "tnr")]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(value.ljust(w) for value, w in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("")
    text.append(
        f"privacy method: {trial['method']} at strength {trial['strength']:g} ({trial['privacy_stage']} stage); "
        f"distilled on {trial['n_transfer']} records; vulnerable subset: {trial['n_vulnerable']} members "
        f"flagged by the teacher's {trial['vulnerability_attack']} attack"
        + (f"; DP-SGD epsilon {trial['epsilon']:.2f}" if trial.get("epsilon") is not None else "")
    )
    text.append(
        f"task loss on utility (nats/token): teacher {trial['teacher_task_loss']:.3f}, "
        f"student {trial['student_task_loss']:.3f}"
    )
    text.append(
        f"privacy objective: {trial['privacy_objective']} {trial['objective_privacy']:.3f} "
        f"(worst attack on the student: {trial['objective_privacy_attack']}); "
        f"TPR = members exposed, TNR = non-members protected, at thresholds fit on calib"
    )
    text.append(
        f"blind check (bag of words, no model): AUC {trial['blind_auc']:.3f} "
        f"[{trial['blind_auc_low']:.2f},{trial['blind_auc_high']:.2f}]"
        + ("  SHIFTED SPLIT (allowed by config)" if trial["split_shifted"] else "")
    )
    return "\n".join(text)
