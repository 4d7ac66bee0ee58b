"""``mia-kd validate``: check a trial or sweep config completely without downloading or training.

Names and ranges (the config schema, sources, attacks, privacy methods and, for a sweep, every method's
search), local data files, and local pretrained models: a causal LM, remote code only when allowed, one
vocabulary shared by the tokenizer, teacher and student. Hub ids are listed as not checked (that would
need a download). Prints the resolved config.
"""

from __future__ import annotations

import glob
from pathlib import Path

import yaml

from mia_kd.config import TrialConfig, read_yaml
from mia_kd.data import resolve_source
from mia_kd.errors import ConfigError


def validate(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """The report: what was checked, what was not (hub ids), and the resolved config as YAML."""
    from mia_kd.sweep.config import load_sweep

    _, base, sweep = load_sweep(path, overrides)  # schema, sources, attacks, every method's search
    notes = [*_sources(base), *_models(base)]
    resolved = {**base.model_dump(mode="json")}
    if "sweep" in read_yaml(path):
        resolved["sweep"] = sweep.model_dump(mode="json")
    lines = [f"{path}: valid ({'sweep' if 'sweep' in resolved else 'trial'} config)"]
    lines += [f"  not checked: {note}" for note in notes]
    lines += ["", "# resolved config", yaml.safe_dump(resolved, sort_keys=False).rstrip()]
    return "\n".join(lines)


def _sources(config: TrialConfig) -> list[str]:
    notes = []
    for key, spec in (("data.source", config.data.source), ("data.nonmember_source", config.data.nonmember_source)):
        if spec is None:
            continue
        name, source = resolve_source(spec)
        options = source.options
        if name == "files" and not glob.glob(str(Path(options.path).expanduser())):
            raise ConfigError(f"{key}.path: no file matches {options.path!r}; give a file or a glob of data files")
        if name == "hf" and not Path(options.dataset).expanduser().exists():
            notes.append(f"{key} dataset {options.dataset!r} (a hub id: its columns are checked when it is read)")
    return notes


def _models(config: TrialConfig) -> list[str]:
    from mia_kd.models.pretrained import check_causal, check_shared_vocabulary, is_local, pretrained_roles

    for role, model in (("teacher", config.teacher), ("student", config.student)):
        if model.pretrained is None:
            check_causal(model.model_type, what=f"{role}.model_type")
    roles = pretrained_roles(config)
    if not roles:
        return []
    name = config.tokenizer.pretrained
    if not is_local(name):
        return [f"tokenizer {name!r} and the models' shared vocabulary (a hub id)"] + [
            f"{role} {model!r} (a hub id)" for role, (model, _) in roles.items() if not is_local(model)
        ]
    from transformers import AutoTokenizer

    from mia_kd.models.hub import load_pretrained

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer")
    return check_shared_vocabulary(tokenizer, roles, local_only=True)
