"""An ensemble of saved students that ships: a folder of member students and the mixture that runs them.

The ensemble's next-token distribution is the weighted mixture of its members',
``log p(x_i | x_<i) = logsumexp_m(log w_m + log p_m(x_i | x_<i))``, each member with its serve-stage
transform (if any) applied to its logits first. That is exactly what
:func:`mia_kd.metrics.mixture_logprobs` computes from the members' stored per-token log-probs, so the
leakage measured there is the leakage of the model loaded here; :meth:`MixtureLM.token_logprobs` computes
it the same way (each member through the sweep's scorer, then that function).

Folder layout (``format: mia_kd.ensemble/1``)::

    dest/ensemble.json     {"format", "members": [{"trial_id", "path", "weight"}], ...meta}
    dest/<trial_id>/       each member's student folder, copied as the sweep saved it
    dest/config.json       model_type mia_kd, kind ensemble: AutoModelForCausalLM.from_pretrained(dest,
    dest/modeling_mia_kd.py    trust_remote_code=True) loads the MixtureLM (:mod:`mia_kd.distill.remote_code`)
    dest/tokenizer*.json   the members' shared tokenizer (AutoTokenizer.from_pretrained(dest))

Export is torch-free (it runs beside the analysis commands); loading imports torch on first use. Both live
in ``distill`` because an ensemble's members are saved students (:mod:`mia_kd.distill.student`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mia_kd.distill.remote_code import write_remote_code
from mia_kd.errors import UserError
from mia_kd.metrics import check_weights

if TYPE_CHECKING:
    from mia_kd.models.mixture_lm import MixtureLM

log = logging.getLogger(__name__)

FORMAT = "mia_kd.ensemble/1"
MANIFEST = "ensemble.json"
# Files that define the vocabulary and how text becomes ids; members must agree on every one they hold.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model")
TOKENIZER_CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def export_ensemble(
    students_root: str | Path, members: Sequence[str], weights: Sequence[float], dest: str | Path, meta: dict[str, Any]
) -> Path:
    """Copy the member students ``students_root/<trial_id>/`` into ``dest`` and write ``dest/ensemble.json``.

    ``weights`` (one per member, positive, summing to 1) are the mixture weights; ``meta`` (JSON-serialisable,
    e.g. the sweep id and the ensemble's objectives) is added to the manifest. The folder appears whole or
    not at all: it is written beside ``dest`` under a temporary name, then renamed. Returns ``dest``.
    """
    root, dest = Path(students_root), Path(dest)
    members = list(members)
    if dest.exists():
        raise UserError(f"ensemble destination {str(dest)!r} already exists; choose another path or remove it")
    if not members:
        raise UserError("ensemble members: got none; give at least one trial id")
    if len(set(members)) != len(members):
        raise UserError(f"ensemble members: got duplicates in {members}; list each trial id once")
    if len(weights) != len(members):
        raise UserError(f"ensemble weights: got {len(weights)} for {len(members)} members; give one weight per member")
    try:
        w = check_weights(weights, len(members))
    except ValueError as exc:
        raise UserError(f"ensemble weights: {exc}") from None
    clash = {"format", "members"} & set(meta)
    if clash:
        raise UserError(f"ensemble meta: keys {sorted(clash)} are the manifest's own; rename them")
    for trial_id in members:
        if trial_id in ("", ".", "..") or Path(trial_id).name != trial_id:
            raise UserError(f"ensemble member {trial_id!r}: not a trial id (a folder name under students/)")
        if not (root / trial_id).is_dir():
            raise UserError(
                f"ensemble member {trial_id!r}: no student folder {str(root / trial_id)!r}; the sweep kept only some "
                "students: rerun it with sweep.save_students: all"
            )
    _check_shared_tokenizer(root, members)

    manifest = {
        "format": FORMAT,
        "members": [{"trial_id": t, "path": t, "weight": float(x)} for t, x in zip(members, w, strict=True)],
        **meta,
    }
    text = json.dumps(manifest, indent=2, default=_json_scalar)  # before copying: fail fast on bad meta
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for trial_id in members:
            shutil.copytree(root / trial_id, tmp / trial_id)
        (tmp / MANIFEST).write_text(text)
        # A model folder too: the shared tokenizer at the top, and config.json + modeling file for
        # AutoModelForCausalLM.from_pretrained(dest, trust_remote_code=True).
        for name in (*TOKENIZER_FILES, *TOKENIZER_CONFIG_FILES):
            if (root / members[0] / name).is_file():
                shutil.copy2(root / members[0] / name, tmp / name)
        write_remote_code(tmp, "ensemble")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported an ensemble of %d students to %s", len(members), dest)
    return dest


def _check_shared_tokenizer(root: Path, members: list[str]) -> None:
    """Members must turn text into the same ids: their tokenizer files must be byte-identical."""

    def fingerprint(folder: Path) -> dict[str, str]:
        return {
            name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in TOKENIZER_FILES
            if (folder / name).is_file()
        }

    first = fingerprint(root / members[0])
    if not first:
        raise UserError(
            f"ensemble member {members[0]!r}: no tokenizer files ({', '.join(TOKENIZER_FILES)}) in its folder; "
            "save the student with its tokenizer"
        )
    for trial_id in members[1:]:
        if fingerprint(root / trial_id) != first:
            raise UserError(
                f"ensemble member {trial_id!r}: its tokenizer differs from {members[0]!r}'s; members must share one "
                "tokenizer (pick students of the same sweep)"
            )


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"ensemble meta: {type(value).__name__} is not JSON-serialisable")


def load_ensemble(dest: str | Path) -> MixtureLM:
    """The :class:`MixtureLM` of an exported ensemble folder (members in eval mode, on the CPU)."""
    from mia_kd.distill.student import load_student, read_meta

    dest = Path(dest)
    path = dest / MANIFEST
    if not path.is_file():
        raise UserError(f"{str(dest)!r} is not an ensemble folder (no {MANIFEST}); export one first")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); export the ensemble again") from None
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: format {manifest.get('format')!r}, this mia_kd reads {FORMAT!r}")
    models, transforms, max_lengths, tokenizer = [], [], [], None
    for member in manifest["members"]:
        folder = dest / member["path"]
        if dest.resolve() not in folder.resolve().parents:
            raise UserError(f"{path}: member path {member['path']!r} points outside the ensemble folder")
        model, member_tokenizer, transform = load_student(folder)
        models.append(model)
        transforms.append(transform)
        if tokenizer is None:
            tokenizer = member_tokenizer  # all members share it (checked at export)
        meta = read_meta(folder)
        max_lengths.append(meta.config.tokenizer.max_length if meta is not None else None)
    weights = [m["weight"] for m in manifest["members"]]
    try:
        check_weights(weights, len(models))
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    known = [n for n in max_lengths if n is not None]
    from mia_kd.models.mixture_lm import MixtureLM

    return MixtureLM(
        models, weights, tokenizer, transforms=transforms,
        trial_ids=[m["trial_id"] for m in manifest["members"]], max_length=min(known) if known else None,
    )
