"""Checking a config against the plug-ins, and ``mia-kd validate``: all of it without downloading or training.

:func:`check_config` and :func:`check_sweep` check what the config layer cannot (it imports no plug-in):
the names and options of sources, attacks and privacy methods, each method's strength range and stage, and
a sweep's methods and ranges; they fill in a method's neutral strength where none was given. The CLI and the
API call them once, where a config enters (docs/architecture.md §2).

``mia-kd validate`` checks names and ranges (the config schema, sources, attacks, privacy methods and, for a sweep, every method's
search), local data files, and local pretrained models: a causal LM, remote code only when allowed, one
vocabulary shared by the tokenizer, teacher and student. Hub ids are listed as not checked (that would
need a download). Prints the resolved config.
"""

from __future__ import annotations

import glob
from pathlib import Path

import yaml
from transformers import AutoTokenizer

from mia_kd.attacks import check_attack_spec
from mia_kd.config import SweepConfig, TrialConfig, load_sweep, read_yaml
from mia_kd.data import resolve_source, validate_source
from mia_kd.errors import ConfigError
from mia_kd.models.hub import load_pretrained
from mia_kd.models.pretrained import check_causal, check_shared_vocabulary, is_local, pretrained_roles
from mia_kd.privacy import check_method, method_class


def check_config(config: TrialConfig) -> TrialConfig:
    """``config`` checked against the plug-ins, with the method's neutral strength filled in if unset."""
    for spec in (config.data.source, config.data.nonmember_source):
        if spec is not None:
            validate_source(spec)
    for attack in config.attacks:
        check_attack_spec(attack.name, attack.params)
    names = [attack.name for attack in config.attacks]
    if config.privacy.vulnerability_attack not in names:
        raise ConfigError(
            f"privacy.vulnerability_attack: got {config.privacy.vulnerability_attack!r}, "
            f"must be one of the configured attacks: {', '.join(names)}"
        )
    privacy = config.privacy
    if privacy.strength is None:
        privacy = privacy.model_copy(update={"strength": method_class(privacy.method).neutral})
        config = config.model_copy(update={"privacy": privacy})
    check_method(privacy.method, privacy.strength, privacy.params, privacy.stage)
    return config


def check_sweep(sweep: SweepConfig) -> SweepConfig:
    """``sweep`` checked against the plug-ins: the base, and every method's name, range, stage and params."""
    base = check_config(sweep.base)
    for name, search in sweep.sweep.methods.items():
        try:
            cls = method_class(name)
        except ConfigError as exc:
            raise ConfigError(f"sweep.methods: {str(exc).split(': ', 1)[1]}") from None
        if search.strength is not None:
            low, high = search.strength
            if not cls.low <= low <= high <= cls.high:
                raise ConfigError(
                    f"sweep.methods.{name}.strength: got [{low:g}, {high:g}], must lie within "
                    f"[{cls.low:g}, {cls.high:g}] with low <= high"
                )
        check_config(sweep.trial(name, None))  # the method's params and stage, now rather than in a worker
    return SweepConfig(base=base, sweep=sweep.sweep, path=sweep.path)


def validate(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """The report: what was checked, what was not (hub ids), and the resolved config as YAML."""
    checked = check_sweep(load_sweep(path, overrides))  # schema, sources, attacks, every method's search
    base, sweep = checked.base, checked.sweep
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
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer")
    return check_shared_vocabulary(tokenizer, roles, local_only=True)
