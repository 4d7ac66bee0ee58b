"""Bring your own model, offline: tiny GPT-2s and a tokenizer saved with ``save_pretrained`` in a temp folder
stand in for hub models. A CI-sized trial and a 2-trial sweep in both membership modes, and the errors a
user meets (vocabulary mismatch, unknown id offline, missing column, remote code, a masked LM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

from mia_kd.cli import main
from mia_kd.config import TrainConfig, validate_config
from mia_kd.data import load_texts
from mia_kd.distill.loss import lm_loss
from mia_kd.models.tokenizer import encode, train_bpe
from mia_kd.models.train import fit
from mia_kd.store import read_table
from mia_kd.trial import run_trial

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _gpt2(tokenizer, n_layer: int, seed: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    special = tokenizer.bos_token_id
    return GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_layer=n_layer, n_embd=64, n_head=4, n_positions=256,
        bos_token_id=special, eos_token_id=special,
    ))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Local stand-ins for hub models and data: ``{name: path}``."""
    root = tmp_path_factory.mktemp("hub")
    texts = load_texts("python-docs")[1]
    rng = np.random.default_rng(0)
    picked = [texts[i] for i in rng.permutation(len(texts))[:1400]]
    tokenizer = train_bpe(picked[1000:], vocab_size=512)
    paths = {}
    for name, n_layer, seed in (("teacher", 2, 0), ("student", 1, 1)):
        folder = root / name
        _gpt2(tokenizer, n_layer, seed).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        paths[name] = folder
    # The "pretraining" setting: a teacher trained on 200 member texts, then published.
    members, others = picked[:200], picked[200:1000]
    teacher = _gpt2(tokenizer, 2, 0)
    rows, _ = encode(tokenizer, members, max_length=80)
    fit(teacher, rows, TrainConfig(epochs=20, batch_size=16, lr=5e-3), lm_loss, seed=0,
        pad_id=tokenizer.eos_token_id, device=torch.device("cpu"), desc="pretrain")
    paths["pretrained_teacher"] = root / "pretrained_teacher"
    teacher.save_pretrained(paths["pretrained_teacher"])
    tokenizer.save_pretrained(paths["pretrained_teacher"])
    data = root / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": int(i < 200)}) + "\n" for i, t in enumerate(members + others)))
    paths["data"] = data
    # Another vocabulary, a model with its own code, a masked LM.
    other = train_bpe(picked[1000:], vocab_size=400)
    paths["other_vocab"] = root / "other_vocab"
    _gpt2(other, 1, 2).save_pretrained(paths["other_vocab"])
    other.save_pretrained(paths["other_vocab"])
    paths["remote"] = root / "remote"
    paths["remote"].mkdir()
    (paths["remote"] / "config.json").write_text(json.dumps({
        "model_type": "mia_custom", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig",
                                                 "AutoModelForCausalLM": "modeling_custom.CustomModel"},
    }))
    (paths["remote"] / "configuration_custom.py").write_text("raise RuntimeError('must not run')\n")
    paths["bert"] = root / "bert"
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(paths["bert"])
    return paths


def _finetune(ci_raw, hub) -> dict:
    return {**ci_raw, "teacher": {"pretrained": str(hub["teacher"]), "train": ci_raw["teacher"]["train"]},
            "student": {"pretrained": str(hub["student"])}, "tokenizer": {"max_length": 80}}


def _pretraining(ci_raw, hub) -> dict:
    source = {"name": "files", "path": str(hub["data"])}
    return {
        **ci_raw, "tokenizer": {"max_length": 80},
        "data": {**ci_raw["data"], "membership": "pretraining", "source": {**source, "where": {"label": 1}},
                 "nonmember_source": {**source, "where": {"label": 0}}},
        "teacher": {"pretrained": str(hub["pretrained_teacher"]), "train": {"epochs": 0}},
        "student": {"pretrained": str(hub["student"])},
    }


def test_finetune_mode_trial_from_local_pretrained_folders(ci_raw, hub):
    config = validate_config(_finetune(ci_raw, hub))
    assert config.tokenizer.pretrained == str(hub["teacher"])  # the teacher's own tokenizer, resolved
    result = run_trial(config)
    row = result.trial
    assert row["membership"] == "finetune" and row["n_windowed"] == 0 and not row["teacher_cache_hit"]
    loss = next(m for m in result.metrics if m["model_role"] == "teacher" and m["attack"] == "loss")
    assert loss["auc"] > 0.6  # fine-tuned on the members for 20 epochs: it remembers them


