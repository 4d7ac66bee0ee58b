"""Shadow models as Ray tasks: the second half of the sweep's Ray boundary (docs/architecture.md §2, §4).

Each shadow teacher and each shadow student (:mod:`mia_kd.shadows`, plain Python) is a Ray task of its own
with ``sweep.shadow_resources``, so they spread over the cluster's nodes and GPUs and run in parallel. A task
lost with its node (a killed worker) runs again (``max_retries``); one that raises fails the run, never
leaving a shadow silently out. ``mia-kd trial`` runs the same tasks on an embedded local Ray.
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Any

import ray
from tqdm.auto import tqdm

from mia_kd.config import Resources, TrialConfig

if TYPE_CHECKING:
    from mia_kd.prepared import Prepared
    from mia_kd.trial import TrialResult

log = logging.getLogger(__name__)

RETRIES = 3  # runs of a shadow task lost with its node, before the run fails


def shadows(
    prepared: ray.ObjectRef, config: TrialConfig, out: str | None, resources: Resources, *, quiet: bool = False,
) -> tuple[ray.ObjectRef, dict[str, Any]]:
    """Train the shadow models ``config``'s attacks read: every shadow teacher, and (unless
    ``shadows.online``) the neutral-strength shadow student of each, which starts as soon as its teacher is
    done. Then one small task attaches them to the prepared state (the teacher's shadow attacks and its
    ``records`` rows, written to ``out`` when given). The new prepared state's reference and the shadows'
    summary (seconds, nodes); a progress bar counts the tasks unless ``quiet``."""
    count, options, threads = config.shadows.count, _options(resources), _threads(resources)
    inputs = ray.remote(_inputs).options(num_cpus=0.01, name="mia_kd.shadow_inputs").remote(prepared)
    teachers = [_task(_teacher, "shadow_teacher", options).remote(inputs, config, i, threads=threads)
                for i in range(count)]
    students = []
    if not config.shadows.online:
        students = [_task(_offline_student, "shadow_student", options).remote(inputs, config, model, threads=threads)
                    for _, model in teachers]
    log.info("training %d shadow teachers%s as Ray tasks (%g CPU, %g GPU each)", count,
             "" if config.shadows.online else f" and their {count} neutral shadow students", resources.cpu, resources.gpu)
    wait(teachers + students, desc="shadows", quiet=quiet)
    attach = ray.remote(_attach).options(num_cpus=1, name="mia_kd.attach_shadows", num_returns=2)
    summary, attached = attach.remote(prepared, config, out, [m for _, m in teachers], [m for _, m in students])
    return attached, ray.get(summary)


def trial_students(prepared: Prepared, config: TrialConfig, resources: Resources, *, quiet: bool = True) -> list:
    """This trial's own shadow students (``shadows.online``: at its method and strength), one task each, from
    the shadow teachers of ``prepared`` (the attached state, held here)."""
    from mia_kd.shadows import ShadowInputs
    from mia_kd.validate import check_config

    check_config(config)  # refuses per-trial shadows of a method that reads the teacher's vulnerability
    inputs, task = ray.put(ShadowInputs.of(prepared)), _task(_online_student, "shadow_student", _options(resources))
    refs = [task.remote(inputs, config, ray.put(teacher), threads=_threads(resources)) for teacher in prepared.shadow_teachers]
    wait(refs, desc="shadow students", quiet=quiet)
    return ray.get([model for _, model in refs])


def run_trial(config: TrialConfig, *, trial_id: str | None = None, resources: Resources | None = None) -> TrialResult:
    """``mia-kd trial`` for a config whose attacks read shadows, on a started Ray (:func:`mia_kd.sweep.tune.start`):
    prepared here, the shadows as tasks, then the student."""
    from mia_kd.trial import prepare, run_student

    resources = resources or Resources()
    ref, _ = shadows(ray.put(prepare(config)), config, None, resources)
    prepared = ray.get(ref)
    students = trial_students(prepared, config, resources, quiet=False) if config.shadows.online else None
    return run_student(prepared, config, trial_id=trial_id, shadow_students=students)


def wait(tasks: list[list[ray.ObjectRef]], *, desc: str, quiet: bool) -> None:
    """Block until every task of ``tasks`` (each ``[done, model]``, :func:`_task`) is done, one bar step per
    task, fetching only ``done``; a task's own error is raised as itself (a one-line UserError stays one line)."""
    refs = [done for done, _ in tasks]
    waiting = list(refs)
    with tqdm(total=len(refs), desc=desc, unit="task", disable=quiet, dynamic_ncols=True) as bar:
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            fetch(done)
            bar.update()


def fetch(refs):
    """``ray.get(refs)``, with a task's own error raised as itself, not wrapped in Ray's remote traceback (a
    one-line UserError stays one line). The sweep's preparation task is waited for the same way."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, Exception):
            raise exc.cause from None
        raise


def _options(resources: Resources) -> dict[str, Any]:
    # retry_exceptions=False: a task that raised would raise again; only a lost node or worker is retried.
    return {"num_cpus": resources.cpu, "num_gpus": resources.gpu, "max_retries": RETRIES, "retry_exceptions": False}


def _threads(resources: Resources) -> int:
    return max(1, math.floor(resources.cpu))


def _task(fn, name: str, options: dict[str, Any]):
    """``fn`` as a Ray task of two returns, ``(done, model)``: :func:`wait` reads the small first one, so the
    driver learns a task ended (or raised) without fetching the model."""
    return ray.remote(fn).options(name=f"mia_kd.{name}", num_returns=2, **options)


def _here() -> None:
    os.environ["MIA_KD_NODE_ID"] = ray.get_runtime_context().get_node_id()  # the shadow says where it ran


def _inputs(prepared: Prepared):
    from mia_kd.shadows import ShadowInputs

    return ShadowInputs.of(prepared)


def _teacher(inputs, config: TrialConfig, index: int, *, threads: int):
    from mia_kd import shadows

    _here()
    return True, shadows.train_teacher(shadows.teacher_jobs(inputs, config)[index], threads=threads)


def _offline_student(inputs, config: TrialConfig, teacher, *, threads: int):
    from mia_kd import shadows

    _here()
    job = shadows.student_jobs(inputs, shadows.offline_config(config), [teacher])[0]
    return True, shadows.train_student(job, threads=threads)


def _online_student(inputs, config: TrialConfig, teacher, *, threads: int):
    from mia_kd import shadows

    _here()
    return True, shadows.train_student(shadows.student_jobs(inputs, config, [teacher])[0], threads=threads)


def _attach(prepared: Prepared, config: TrialConfig, out: str | None, teachers: list, students: list):
    from mia_kd import shadows
    from mia_kd.validate import check_config

    # References inside a list arrive as references: fetched here, so the driver never holds a shadow model.
    attached = shadows.attach(prepared, check_config(config), ray.get(teachers), ray.get(students) if students else None)
    if out is not None:
        from mia_kd.store import write_prepared

        write_prepared(out, config.sweep_id, attached.key, attached.records)
    return attached.shadow_summary, attached.to_cpu()
