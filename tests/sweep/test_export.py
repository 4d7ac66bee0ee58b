"""``mia-kd export``: a Hub model card holding the measured numbers, students that load as the model measured
(or refuse to load without mia_kd), and one-line errors for trials that have no student to export.

The results folder is made by hand: tiny students saved as the sweep saves them, and ``trials``/``metrics``
rows written through the store, so the card can be compared with the table it is read from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM

from mia_kd.config import TrialConfig
from mia_kd.distill.remote_code import MODELING_FILE
from mia_kd.distill.student import VULNERABILITY, load_student, read_meta, save_student
from mia_kd.errors import UserError
from mia_kd.models.tokenizer import train_bpe
from mia_kd.privacy import Vulnerability
from mia_kd.store import MANIFEST, METRICS, TRIALS, read_table, write_trial
from mia_kd.sweep.export import export_student, model_card
from tests.distill.test_student_and_ensemble import CORPUS, make_student

ATTACKS = ("loss", "zlib", "min_k")
# trial id -> (method, strength, stage); "kept" students are saved, the others were not kept
KEPT = {
    "t-none": ("none", 0.0, "train"),
    "t-output_noise": ("output_noise", 1.0, "serve"),
    "t-temperature": ("temperature", 0.5, "serve"),
    "t-red_list": ("red_list", 2.0, "serve"),
    "t-topk_targets": ("topk_targets", 0.5, "serve"),
    "t-bottleneck": ("bottleneck", 0.5, "train"),
    "t-nonorm": ("nonorm", 1.0, "train"),
    "t-neutral-serve": ("output_noise", 0.0, "serve"),  # neutral: acts on nothing, loads plainly
}
NOT_KEPT = ("t-gone",)
FAILED = ("t-failed",)


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(CORPUS, vocab_size=300)


@pytest.fixture(scope="module")
def vulnerability(tokenizer) -> Vulnerability:
    mask = np.zeros(len(tokenizer), dtype=bool)
    mask[1::4] = True
    return Vulnerability(
        attack="loss", member_ids=("a", "b"), scores=np.array([1.0, 0.0]), n_vulnerable=1, token_mask=mask,
        tokens_rule="all",
    )


def _metrics_rows(trial_id: str, rng: np.random.Generator) -> list[dict]:
    rows = []
    for role in ("teacher", "student"):
        for i, attack in enumerate(ATTACKS):
            auc, tpr1 = rng.uniform(0.45, 0.75), rng.uniform(0.0, 0.2)
            rows.append({
                "schema_version": 2, "trial_id": trial_id, "model_role": role, "attack": attack, "orientation": 1,
                "auc": auc, "auc_low": auc - 0.05, "auc_high": auc + 0.05, "tpr": 0.6, "tnr": 0.55,
                # min_k: NaN, as where the fold cannot resolve a 1% FPR
                "tpr_at_fpr_1pct": math.nan if i == 2 else tpr1, "tpr_at_fpr_1pct_low": max(tpr1 - 0.03, 0.0),
                "tpr_at_fpr_1pct_high": tpr1 + 0.03, "n_members": 50, "n_nonmembers": 60,
            })
    return rows


@pytest.fixture(scope="module")
def results(tmp_path_factory, tokenizer, ci_config, vulnerability) -> Path:
    """A sweep folder: students of KEPT saved (with the vulnerability their serve method read), trials and
    metrics rows for every trial, and a manifest whose sweep kept the front only."""
    out = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    for seed, trial_id in enumerate([*KEPT, *NOT_KEPT, *FAILED]):
        method, strength, stage = KEPT.get(trial_id, ("none", 0.0, "train"))
        model, row, _ = make_student(
            tokenizer, ci_config, method, strength, stage=stage, seed=seed, vulnerability=vulnerability
        )
        status = "failed" if trial_id in FAILED else "completed"
        trial = {
            **row, "schema_version": 2, "trial_id": trial_id, "status": status, "n_members": 100,
            "student_task_loss": 3.25 + seed, "teacher_task_loss": 3.0,
        }
        tables = {"trials": pa.Table.from_pylist([trial], schema=TRIALS)}
        if status == "completed":
            tables["metrics"] = pa.Table.from_pylist(_metrics_rows(trial_id, rng), schema=METRICS)
        write_trial(str(out), sweep_id=row["sweep_id"], method=method, trial_id=trial_id, tables=tables)
        if trial_id in KEPT:
            save_student(out / "students", SimpleNamespace(
                student=model, tokenizer=tokenizer, trial={**row, "trial_id": trial_id}, vulnerability=vulnerability,
            ))
    (out / MANIFEST).write_text(json.dumps({"sweep_id": ci_config.sweep_id, "sweep": {"save_students": "front"}}))
    return out


@pytest.fixture
def remote_code(monkeypatch, tmp_path):
    """transformers copies an export's remote code under this test's folder, not ~/.cache/huggingface."""
    from transformers import dynamic_module_utils

    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))


def _student_metrics(results: Path, trial_id: str):
    metrics = read_table(str(results), "metrics").to_pandas()
    return metrics[(metrics["trial_id"] == trial_id) & (metrics["model_role"] == "student")]


# ------------------------------------------------------------------------------------------------ card


def test_the_card_parses_and_its_model_index_holds_the_measured_numbers(results, tmp_path):
    dest = export_student(results, "t-red_list", tmp_path / "exported", license="apache-2.0")
    card = ModelCard.load(dest / "README.md")  # huggingface_hub's own parser (validate() needs the network)
    data = card.data

    assert data.license == "apache-2.0"
    assert data.pipeline_tag == "text-generation" and data.library_name == "transformers"
    assert data.datasets == ["python-docs"]
    assert data.base_model is None and "trained from scratch" in card.text  # the CI teacher has no base model
    got = {(r.metric_config, r.metric_type): r.metric_value for r in data.eval_results}
    expected = {}
    for m in _student_metrics(results, "t-red_list").itertuples():
        expected[(m.attack, "auc")] = m.auc
        if not math.isnan(m.tpr_at_fpr_1pct):
            expected[(m.attack, "tpr_at_fpr_1pct")] = m.tpr_at_fpr_1pct
    assert ("min_k", "tpr_at_fpr_1pct") not in expected  # a NaN is left out of model-index, not written as .nan
    assert got == expected  # the table's float64 values, exactly
    assert {r.dataset_split for r in data.eval_results} == {"eval fold (50 members, 60 non-members)"}
    assert all(r.task_type == "text-generation" for r in data.eval_results)
    # The text carries the CIs of the same rows.
    m = _student_metrics(results, "t-red_list").iloc[0]
    assert f"{m.auc:.3f} [{m.auc_low:.3f}, {m.auc_high:.3f}]" in card.text
    assert f"[{m.tpr_at_fpr_1pct_low:.3f}, {m.tpr_at_fpr_1pct_high:.3f}]" in card.text
    assert "nan" not in card.text and "| 0.600 | 0.550 | – |" in card.text  # min_k's unresolved TPR@1%
    assert "trust_remote_code=True" in card.text  # a serve-stage student: how to load it with its protection


def test_a_pretrained_teacher_is_the_base_model_and_the_license_defaults_to_other(results, ci_config):
    raw = ci_config.model_dump(mode="json")
    raw["teacher"]["pretrained"] = "org/teacher-model"
    raw["data"]["source"] = {"name": "hf", "dataset": "org/records", "split": "train"}
    meta = read_meta(results / "students" / "t-none")
    meta = dataclasses.replace(meta, config=TrialConfig.model_validate(raw))
    trials = read_table(str(results), "trials").to_pandas()
    card = model_card("t-none", meta, trials[trials["trial_id"] == "t-none"].iloc[0],
                      _student_metrics(results, "t-none"), license="other")
    parsed = ModelCard(str(card)).data  # a round trip through the YAML
    assert parsed.base_model == "org/teacher-model" and parsed.license == "other"
    assert parsed.datasets == ["org/records"]
    assert "`org/teacher-model`, fine-tuned on 100 member records" in card.text
    assert "from_pretrained(folder)` loads it" in card.text  # "none" acts on nothing when loaded


# ------------------------------------------------------------------------------------------------ loading


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@pytest.mark.parametrize(
    "trial_id", ["t-output_noise", "t-temperature", "t-red_list", "t-topk_targets", "t-bottleneck", "t-nonorm"]
)
def test_a_student_whose_method_acts_when_loaded_needs_mia_kd_and_then_loads_as_measured(
    results, tmp_path, remote_code, trial_id
):
    dest = export_student(results, trial_id, tmp_path / "exported")
    assert (dest / MODELING_FILE).is_file()
    # Plain loading refuses: it would drop the serve transform or misload the changed modules.
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        AutoModelForCausalLM.from_pretrained(dest)

    model = AutoModelForCausalLM.from_pretrained(dest, trust_remote_code=True)
    measured, tokenizer, transform = load_student(results / "students" / trial_id)  # the sweep's own folder
    ids = torch.tensor([tokenizer("def add(a, b): return a + b")["input_ids"]])
    expected = _logits(measured, ids)
    if transform is not None:
        expected = transform(expected, ids, torch.ones_like(ids))
    # The same modules and weights, the same float32 operations: bit for bit.
    torch.testing.assert_close(_logits(model, ids), expected, atol=0, rtol=0)
    # mia_kd reads the exported folder too (its own config nested in the wrapper).
    again, _, again_transform = load_student(dest)
    assert (again_transform is None) == (transform is None)
    got = _logits(again, ids)
    torch.testing.assert_close(again_transform(got, ids, torch.ones_like(ids)) if transform else got, expected,
                               atol=0, rtol=0)
    # And the protection is there: the stock architecture without it gives other logits.
    plain = AutoModelForCausalLM.from_config(again.config)
    plain.load_state_dict(again.state_dict(), strict=False)
    assert (_logits(plain.eval(), ids) - expected).abs().max() > 1e-3


@pytest.mark.parametrize("trial_id", ["t-none", "t-neutral-serve"])
def test_a_student_whose_method_does_not_act_when_loaded_loads_plainly(results, tmp_path, trial_id):
    dest = export_student(results, trial_id, tmp_path / "exported")
    assert not (dest / MODELING_FILE).exists()
    assert json.loads((dest / "config.json").read_text())["model_type"] == "gpt2"
    model = AutoModelForCausalLM.from_pretrained(dest).eval()
    measured, tokenizer, transform = load_student(results / "students" / trial_id)
    assert transform is None
    ids = torch.tensor([tokenizer("The lazy dog sleeps.")["input_ids"]])
    torch.testing.assert_close(_logits(model, ids), _logits(measured, ids), atol=0, rtol=0)


def test_a_serve_student_without_its_vulnerability_is_refused_at_export(results, tmp_path):
    students = tmp_path / "out"
    shutil.copytree(results, students)
    (students / "students" / "t-temperature" / VULNERABILITY).unlink()
    with pytest.raises(UserError, match=f"no {VULNERABILITY}"):
        export_student(students, "t-temperature", tmp_path / "exported")
    assert not (tmp_path / "exported").exists()


# ------------------------------------------------------------------------------------------------ errors


def _error(results: Path, trial_id: str, dest: Path) -> str:
    with pytest.raises(UserError) as info:
        export_student(results, trial_id, dest)
    message = str(info.value)
    assert "\n" not in message
    assert not dest.exists()
    return message


def test_an_unknown_trial_lists_the_saved_ones(results, tmp_path):
    message = _error(results, "t-nope", tmp_path / "x")
    assert "no trial 't-nope'" in message
    assert ", ".join(sorted(KEPT)) in message and "…" not in message
    # More than ten saved: the first ten, and how many there are.
    many = tmp_path / "many"
    many.mkdir()
    (many / "trials").symlink_to(results / "trials")
    for i in range(12):
        (many / "students" / f"s{i:02d}").mkdir(parents=True)
    message = _error(many, "t-nope", tmp_path / "x")
    assert ", ".join(f"s{i:02d}" for i in range(10)) + ", … (12 in all)" in message and "s10" not in message


def test_a_trial_whose_student_was_not_kept_says_so_and_how_to_keep_it(results, tmp_path):
    message = _error(results, "t-gone", tmp_path / "x")
    assert "ran but its student was not kept (sweep.save_students: front)" in message
    assert "sweep.save_students: all" in message
    assert "failed" in _error(results, "t-failed", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="exists"):
        export_student(results, "t-none", tmp_path / "taken")


def test_the_cli_exports_and_turns_errors_into_exit_code_2(results, tmp_path, capsys):
    from mia_kd.cli import main

    assert main(["export", str(results), "t-bottleneck", str(tmp_path / "exported")]) == 0
    assert ModelCard.load(tmp_path / "exported" / "README.md").data.eval_results
    assert main(["export", str(results), "t-gone", str(tmp_path / "x")]) == 2
    assert "save_students: all" in capsys.readouterr().err