def test_pretraining_mode_trial_uses_the_teacher_as_is(ci_raw, hub):
    result = run_trial(validate_config(_pretraining(ci_raw, hub)))
    row = result.trial
    assert row["membership"] == "pretraining" and not row["split_shifted"]
    assert row["blind_auc_low"] < 0.5 < row["blind_auc_high"]  # an IID labelled split: the blind check passes
    loss = next(m for m in result.metrics if m["model_role"] == "teacher" and m["attack"] == "loss")
    assert loss["auc"] > 0.6  # the published teacher was trained on exactly the label-1 records


@pytest.mark.ray
@pytest.mark.parametrize("mode", ["finetune", "pretraining"])
def test_two_trial_sweep_from_local_folders(ray_session, ci_raw, hub, tmp_path, mode):
    from mia_kd.sweep.runner import run_sweep

    raw = _finetune(ci_raw, hub) if mode == "finetune" else _pretraining(ci_raw, hub)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**raw, "sweep": {"methods": {"none": {}, "temperature": {}},
                                                     "trials_per_method": 2, "save_students": "none"}}))
    outcome = run_sweep(path, out=str(tmp_path / "out"))
    trials = read_table(str(tmp_path / "out"), "trials").to_pandas()
    assert outcome.completed == 2 and (trials["membership"] == mode).all()


def test_a_preparation_error_in_its_ray_task_is_the_users_one_line(ray_session, ci_raw, hub, tmp_path):
    """The sweep prepares in a Ray task: an error found there is raised as itself, not as Ray's traceback."""
    from mia_kd.errors import UserError
    from mia_kd.sweep.runner import run_sweep

    raw = {**_finetune(ci_raw, hub), "student": {"pretrained": str(hub["other_vocab"])}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**raw, "sweep": {"methods": {"none": {}}, "save_students": "none"}}))
    with pytest.raises(UserError) as caught:
        run_sweep(path, out=str(tmp_path / "out"))
    assert "its vocabulary differs from the run's tokenizer" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1 and "RayTaskError" not in type(caught.value).__name__


def _cli_error(tmp_path, raw, capsys) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["trial", str(path), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
    return err


def test_user_errors_are_one_line_and_exit_2(ci_raw, hub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = _finetune(ci_raw, hub)
    mismatch = {**raw, "student": {"pretrained": str(hub["other_vocab"])}}
    assert "its vocabulary differs from the run's tokenizer" in _cli_error(tmp_path, mismatch, capsys)
    unknown = {**raw, "teacher": {"pretrained": "no-such-org/no-such-model"}}
    assert "could not be fetched from the Hugging Face hub" in _cli_error(tmp_path, unknown, capsys)
    column = {**raw, "data": {**raw["data"], "source": {"name": "files", "path": str(hub["data"]), "text_column": "body"}}}
    assert "no column 'body'" in _cli_error(tmp_path, column, capsys)
    remote = {**raw, "tokenizer": {"pretrained": str(hub["teacher"])}, "student": {"pretrained": str(hub["remote"])}}
    assert "ships its own model code; set student.trust_remote_code: true" in _cli_error(tmp_path, remote, capsys)
    bert = {**raw, "tokenizer": {"pretrained": str(hub["teacher"])}, "student": {"pretrained": str(hub["bert"])}}
    assert "is a masked language model" in _cli_error(tmp_path, bert, capsys)
    wrong_mode = {**_pretraining(ci_raw, hub), "teacher": {"pretrained": str(hub["teacher"])}}
    assert "teacher.train.epochs: 0" in _cli_error(tmp_path, wrong_mode, capsys)


def test_validate_checks_local_models_without_training(ci_raw, hub, tmp_path, capsys):
    path = tmp_path / "byo.yaml"
    path.write_text(yaml.safe_dump(_finetune(ci_raw, hub)))
    assert main(["validate", str(path), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "valid (trial config)" in out and "not checked" not in out and f"pretrained: {hub['teacher']}" in out
    path.write_text(yaml.safe_dump({**_finetune(ci_raw, hub), "student": {"pretrained": str(hub["other_vocab"])}}))
    assert main(["validate", str(path)]) == 2
    assert "vocabulary differs" in capsys.readouterr().err


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "sweeps").glob("*.yaml")))
def test_validate_passes_on_every_ready_sweep(config, capsys):
    assert main(["validate", str(REPO / "sweeps" / config)]) == 0
    assert "valid (sweep config)" in capsys.readouterr().out
