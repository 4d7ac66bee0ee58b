"""What ``mia-kd frontier | asymmetry | ensemble | report`` do: read the store, compute, write files, and
return the terminal text. Torch-free, like all of :mod:`mia_kd.analysis`, which imports no models: an
ensemble's ``--export`` (copying saved students) is handed back to the CLI as an :class:`EnsembleExport`."""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mia_kd import metrics
from mia_kd.analysis import asymmetry as asym
from mia_kd.analysis import ensemble as ens
from mia_kd.analysis import frontier as fr
from mia_kd.analysis import sweep_tables as tables
from mia_kd.analysis.results import Results, load_results
from mia_kd.errors import UserError
from mia_kd.objectives import PRIVACY, REPORTED_PRIVACY, UTILITY, privacy_statistic
from mia_kd.store import ENSEMBLES, read_table, write_trial

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnsembleExport:
    """What ``mia-kd ensemble --export DEST`` still has to write once the ensemble is chosen: the members'
    saved students (``students/<trial_id>/``) copied to ``dest`` with a manifest, the arguments of
    :func:`mia_kd.distill.ensemble.export_ensemble` in its order."""

    students: Path  # the sweep's saved students folder
    members: list[str]  # trial ids, in the order chosen
    weights: list[float]  # mixture weights, same order, sum 1
    dest: Path
    meta: dict  # added to the manifest: the ensemble's id, objectives and sweep


@dataclass(frozen=True)
class Outcome:
    text: str  # what the terminal shows
    paths: list[Path]  # files written
    export: EnsembleExport | None = None  # left to the caller: analysis imports no models


_FILE_NAMES = (".html", ".png", ".json", ".parquet")
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def _out(results: Results, out: str | None) -> Path:
    """The folder a command writes its files to: ``--out`` (created if missing), else ``<results>/analysis``."""
    if out and "://" in str(out):
        raise UserError(f"--out: got {str(out)!r}; the analysis outputs go to a local folder")
    path = Path(out) if out else results.local_root() / "analysis"
    if (path.exists() and not path.is_dir()) or (not path.exists() and path.suffix in _FILE_NAMES):
        raise UserError(f"--out: got {str(out)!r}, a file; --out is a folder the files go into (created if missing)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _writes(command):
    """A command that may not write where it was told to fails in one line that says where to write instead
    (the results folder of someone else's sweep is often read-only)."""

    @functools.wraps(command)
    def run(root: str, **kwargs) -> Outcome:
        try:
            return command(root, **kwargs)
        except OSError as exc:
            if not isinstance(exc, PermissionError) and exc.errno not in _UNWRITABLE:
                raise
            where = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc).splitlines()[0]
            fix = "give --out a folder you can write to" if kwargs.get("out") else \
                "pass --out DIR to write the analysis to a folder you can write to"
            raise UserError(f"cannot write the analysis outputs ({where}): {fix}") from None

    return run


@_writes
def frontier(root: str, *, sweep_id=None, margin=None, reference=None, out=None) -> Outcome:
    results = load_results(root, sweep_id)
    where = _out(results, out) if out else None  # before any work: a bad --out is refused at once
    ref = fr.reference_point(results, margin=margin, given=reference, out=where)
    front = fr.compute_frontier(results, ref)
    paths = fr.write_frontier(front, where or _out(results, None), teacher=tables.teacher_points(results))
    return Outcome(fr.format_frontier(front), paths)


@_writes
def asymmetry(root: str, *, sweep_id=None, attack=None, out=None) -> Outcome:
    results = load_results(root, sweep_id)
    attack = asym.check_attack(results, attack)
    result = asym.compute_asymmetry(results, [attack])
    result = dataclasses.replace(result, rates=tables.with_auc(result.rates, results))  # greys rows without signal
    given, _ = fr.baseline_rows(results, results.completed)
    baseline = results.completed.at[given[0], "trial_id"] if len(given) else None
    paths = asym.write_asymmetry(result, attack, _out(results, out), baseline=baseline)
    return Outcome(asym.format_asymmetry(result, attack), paths)


