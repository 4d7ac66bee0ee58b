"""Checking a config against the plug-ins, and ``mia-kd validate``: all of it without downloading or training.

:func:`check_config` and :func:`check_sweep` check what the config layer cannot (it imports no plug-in):
the names and options of sources, attacks and privacy methods, each method's strength range and stage, and
a sweep's methods and ranges; they fill in a method's neutral strength where none was given. The CLI and the
API call them once, where a config enters (docs/architecture.md §2).

``mia-kd validate`` (:func:`validate`) runs those checks and what a trial would otherwise only meet when it
reads files: local data files (readable, as UTF-8, with the text column, holding enough records for the
split), local model folders (they exist; a causal LM, remote code only when allowed, one vocabulary shared
by the tokenizer, teacher and student) and the cache folder. It reports every problem of a config at once,
one line each. Hub ids are listed as not checked (that would need a download). This module imports
transformers (and with it torch) only for configs with local pretrained models.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mia_kd.attacks import check_attack_spec, required_passes
from mia_kd.config import (
    DataConfig,
    ModelConfig,
    RuntimeConfig,
    SweepConfig,
    SweepSection,
    TeacherConfig,
    TokenizerConfig,
    TrialConfig,
    apply_override,
    read_yaml,
)
from mia_kd.config import validation_problems
from mia_kd.data import (
    SplitSizes,
    load_texts,
    make_records,
    require_records,
    resolve_source,
    source_demands,
    validate_source,
)
from mia_kd.errors import ConfigError, UserError
from mia_kd.models.hub import load_pretrained, looks_like_path
from mia_kd.models.pretrained import check_causal, check_shared_vocabulary, is_local, pretrained_roles
from mia_kd.privacy import check_method, method_class

T = TypeVar("T")


def check_config(config: TrialConfig) -> TrialConfig:
    """``config`` checked against the plug-ins, with the method's neutral strength filled in if unset."""
    problems: list[UserError] = []
    config = _check_plugins(config, problems)
    if problems:
        raise problems[0]
    return config


def check_sweep(sweep: SweepConfig) -> SweepConfig:
    """``sweep`` checked against the plug-ins: the base, and every method's name, range, stage and params."""
    problems: list[UserError] = []
    sweep = _check_sweep_plugins(sweep, problems)
    if problems:
        raise problems[0]
    return sweep


def _attempt(problems: list[UserError], check: Callable[..., T], *args: Any) -> T | None:
    """``check(*args)``, its user error added to ``problems`` (and None returned) instead of raised."""
    try:
        return check(*args)
    except UserError as exc:
        problems.append(exc)
        return None


def _check_plugins(config: TrialConfig, problems: list[UserError], skip: frozenset[str] = frozenset()) -> TrialConfig:
    """The plug-in checks, each problem added to ``problems``; none of the sections named in ``skip`` (those
    with invalid keys: their defaults stand in for what was meant, and would give problems that are not)."""
    if "privacy" in skip or "attacks" in skip:
        return config
    for key, spec in (("data.source", config.data.source), ("data.nonmember_source", config.data.nonmember_source)):
        if spec is not None:
            _attempt(problems, validate_source, spec, key)
    for attack in config.attacks:
        _attempt(problems, check_attack_spec, attack.name, attack.params)
    names = [attack.name for attack in config.attacks]
    if config.privacy.vulnerability_attack not in names:
        problems.append(ConfigError(
            f"privacy.vulnerability_attack: got {config.privacy.vulnerability_attack!r}, "
            f"must be one of the configured attacks: {', '.join(names)}"
        ))
    privacy = config.privacy
    if privacy.strength is None:
        cls = _attempt(problems, method_class, privacy.method)
        if cls is None:
            return config
        privacy = privacy.model_copy(update={"strength": cls.neutral})
        config = config.model_copy(update={"privacy": privacy})
    _attempt(problems, check_method, privacy.method, privacy.strength, privacy.params, privacy.stage)
    cls = _attempt(problems, method_class, privacy.method)
    if cls is not None and privacy.strength != cls.neutral:
        problems += _method_combinations(config, cls)
    return config


