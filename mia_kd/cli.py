"""The ``mia-kd`` command line. User errors become one line on stderr and exit code 2; any other error one
line and exit code 1 (its traceback with ``-v``).

Parsing the arguments imports nothing heavy (``--help`` answers in a blink): each command imports what it
needs inside its function, and ``mia-kd methods`` reads the methods' metadata without torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence

from mia_kd import __version__
from mia_kd.errors import UserError

log = logging.getLogger("mia_kd")

EXIT_ERROR = 1
EXIT_USER_ERROR = 2
# mia_kd.analysis.frontier.DEFAULT_MARGIN, for the help text only: importing it would load pandas and pyarrow
# on every --help (tests/test_cli.py keeps the two equal).
FRONTIER_DEFAULT_MARGIN = 0.5
# What `pip install "mia-kd[sweep]"` adds to the base (analysis) install (pyproject.toml).
SWEEP_EXTRA = frozenset({"torch", "ray", "transformers", "tokenizers", "datasets", "optuna", "opacus", "sklearn"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    if hasattr(args, "overrides") and not sys.stderr.isatty():
        args.overrides = ["runtime.progress=false", *args.overrides]  # no progress bars in log files
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at interpreter exit
        return code
    except UserError as exc:
        print(f"mia-kd: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("mia-kd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mia-kd methods | head`: the reader has what it wanted; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush must not fail again
        return EXIT_ERROR
    except Exception as exc:  # a bug or an environment problem, not the user's input: still one line
        missing = exc.name.split(".")[0] if isinstance(exc, ModuleNotFoundError) and exc.name else None
        if missing in SWEEP_EXTRA:  # the base install is the analysis side; trials and sweeps need the extra
            print(f"mia-kd: error: mia-kd {args.command} needs {missing}, which is not installed here; install the "
                  "sweep extra: pip install 'mia-kd[sweep]'", file=sys.stderr)
            return EXIT_USER_ERROR
        verbose = getattr(args, "verbose", False)
        if verbose:
            traceback.print_exc()
        lines = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        hint = "" if verbose else " (rerun with -v for the traceback)"
        print(f"mia-kd: error: {message}{hint}", file=sys.stderr)
        return EXIT_ERROR


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
    _overrides(trial, "teacher.train.epochs=5")
    _verbosity(trial)
    trial.set_defaults(func=_cmd_trial)

    sweep = sub.add_parser(
        "sweep", help="run (or resume) a sweep: Ray Tune trials, Optuna search per method, Parquet results",
        description="Run the sweep a config's `sweep:` section describes. Rerunning the same command on the same "
        "--out resumes it: completed trials are not run again.",
    )
    sweep.add_argument("config", help="YAML config with a sweep: section, e.g. sweeps/quickstart.yaml")
    sweep.add_argument("--out", help="results folder or URL (s3://, gs://, ...) every node reaches (default: sweep.out)")
    sweep.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to run on (auto, ray://HOST:PORT); default: $RAY_ADDRESS, else Ray in this process",
    )
    sweep.add_argument(
        "--allow-local-out", action="store_true",
        help="on a multi-node cluster, accept a path for --out: it is on a mount every node sees (NFS, one machine)",
    )
    _overrides(sweep, "sweep.trials_per_method=2")
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
    export.add_argument("--license", help="the model card's license, a Hub license id such as apache-2.0 (default: other)")
    _verbosity(export)
    export.set_defaults(func=_cmd_export)

    frontier = _analysis_parser(
        sub, "frontier", "privacy-utility Pareto fronts, hypervolume and knee, per method and across methods",
        "Writes frontier.parquet (the rows on a front), frontier.png and frontier.html to --out. The hypervolume "
        "reference point is recorded in DIR/frontier.json the first time, so later runs compare.",
    )
    frontier.add_argument("--margin", type=float, help=f"reference point = none baseline + MARGIN x |baseline| "
                          f"(default {FRONTIER_DEFAULT_MARGIN}; only when no point is recorded yet)")
    frontier.add_argument("--reference-point", type=_pair, metavar="PRIVACY,UTILITY",
                          help="set the reference point instead (only when none is recorded yet)")
    frontier.set_defaults(func=_cmd_frontier)

    asymmetry = _analysis_parser(
        sub, "asymmetry", "teacher vs student: TPR (members exposed), TNR (non-members protected), 2x2 agreement",
        "Per trial, on the eval fold. Writes asymmetry.parquet and asymmetry.png to --out.",
    )
    asymmetry.add_argument("--attack", help="which attack (default: loss)")
    asymmetry.set_defaults(func=_cmd_asymmetry)

    ensemble = _analysis_parser(
        sub, "ensemble", "choose ensemble members automatically (greedy selection on calib, reported on eval)",
        "The ensemble is the mixture of its members' next-token distributions, scored exactly from the stored "
        "per-token log-probs. Adds a row to the ensembles table.",
    )
    limit = ensemble.add_mutually_exclusive_group()
    limit.add_argument("--max-task-loss", type=float, metavar="X", help="the ensemble's task loss must stay <= X")
    limit.add_argument("--max-utility-drop", type=float, metavar="P",
                       help="task loss at most (1 + P) x the best single student's (default 0.05)")
    ensemble.add_argument("--max-size", type=int, default=5, help="selection steps (default 5)")
    ensemble.add_argument("--without-replacement", action="store_true", help="each student at most once")
    ensemble.add_argument("--export", metavar="DEST",
                          help="write the members' model folders and a manifest for mia_kd.load_ensemble(DEST); "
                               "chooses among trials whose students were saved")
    ensemble.set_defaults(func=_cmd_ensemble)

    report = _analysis_parser(
        sub, "report", "one self-contained HTML page: summary, frontier, methods, asymmetry, ROC, ensemble",
        "Writes report.html into --out (default: DIR/analysis).",
    )
    report.add_argument("--plotly-js", choices=("inline", "cdn"), default="inline",
                        help="inline: plotly.js inside the page, works offline (default); cdn: load it from cdn.plot.ly")
    report.set_defaults(func=_cmd_report)

    validate = sub.add_parser(
        "validate", help="check a trial or sweep config completely, without downloading or training",
        description="Checks names, ranges, local data files (readable, the text column, enough records for the "
        "split), local pretrained models (the folder, causal LM, shared vocabulary) and the cache folder, and "
        "lists every problem, one line each (exit code 2). Hub ids are listed as not checked.",
    )
    validate.add_argument("config", help="YAML trial or sweep config")
    validate.add_argument("--print-config", action="store_true", help="also print the resolved config as YAML")
    _overrides(validate, "tokenizer.max_length=256")
    _verbosity(validate)
    validate.set_defaults(func=_cmd_validate)

    methods = sub.add_parser(
        "methods", help="list the privacy-preserving distillation methods",
        description="Privacy methods with their hook, strength range, neutral value and stages.",
    )
    _verbosity(methods)
    methods.set_defaults(func=_cmd_methods)
    return parser


def _analysis_parser(sub, name: str, help: str, description: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=f"{help[0].upper()}{help[1:]}. {description}")
    parser.add_argument("dir", help="a results folder (mia-kd sweep --out)")
    parser.add_argument("--sweep-id", help="which sweep, when the folder holds several")
    parser.add_argument("--out", metavar="FOLDER", help="folder to write into, created if missing (default: "
                        "DIR/analysis); with --out nothing is written to DIR, so DIR may be read-only")
    _verbosity(parser)
    return parser


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected two numbers like 0.9,6.5") from None
    return a, b


def _overrides(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {example} (repeatable)")


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
    from mia_kd import api

    config = api.load_config(args.config, args.overrides)  # every user error before any training
    start = time.perf_counter()
    result = api.run_trial(config)
    paths = result.write(args.out)
    print(format_trial(result.trial, result.metrics))
    print(f"\nwrote trial {result.trial_id} in {time.perf_counter() - start:.0f} s: {len(paths)} tables under {args.out}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from mia_kd import api

    config = api.load_sweep(args.config, args.overrides)  # every user error before Ray starts
    if not args.verbose:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    outcome = api.run_sweep(config, out=args.out, address=args.address, verbose=args.verbose,
                            allow_local_out=args.allow_local_out)
    print(
        f"\nsweep done in {outcome.seconds / 60:.1f} min: {outcome.ran} trials run now; the store holds "
        f"{outcome.completed} completed, {outcome.failed} failed trials\nresults: {outcome.out}\n"
        f"next: mia-kd frontier {outcome.out}   mia-kd ensemble {outcome.out}   mia-kd report {outcome.out}\n"
        f"      (mia-kd status {outcome.out}; optuna-dashboard {outcome.journal})"
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from mia_kd.sweep.status import format_status, sweep_status

    print(format_status(sweep_status(args.out)))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from mia_kd.sweep.export import export_student

    dest = export_student(args.out, args.trial_id, args.dest, license=args.license)
    print(f"exported trial {args.trial_id} to {dest}")
    return 0


def _show(outcome) -> int:
    print(outcome.text)
    print("\nwrote: " + ", ".join(str(p) for p in outcome.paths))
    return 0


def _cmd_frontier(args: argparse.Namespace) -> int:
    from mia_kd.analysis import commands

    return _show(commands.frontier(args.dir, sweep_id=args.sweep_id, margin=args.margin,
                                   reference=args.reference_point, out=args.out))


def _cmd_asymmetry(args: argparse.Namespace) -> int:
    from mia_kd.analysis import commands

    return _show(commands.asymmetry(args.dir, sweep_id=args.sweep_id, attack=args.attack, out=args.out))


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from mia_kd.analysis import commands

    outcome = commands.ensemble(
        args.dir, sweep_id=args.sweep_id, max_task_loss=args.max_task_loss, max_utility_drop=args.max_utility_drop,
        max_size=args.max_size, with_replacement=not args.without_replacement, export=args.export, out=args.out,
    )
    if outcome.export is not None:  # the analysis chose it; writing the models is the models' side
        import dataclasses

        from mia_kd.distill.ensemble import export_ensemble

        e = outcome.export
        outcome = dataclasses.replace(
            outcome, paths=[*outcome.paths, export_ensemble(e.students, e.members, e.weights, e.dest, e.meta)]
        )
    return _show(outcome)


def _cmd_report(args: argparse.Namespace) -> int:
    from mia_kd.analysis import commands

    return _show(commands.report(args.dir, sweep_id=args.sweep_id, out=args.out, plotly_js=args.plotly_js))


def _cmd_validate(args: argparse.Namespace) -> int:
    from mia_kd.validate import validate

    print(validate(args.config, args.overrides, print_config=args.print_config))
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from mia_kd.privacy import method_classes

    rows = [("method", "hook", "strength", "neutral", "stages", "what it does")]
    for cls in method_classes():
        rows.append(
            (cls.name, cls.hook, f"[{cls.low:g}, {cls.high:g}]" + " integer" * cls.integer_strength, f"{cls.neutral:g}",
             ",".join(sorted(cls.stages)), cls.summary)
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