@_writes
def ensemble(
    root: str, *, sweep_id=None, max_task_loss=None, max_utility_drop=None, max_size=ens.DEFAULT_MAX_SIZE,
    with_replacement=True, export=None, out=None,
) -> Outcome:
    """Choose an ensemble and add its row to the ``ensembles`` table: the results folder's, or with ``out``
    one under ``out`` (which ``report --out`` reads too)."""
    results = load_results(root, sweep_id)
    store = str(_out(results, out)) if out else root
    candidates = None
    if export is not None:
        if Path(export).exists():
            raise UserError(f"--export: {str(export)!r} exists; give a new destination folder")
        saved = results.local_root() / "students"
        candidates = [t for t in results.completed["trial_id"] if (saved / t / "mia_kd.json").is_file()]
        if not candidates:
            raise UserError(f"--export needs saved students, and {saved} has none; rerun the sweep with sweep.save_students: all")
        log.info("--export: choosing among the %d of %d trials whose students were saved", len(candidates), len(results.completed))
    command = shlex.join(["mia-kd", "ensemble", *sys.argv[2:]]) if sys.argv[1:2] == ["ensemble"] else ""
    chosen = ens.choose(results, candidates, max_task_loss=max_task_loss, max_utility_drop=max_utility_drop,
                        max_size=max_size, with_replacement=with_replacement, command=command)
    for trial, why in chosen.pool.excluded.items():
        log.warning("trial %s left out: %s", trial, why)
    row, choice = chosen.row, chosen.choice
    paths = [Path(p) for p in write_trial(store, sweep_id=results.sweep_id, method="ensemble", trial_id=row["ensemble_id"],
                                          tables={"ensembles": pa.Table.from_pylist([row], schema=ENSEMBLES)})]
    to_export = None
    if export is not None:
        meta = {k: row[k] for k in ("ensemble_id", REPORTED_PRIVACY.column, REPORTED_PRIVACY.attack, UTILITY.column,
                                    "privacy_objective", "constraint")}
        to_export = EnsembleExport(students=results.local_root() / "students", members=list(choice.members),
                                   weights=list(choice.weights), dest=Path(export),
                                   meta={**meta, "sweep_id": results.sweep_id})
    return Outcome(format_ensemble(row, choice, chosen.pool, chosen.vote), paths, export=to_export)


def format_ensemble(row: dict, choice: ens.Choice, pool: ens.Pool, vote: dict) -> str:
    stat = row["privacy_objective"]
    lines = [
        f"ensemble {row['ensemble_id']}: mixture of {len(choice.members)} students, chosen on calib among "
        f"{len(pool.candidates)} (greedy, {'with' if row['with_replacement'] else 'without'} replacement, "
        f"at most {row['max_size']} steps); constraint {row['constraint']} -> task loss <= {row['max_task_loss']:.4f}",
        "  " + ", ".join(f"{t} x {w:.3g}" for t, w in zip(choice.members, choice.weights, strict=True)),
        f"privacy = worst-case {stat} over {', '.join(row['attacks'])}"
        + (f" ({', '.join(row['unavailable_attacks'])}: not available for ensembles)" if row["unavailable_attacks"] else ""),
        "",
        f"{'':<26} {'privacy (eval)':>26} {'task loss':>26}",
        f"{'ensemble':<26} {_ci(row, REPORTED_PRIVACY.column):>26} {_ci(row, UTILITY.column):>26}",
        f"{'best single ' + row['best_single_trial_id']:<26} {row['best_single_privacy']:>26.4f} {row['best_single_utility']:>26.4f}",
        "",
        "study's ensemble (majority vote of thresholded members), eval: balanced accuracy per attack",
        "  " + ", ".join(f"{a} {v['balanced_accuracy']:.3f}" for a, v in vote.items()),
    ]
    return "\n".join(lines)


def _ci(row: dict, key: str) -> str:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or not np.isfinite(low):
        return f"{row[key]:.4f}"
    return f"{row[key]:.4f} [{low:.4f}, {high:.4f}]"


def latest_ensemble(results: Results, out: str | None = None) -> dict | None:
    """The most recent row of the sweep's ``ensembles`` table (the results folder's, and ``out``'s where
    ``ensemble --out`` wrote it), or None."""
    rows = []
    for store in dict.fromkeys([results.root, *([str(out)] if out else [])]):
        try:
            rows.append(read_table(store, "ensembles", sweep_id=results.sweep_id).to_pandas())
        except UserError:
            continue
    rows = [r for r in rows if len(r)]
    if not rows:
        return None
    return pd.concat(rows, ignore_index=True).sort_values("created_at").iloc[-1].to_dict()