def _method_combinations(config: TrialConfig, cls: type) -> list[UserError]:
    """Settings a (non-neutral) method cannot be combined with, refused before anything trains."""
    problems: list[UserError] = []
    if config.distill.transfer == "disjoint" and cls.hook == "records":
        problems.append(ConfigError(
            f"privacy.method: {cls.name} selects members to leave out of the transfer set, and distill.transfer "
            "disjoint holds no members; use distill.transfer: members or another method"))
    if config.shadows.online and cls.needs_vulnerability and required_passes(config.attacks).shadows:
        problems.append(ConfigError(
            f"shadows.online: true with privacy.method {cls.name}, which reads the teacher's vulnerable records: "
            "per-trial shadow students of such methods are not supported; set shadows.online: false"))
    return problems


def _check_sweep_plugins(
    sweep: SweepConfig, problems: list[UserError], skip: frozenset[str] = frozenset()
) -> SweepConfig:
    base = _check_plugins(sweep.base, problems, skip)
    for name, search in sweep.sweep.methods.items():
        try:
            cls = method_class(name)
        except ConfigError as exc:
            problems.append(ConfigError(f"sweep.methods: {str(exc).split(': ', 1)[1]}"))
            continue
        if search.strength is not None:
            low, high = search.strength
            if not cls.low <= low <= high <= cls.high:
                problems.append(ConfigError(
                    f"sweep.methods.{name}.strength: got [{low:g}, {high:g}], must lie within "
                    f"[{cls.low:g}, {cls.high:g}] with low <= high"
                ))
        # The method's params and stage, now rather than in a worker (the base's problems are listed already).
        trial = _attempt(problems, sweep.trial, name, None)
        if trial is not None:
            _check_plugins(trial, problems, skip)
            if cls.low < cls.high:  # it is searched away from its neutral strength
                problems += _method_combinations(trial, cls)
    return SweepConfig(base=base, sweep=sweep.sweep, path=sweep.path)


def validate(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, print_config: bool = False) -> str:
    """One line saying the config at ``path`` is valid (and what was not checked: hub ids), with the
    resolved config as YAML after it if ``print_config``; a :class:`ConfigError` listing every problem, one
    line each, if not."""
    raw = read_yaml(path)
    for override in overrides:
        apply_override(raw, override)
    kind = "sweep" if "sweep" in raw else "trial"
    sweep_raw = raw.pop("sweep", None) or {}
    problems: list[str] = []
    base = _parsed(TrialConfig, raw, problems)
    section = _parsed(SweepSection, sweep_raw, problems, prefix="sweep")
    # Where the config is invalid, the rest is still checked: the invalid keys at their defaults.
    config, skip = (base, frozenset()) if base is not None else _salvaged(raw)
    notes: list[str] = []
    checked = None
    if config is not None:
        plugin_problems: list[UserError] = []
        if section is not None:
            sweep = SweepConfig(base=config, sweep=section, path=str(path))
            checked = _check_sweep_plugins(sweep, plugin_problems, skip)
        else:
            _check_plugins(config, plugin_problems, skip)
        problems += [str(exc) for exc in plugin_problems]
    # The files each part names, from the config or, if even that failed, from the parts that are valid.
    data = _part(raw, "data", DataConfig, config)
    if data is not None:
        notes += _data(data, problems, count="data" not in skip)
    models = {
        "teacher": _part(raw, "teacher", TeacherConfig, config), "student": _part(raw, "student", ModelConfig, config)
    }
    tokenizer = _part(raw, "tokenizer", TokenizerConfig, config)
    folders_ok = _model_folders(models, tokenizer, problems)
    runtime = _part(raw, "runtime", RuntimeConfig, config)
    if runtime is not None:
        _cache_dir(runtime, problems)
    if config is not None and folders_ok:
        try:
            notes += _models(config)
        except UserError as exc:
            problems.append(str(exc))
    problems = list(dict.fromkeys(problems))  # a sweep's trials repeat their base's problems
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problems\n" + "\n".join(f"  {line}" for line in problems))
    assert checked is not None  # no problems: everything parsed
    summary = f"{path}: valid ({kind} config)"
    if kind == "sweep":
        summary += f"; methods: {', '.join(checked.sweep.methods)}"
    if notes:
        summary += f"; not checked offline (hub ids): {', '.join(notes)}"
    if not print_config:
        return summary
    resolved = checked.base.model_dump(mode="json")
    if kind == "sweep":
        resolved["sweep"] = checked.sweep.model_dump(mode="json")
    return "\n".join([summary, "", "# resolved config", yaml.safe_dump(resolved, sort_keys=False).rstrip()])


def _parsed(model: type[T], raw: dict[str, Any], problems: list[str], prefix: str = "") -> T | None:
    try:
        return model.model_validate(raw)  # type: ignore[attr-defined]
    except ValidationError as exc:
        problems += validation_problems(exc, model, prefix=prefix)  # type: ignore[arg-type]
        return None


def _salvaged(raw: dict[str, Any]) -> tuple[TrialConfig | None, frozenset[str]]:
    """``raw`` as a config with every invalid key (``section.key`` or a top-level key) at its default, and the
    sections that changed; None where that is not enough (a problem across sections)."""
    raw, changed = copy.deepcopy(raw), set()
    for _ in range(3):  # a default can clash with another key (then that one goes too), but not forever
        try:
            return TrialConfig.model_validate(raw), frozenset(changed)
        except ValidationError as exc:
            locs = {tuple(error["loc"][:2]) for error in exc.errors()}
        changed |= {str(loc[0]) for loc in locs if loc}
        if () in locs:
            return None, frozenset(changed)
        for loc in locs:
            parent = raw.get(loc[0])
            if len(loc) == 2 and isinstance(parent, dict):
                parent.pop(loc[1], None)
            else:
                raw.pop(loc[0], None)
    return None, frozenset(changed)


def _part(raw: dict[str, Any], name: str, model: type[BaseModel], base: TrialConfig | None) -> Any:
    """Section ``name`` of the config: from ``base`` if the whole config is valid, else parsed on its own with
    its invalid keys left at their defaults (their problems are listed already), so the files its other keys
    name are still checked. None if that fails too."""
    if base is not None:
        return getattr(base, name)
    if name not in raw:
        return TrialConfig.model_fields[name].get_default(call_default_factory=True)
    value = raw[name]
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
        if not isinstance(value, dict) or not bad:
            return None
    try:
        return model.model_validate({key: item for key, item in value.items() if key not in bad})
    except ValidationError:
        return None


def _data(data: DataConfig, problems: list[str], *, count: bool = True) -> list[str]:
    """Read local data files as the trial will: readable, the text column there, enough records for the split
    (only if ``count``: not where a size is invalid and stands at its default). Returns what was not checked
    (hub datasets)."""
    notes, counts = [], {}
    for key, spec in (("data.source", data.source), ("data.nonmember_source", data.nonmember_source)):
        if spec is None:
            continue
        try:
            name, source = resolve_source(spec, key)
        except UserError:
            continue  # listed by the plug-in checks
        if name == "hf" and not Path(source.options.dataset).expanduser().exists():
            notes.append(f"{key} {source.options.dataset!r}")
        if name != "files":
            continue  # python-docs always holds the same few thousand sentences; hf is read when the trial runs
        try:
            namespace, texts = load_texts(spec, key)
        except UserError as exc:
            problems.append(str(exc))
            continue
        counts[key] = len(make_records(texts, namespace))
    if not count:
        return notes
    try:
        sizes = SplitSizes(data.members, data.nonmembers, data.utility, data.public, data.calib_fraction, data.transfer)
    except UserError as exc:
        problems.append(str(exc))
        return notes
    if data.nonmember_source is None:
        demands = dict(zip(("data.source",), source_demands(sizes, "iid")))
        names = {"data.source": "the source"}
    else:
        kind = "labelled" if data.membership == "pretraining" else "shifted"
        demands = dict(zip(("data.source", "data.nonmember_source"), source_demands(sizes, kind)))
        names = {"data.source": "the member source", "data.nonmember_source": "the non-member source"}
    for key, count in counts.items():
        try:
            require_records(f"{names[key]} ({key})", demands[key], count)
        except UserError as exc:
            problems.append(str(exc))
    return notes