@_writes
def report(root: str, *, sweep_id=None, out=None, plotly_js="inline") -> Outcome:
    """One HTML page (see :func:`mia_kd.analysis.report.write_report`); ``plotly_js``: ``"inline"`` (works
    offline) or ``"cdn"``."""
    from mia_kd.analysis.report import write_report

    results = load_results(root, sweep_id)
    front = fr.compute_frontier(results, fr.reference_point(results, out=_out(results, out) if out else None))
    attack = asym.check_attack(results, None)
    asymm = asym.compute_asymmetry(results, [attack])
    chosen = latest_ensemble(results, out)
    curves = _roc_curves(results, front, chosen)
    done = results.completed
    summary = {
        "sweep": results.sweep_id, "results folder": str(results.root),
        "trials": f"{len(done)} completed, {results.n_failed} failed",
        "methods": ", ".join(sorted(done["method"].unique())),
        "privacy objective": f"worst-case attack {results.privacy_objective} on the student (lower is better): fronts, "
                             "knees and rankings read its calib value; the eval value of the attack chosen on calib "
                             "is reported",
        "utility objective": "task loss on held-out records, nats/token (lower is better)",
        "teacher task loss": f"{done['teacher_task_loss'].iloc[0]:.4f}",
        "hypervolume reference point": f"({front.reference.point[0]:.4f}, {front.reference.point[1]:.4f}): {front.reference.basis}",
    }
    method_tables = {
        method: rows[["trial_id", "strength", PRIVACY.column, REPORTED_PRIVACY.column, REPORTED_PRIVACY.attack,
                      UTILITY.column, "on_method_front", "on_front"]].round(4)
        for method, rows in front.points.sort_values(["method", "strength"]).groupby("method", sort=True)
    }
    ens_summary = None
    if chosen is not None:
        ens_summary = {
            "ensemble": chosen["ensemble_id"],
            "members": ", ".join(f"{t} x {w:.3g}" for t, w in zip(chosen["members"], chosen["weights"], strict=True)),
            "constraint": chosen["constraint"],
            "privacy (eval)": _ci(chosen, REPORTED_PRIVACY.column) + f" ({chosen[REPORTED_PRIVACY.attack]})",
            "task loss": _ci(chosen, UTILITY.column),
            "best single student": f"{chosen['best_single_trial_id']}: privacy {chosen['best_single_privacy']:.4f}, "
                                   f"task loss {chosen['best_single_utility']:.4f}",
            "not available for ensembles": ", ".join(chosen["unavailable_attacks"]) or "none",
        }
    quoted = shlex.quote(str(results.root))
    commands = [
        f"mia-kd sweep {json.loads(_manifest(results)).get('config_path', 'CONFIG')} --out {quoted}",
        f"mia-kd frontier {quoted}", f"mia-kd asymmetry {quoted} --attack {attack}",
        chosen["command"] if chosen is not None and chosen.get("command") else f"mia-kd ensemble {quoted}",
        f"mia-kd report {quoted}",
    ]
    path = _out(results, out) / "report.html"
    given, _ = fr.baseline_rows(results, front.points)
    write_report(
        path, title=f"mia_kd sweep {results.sweep_id}", summary=summary, points=front.points, fronts=front.fronts,
        reference=front.reference.point, privacy_label=front.privacy_label, method_tables=method_tables,
        rates=tables.with_auc(asymm.rates, results), agreement=asymm.agreement, attack=attack, curves=curves,
        ensemble=ens_summary, commands=commands, teacher=tables.teacher_points(results),
        baseline=front.points.at[given[0], "trial_id"] if len(given) else None,
        attack_metrics=tables.attack_metrics(results), dp=tables.dp_budgets(results),
        blind=tables.blind_checks(results), failed=tables.failed_trials(results),
        provenance=tables.provenance(results), plotly_js=plotly_js,
    )
    return Outcome(f"report: {path}", [path])


def _manifest(results: Results) -> str:
    path = Path(results.root) / "sweep.json"
    return path.read_text() if path.is_file() else "{}"


def _roc_curves(results: Results, front: fr.Frontier, chosen: dict | None) -> list:
    """Eval-fold ROC curves of each model's worst-case attack: the teacher, the knee and the most private
    front students, and the chosen ensemble."""
    points = front.points.set_index("trial_id")
    on = points[points["on_front"]]
    picks = {"knee": points.index[points["is_knee"]][0], "most private": on[PRIVACY.column].idxmin()}
    teacher = results.metric("teacher")
    first = picks["knee"]
    # The teacher's worst attack, chosen on calib like the students'.
    calib = privacy_statistic(results.privacy_objective).calib
    t_attack = teacher[teacher["trial_id"] == first].sort_values(calib).iloc[-1]["attack"]
    curves = [_stored_curve(results, first, "teacher", t_attack, f"teacher ({t_attack})")]
    for label, trial in picks.items():
        if label != "knee" and trial == picks["knee"]:
            continue  # the knee is also the most private
        attack = points.at[trial, REPORTED_PRIVACY.attack]
        name = f"{label} student {trial} ({points.at[trial, 'method']}, {attack})"
        curves.append(_stored_curve(results, trial, "student", attack, name))
    if chosen is not None:
        pool = ens.build_pool(results, list(chosen["members"]))
        evaluation = ens.evaluate(pool, list(chosen["members"]), np.asarray(chosen["weights"]))
        attack = evaluation[REPORTED_PRIVACY.attack]
        n_calib = len(pool.calib.labels)
        curves.append(_curve(f"ensemble {chosen['ensemble_id']} ({attack})",
                             evaluation["scores"][attack][n_calib:], pool.eval.labels))
    return curves


def _stored_curve(results: Results, trial: str, role: str, attack: str, name: str):
    """The ROC curve of ``role``'s stored ``attack`` scores in ``trial``, eval fold."""
    rows = results.records(roles=(role,), trial_ids=[trial], columns=["fold", "label", f"score_{attack}"])
    rows = rows[rows["fold"] == "eval"]
    return _curve(name, rows[f"score_{attack}"].to_numpy(), rows["label"].to_numpy().astype(bool))


def _curve(name: str, scores: np.ndarray, labels: np.ndarray):
    from mia_kd.analysis.plots import Curve

    fpr, tpr, _ = metrics.roc_curve(scores, labels)
    return Curve(name=name, fpr=fpr, tpr=tpr, auc=metrics.auc(scores, labels))