def _model_folders(
    models: dict[str, ModelConfig | None], tokenizer: TokenizerConfig | None, problems: list[str]
) -> bool:
    """Check that every model or tokenizer given as a path is an existing folder; and that models built from
    ``config`` are causal LMs. Whether all is well, so the local models can be opened."""
    named = {f"{role}.pretrained": model.pretrained for role, model in models.items() if model is not None}
    if tokenizer is not None and tokenizer.pretrained not in named.values():
        named["tokenizer.pretrained"] = tokenizer.pretrained
    before = len(problems)
    for key, name in named.items():
        if name is None or not looks_like_path(name):
            continue
        folder = Path(name).expanduser()
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            problems.append(
                f"{key}: {name!r} {what}; give the folder a model was saved to (save_pretrained) or a hub id "
                "such as gpt2"
            )
    causal = _causal_model_types()
    for role, model in models.items():
        if model is not None and model.pretrained is None and model.model_type not in causal:
            try:
                check_causal(model.model_type, what=f"{role}.model_type")
            except UserError as exc:
                problems.append(str(exc))
    return len(problems) == before


def _causal_model_types() -> frozenset[str]:
    """Model types :func:`check_causal` accepts without a question (causal, not masked), read from the source
    of transformers' auto mappings: importing them imports torch. Empty if that source cannot be read (then
    :func:`check_causal` decides, importing it)."""
    wanted = ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_MASKED_LM_MAPPING_NAMES")
    try:
        # The top-level spec only: finding a submodule's spec imports its parent packages (transformers: 2 s).
        spec = importlib.util.find_spec("transformers")
        source = Path(spec.origin).parent / "models" / "auto" / "modeling_auto.py"  # type: ignore[union-attr, arg-type]
        tree = ast.parse(source.read_text(encoding="utf-8"))
        found = {
            node.targets[0].id: {entry[0] for entry in ast.literal_eval(node.value.args[0])}
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in wanted
        }
        return frozenset(found[wanted[0]] - found[wanted[1]])
    except (ImportError, OSError, SyntaxError, ValueError, KeyError, AttributeError, IndexError, TypeError):
        return frozenset()


def _cache_dir(runtime: RuntimeConfig, problems: list[str]) -> None:
    """The cache folder is created when first needed: it, or its nearest existing parent, must be a folder."""
    if runtime.cache_dir is None:
        return
    path = Path(runtime.cache_dir).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == path else f"lies under the file {str(existing)!r}"
        problems.append(
            f"runtime.cache_dir: {runtime.cache_dir!r} {where}; give a folder (it is created if missing) or null "
            "for ~/.cache/mia_kd"
        )


def _models(config: TrialConfig) -> list[str]:
    """Open the local pretrained models (config files and tokenizers, no weights); the hub ids not checked."""
    roles = pretrained_roles(config)
    if not roles:
        return []
    name = config.tokenizer.pretrained
    hub = [f"{role} {model!r}" for role, (model, _) in roles.items() if not is_local(model)]
    if not is_local(name):
        return [f"tokenizer {name!r}", *hub]
    from transformers import AutoTokenizer  # imports torch: only for pretrained models

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, name, what="tokenizer")
    check_shared_vocabulary(tokenizer, roles, local_only=True)
    return hub
