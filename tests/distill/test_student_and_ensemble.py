"""Saved students reload as the model that was scored; an exported ensemble computes the stored mixture.

Students are tiny GPT-2s with a BPE trained on a few lines, saved by ``save_student`` (a slow test checks
that what it writes reloads exactly; the sweep saves through it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config

from mia_kd.config import validate_config
from mia_kd.distill.ensemble import FORMAT, MANIFEST, export_ensemble, load_ensemble
from mia_kd.distill.remote_code import MODELING_FILE
from mia_kd.distill.student import VULNERABILITY, load_student, save_student
from mia_kd.errors import UserError
from mia_kd.metrics import mixture_logprobs
from mia_kd.models.build import context_length
from mia_kd.models.scoring import score
from mia_kd.models.tokenizer import encode, train_bpe
from mia_kd.privacy import MethodContext, Vulnerability, build_method, vulnerability_to_json
from tests._tolerance import EPS32, float32_atol, forward_ops

CPU = torch.device("cpu")
CORPUS = [
    "def add(a, b):\n    return a + b",
    "The quick brown fox jumps over the lazy dog.",
    "import os\nprint(os.getcwd())",
    "Membership inference asks whether a record was in the training set.",
] * 5
TEXTS = [
    "def sub(a, b):\n    return a - b",
    "The lazy dog sleeps.",
    "",
    "x",
    "Distillation can leak the teacher's training records through the student. " * 6,  # over max_length
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe(CORPUS, vocab_size=300)


@pytest.fixture(scope="module")
def rows(tokenizer, ci_config):
    return encode(tokenizer, TEXTS, max_length=ci_config.tokenizer.max_length)[0]


@pytest.fixture(scope="module")
def vulnerability(tokenizer) -> Vulnerability:
    mask = np.zeros(len(tokenizer), dtype=bool)
    mask[::3] = True
    return Vulnerability(
        attack="loss", member_ids=("a", "b"), scores=np.array([1.0, 0.0]), n_vulnerable=1, token_mask=mask,
        tokens_rule="all",
    )


def student_model(tokenizer, seed: int, *, positions: int = 128) -> torch.nn.Module:
    """A tiny GPT-2 whose every weight is random (as if trained), so a wrong reload cannot match by chance."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=4, n_positions=positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape) * 0.3)
    return model.eval()


def make_student(tokenizer, ci_config, method: str, strength: float, *, stage: str = "train", seed: int = 0,
                 vulnerability: Vulnerability | None = None, **params):
    """``(model, trial row, method)`` as run_student makes them: the method applied, the row it writes."""
    raw = ci_config.model_dump(mode="json")
    raw["privacy"] = {"method": method, "strength": strength, "stage": stage, "params": params}
    config = validate_config(raw)
    student_seed = config.seed + 1
    built = build_method(method, strength, params, MethodContext(vulnerability, len(tokenizer), student_seed))
    model = student_model(tokenizer, seed)
    if stage == "train":
        model = built.modify_student(model)
        with torch.no_grad():  # "train" the replaced modules too
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1)) * 0.1)
    row = {
        "sweep_id": config.sweep_id, "method": method, "strength": float(strength), "privacy_stage": stage,
        "privacy_params": json.dumps(params, sort_keys=True), "params": config.model_dump_json(),
    }
    return model.eval(), row, built


def save_like_sweep(root: Path, trial_id: str, model, tokenizer, row: dict) -> Path:
    """``root/students/<trial_id>/``, from a stand-in for the TrialResult (only the fields save_student reads)."""
    result = SimpleNamespace(student=model, tokenizer=tokenizer, trial={**row, "trial_id": trial_id})
    return save_student(root / "students", result)


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def assert_same_logits(got: torch.Tensor, expected: torch.Tensor, model) -> None:
    """Two float32 forward passes of the same weights on the same ids, within what their rounding allows."""
    atol = float32_atol(expected, ops=forward_ops(model.config, expected.shape[-2]))
    torch.testing.assert_close(got, expected, atol=atol, rtol=0)


def _score(model, rows, tokenizer, transform=None):
    return score(model, rows, pad_id=tokenizer.pad_token_id, batch_size=2, device=CPU, transform=transform).logprobs


# ------------------------------------------------------------------------------------------------ students


@pytest.mark.parametrize(("method", "strength"), [("nonorm", 1.0), ("bottleneck", 0.5)])
def test_architecture_students_reload_exactly_and_plain_loading_does_not(
    tmp_path, tokenizer, ci_config, rows, method, strength
):
    model, row, _ = make_student(tokenizer, ci_config, method, strength)
    folder = save_like_sweep(tmp_path, "t1", model, tokenizer, row)
    reloaded, reloaded_tokenizer, transform = load_student(folder)
    ids = torch.tensor([rows[0]])

    assert transform is None
    assert reloaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert [type(m) for m in reloaded.modules()] == [type(m) for m in model.modules()]
    assert_same_logits(logits(reloaded, ids), logits(model, ids), model)
    # The gap is real: plain loading gives a different model (nonorm: LayerNorms again; bottleneck: the
    # bottleneck weights dropped and the original projection re-initialised).
    plain = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert (logits(plain, ids) - logits(model, ids)).abs().max() > 1e-2


def test_weights_that_do_not_fit_the_rebuilt_model_are_a_user_error(tmp_path, tokenizer, ci_config):
    model, row, _ = make_student(tokenizer, ci_config, "bottleneck", 0.5)
    folder = save_like_sweep(tmp_path, "t1", model, tokenizer, row)
    meta = json.loads((folder / "mia_kd.json").read_text())
    meta["strength"] = 0.25  # another bottleneck width than the saved weights have
    (folder / "mia_kd.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="reshaped .*c_fc.down"):
        load_student(folder)
    meta["strength"] = 0.0  # neutral: plain GPT-2, which has no bottleneck modules
    (folder / "mia_kd.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="missing .*c_fc.weight.*unexpected .*c_fc.down"):
        load_student(folder)


def test_train_stage_student_without_architecture_change_reloads_plainly(
    tmp_path, tokenizer, ci_config, rows, vulnerability
):
    # temperature at train stage needed the vulnerability to distil, not to be loaded
    model, row, _ = make_student(tokenizer, ci_config, "temperature", 0.5, vulnerability=vulnerability)
    reloaded, _, transform = load_student(save_like_sweep(tmp_path, "t1", model, tokenizer, row))
    assert transform is None
    assert_same_logits(logits(reloaded, torch.tensor([rows[1]])), logits(model, torch.tensor([rows[1]])), model)


@pytest.mark.parametrize(
    ("method", "strength"), [("output_noise", 1.0), ("topk_targets", 0.5), ("temperature", 0.5), ("red_list", 2.0)]
)
def test_serve_students_return_their_transform_and_score_as_in_the_trial(
    tmp_path, tokenizer, ci_config, rows, vulnerability, method, strength
):
    model, row, trial_method = make_student(
        tokenizer, ci_config, method, strength, stage="serve", vulnerability=vulnerability
    )
    folder = save_like_sweep(tmp_path, "t1", model, tokenizer, row)
    if trial_method.needs_vulnerability:
        # A folder without the vulnerability (a stand-in result without one): say how to supply it.
        with pytest.raises(UserError, match=f"no {VULNERABILITY}"):
            load_student(folder)
        # A TrialResult carries the vulnerability its method read, and save_student keeps it with the student.
        shutil.rmtree(folder)
        folder = save_student(
            tmp_path / "students",
            SimpleNamespace(student=model, tokenizer=tokenizer, trial={**row, "trial_id": "t1"}, vulnerability=vulnerability),
        )
        assert json.loads((folder / VULNERABILITY).read_text()) == vulnerability_to_json(vulnerability)
    reloaded, _, transform = load_student(folder)

    assert transform is not None and transform.__self__.name == method
    expected = _score(model, rows, tokenizer, trial_method.serve_logits)  # what run_student stored
    for a, b in zip(_score(reloaded, rows, tokenizer, transform), expected, strict=True):
        np.testing.assert_array_equal(a, b)
    plain = _score(model, rows, tokenizer)
    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(plain, expected, strict=True) if len(a))


def test_a_vulnerability_can_be_passed_instead_of_saved(tmp_path, tokenizer, ci_config, rows, vulnerability):
    model, row, trial_method = make_student(
        tokenizer, ci_config, "temperature", 0.5, stage="serve", vulnerability=vulnerability
    )
    folder = save_like_sweep(tmp_path, "t1", model, tokenizer, row)
    _, _, transform = load_student(folder, vulnerability=vulnerability)
    ids = torch.tensor([rows[0]])
    out = logits(model, ids)
    # An element-wise map of the same tensor: the same float32 operations, so bit for bit the same.
    torch.testing.assert_close(
        transform(out, ids, torch.ones_like(ids)), trial_method.serve_logits(out, ids, torch.ones_like(ids)), atol=0, rtol=0
    )


def test_a_folder_without_mia_kd_json_loads_as_a_plain_model(tmp_path, tokenizer, rows):
    model = student_model(tokenizer, 3)
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    reloaded, _, transform = load_student(tmp_path / "plain")
    assert transform is None
    ids = torch.tensor([rows[0]])
    assert_same_logits(logits(reloaded, ids), logits(model, ids), model)
    with pytest.raises(UserError, match="does not exist"):
        load_student(tmp_path / "nowhere")


def test_saving_a_retried_trial_replaces_its_folder(tmp_path, tokenizer, ci_config, rows):
    first, row, _ = make_student(tokenizer, ci_config, "none", 0.0, seed=1)
    second, _, _ = make_student(tokenizer, ci_config, "none", 0.0, seed=2)
    save_like_sweep(tmp_path, "t1", first, tokenizer, row)
    folder = save_like_sweep(tmp_path, "t1", second, tokenizer, row)
    assert [p.name for p in folder.parent.iterdir()] == ["t1"]  # no temporary folder left behind
    ids = torch.tensor([rows[0]])
    assert_same_logits(logits(load_student(folder)[0], ids), logits(second, ids), second)


# ------------------------------------------------------------------------------------------------ ensemble


@pytest.fixture(scope="module")
def sweep_students(tmp_path_factory, tokenizer, ci_config, vulnerability):
    """Three students of one "sweep": plain, nonorm (architecture), topk_targets at serve stage.

    Returns ``(students_root, {trial_id: (model, serve transform or None)})``.
    """
    root = tmp_path_factory.mktemp("sweep")
    specs = {"a": ("none", 0.0, "train"), "b": ("nonorm", 1.0, "train"), "c": ("topk_targets", 0.5, "serve")}
    made = {}
    for seed, (trial_id, (method, strength, stage)) in enumerate(specs.items()):
        model, row, built = make_student(tokenizer, ci_config, method, strength, stage=stage, seed=10 + seed)
        save_like_sweep(root, trial_id, model, tokenizer, row)
        made[trial_id] = (model, built.serve_logits if stage == "serve" else None)
    return root / "students", made


WEIGHTS = [0.5, 0.25, 0.25]


def _ensemble_atol(ensemble, expected) -> float:
    """Two float32 runs of the members (the sweep's batches and the ensemble's, padded to other widths) round
    differently; the mixture's log-prob moves by no more than its members' do."""
    ops = max(forward_ops(m.config, max(map(len, expected), default=0) + 1) for m in ensemble.members)
    return float32_atol(*expected, ops=ops)


def test_ensemble_token_logprobs_equal_the_mixture_of_the_members_scores(tmp_path, sweep_students, tokenizer, rows):
    root, made = sweep_students
    members = list(made)
    stored = [_score(model, rows, tokenizer, transform) for model, transform in made.values()]
    expected = [mixture_logprobs([s[i] for s in stored], WEIGHTS) for i in range(len(rows))]

    ensemble = load_ensemble(export_ensemble(root, members, WEIGHTS, tmp_path / "ens", {"sweep_id": "ci"}))
    got = ensemble.token_logprobs(TEXTS)  # other batches than the sweep's scorer: another padded width
    atol = _ensemble_atol(ensemble, expected)

    assert len(got) == len(TEXTS)
    assert got[2].shape == (0,)  # the empty text: nothing predicted
    assert len(got[-1]) == len(rows[-1]) - 1 < len(ensemble.tokenizer(TEXTS[-1])["input_ids"])  # cut as stored
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float32 and g.shape == e.shape
        np.testing.assert_allclose(g, e, atol=atol, rtol=0)
    for a, b in zip(ensemble.token_logprobs(TEXTS, batch_size=1), got, strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
    # In the sweep's batches the members' passes are the sweep's: the stored mixture, rounded to float32.
    for g, e in zip(ensemble.token_logprobs(TEXTS, batch_size=2), expected, strict=True):
        np.testing.assert_allclose(g, e, atol=float32_atol(e), rtol=0)


def test_ensemble_windows_each_member_at_its_own_context_as_the_sweep_scored_it(tmp_path, tokenizer, ci_config, rows):
    _, row, _ = make_student(tokenizer, ci_config, "none", 0.0)
    made = {"long": student_model(tokenizer, 20), "short": student_model(tokenizer, 21, positions=16)}
    for trial_id, model in made.items():
        save_like_sweep(tmp_path, trial_id, model, tokenizer, row)
    assert max(map(len, rows)) > 16  # some texts are windowed for one member only
    stored = [
        score(m, rows, pad_id=tokenizer.pad_token_id, batch_size=2, device=CPU, context=context_length(m)).logprobs
        for m in made.values()
    ]
    expected = [mixture_logprobs([s[i] for s in stored], [0.5, 0.5]) for i in range(len(rows))]

    ensemble = load_ensemble(export_ensemble(tmp_path / "students", list(made), [0.5, 0.5], tmp_path / "ens", {}))
    got = ensemble.token_logprobs(TEXTS, batch_size=2)

    atol = _ensemble_atol(ensemble, expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=atol, rtol=0)


def test_ensemble_forward_at_the_observed_tokens_is_its_token_logprobs(tmp_path, sweep_students, tokenizer, rows):
    root, made = sweep_students
    ensemble = load_ensemble(export_ensemble(root, list(made), WEIGHTS, tmp_path / "ens", {}))
    for text, row in zip(TEXTS[:2], rows[:2], strict=True):
        ids = torch.tensor([row])
        with torch.no_grad():
            logp = ensemble(ids)[0, :-1]
        observed = logp[torch.arange(len(row) - 1), ids[0, 1:]].numpy()
        (got,) = ensemble.token_logprobs([text], batch_size=1)
        # Both run each member on the same ids; they differ only in where the mixture is rounded to float32.
        atol = float32_atol(got, ops=forward_ops(ensemble.members[0].config, len(row)))
        np.testing.assert_allclose(observed, got, atol=atol, rtol=0)


def test_ensemble_forward_is_a_distribution_over_the_vocabulary(tmp_path, sweep_students, rows):
    root, made = sweep_students
    ensemble = load_ensemble(export_ensemble(root, list(made), WEIGHTS, tmp_path / "ens", {}))
    ids = torch.tensor([rows[0], rows[0]])
    with torch.no_grad():
        logp = ensemble(ids, torch.ones_like(ids))
    assert logp.shape == (*ids.shape, len(ensemble.tokenizer))
    # A sum over the vocabulary of the members' float32 log-softmax outputs, mixed in float32: each term
    # that carries mass is off by a few roundings of its own |log p|, and the sum rounds once per term.
    carrying = logp[logp.exp() > EPS32]
    atol = float32_atol(carrying, ops=logp.shape[-1] + 4 * len(ensemble.members))
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(ids.shape), atol=atol, rtol=0)


def test_manifest_and_folder_layout(tmp_path, sweep_students):
    root, _ = sweep_students
    meta = {"sweep_id": "ci", "auc": np.float64(0.6)}  # numpy scalars, as analysis code produces them
    dest = export_ensemble(root, ["c", "a"], [0.75, 0.25], tmp_path / "out" / "ens", meta)
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest == {
        "format": FORMAT,
        "members": [{"trial_id": "c", "path": "c", "weight": 0.75}, {"trial_id": "a", "path": "a", "weight": 0.25}],
        "sweep_id": "ci",
        "auc": 0.6,
    }
    tokenizer_files = sorted(p.name for p in (root / "c").iterdir() if p.name.startswith(("tokenizer", "special")))
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["a", "c", MANIFEST, "config.json", MODELING_FILE, *tokenizer_files]
    )
    assert sorted(p.name for p in (dest / "a").iterdir()) == sorted(p.name for p in (root / "a").iterdir())
    assert [p.name for p in dest.parent.iterdir()] == ["ens"]  # no temporary folder left behind
    assert load_ensemble(dest).trial_ids == ["c", "a"]


@pytest.fixture
def remote_code(monkeypatch, tmp_path):
    """transformers copies an export's remote code under this test's folder, not ~/.cache/huggingface."""
    from transformers import dynamic_module_utils

    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))


def test_an_exported_ensemble_loads_as_a_transformers_model_with_remote_code(
    tmp_path, sweep_students, tokenizer, rows, remote_code
):
    root, made = sweep_students
    dest = export_ensemble(root, list(made), WEIGHTS, tmp_path / "ens", {})
    # Without remote code transformers knows no "mia_kd" model: it refuses rather than load something else.
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        AutoModelForCausalLM.from_pretrained(dest)

    model = AutoModelForCausalLM.from_pretrained(dest, trust_remote_code=True)
    ensemble = load_ensemble(dest)
    assert not model.training and model.config.kind == "ensemble"
    assert AutoTokenizer.from_pretrained(dest).get_vocab() == tokenizer.get_vocab()
    width = min(len(rows[0]), len(rows[1]))
    ids = torch.tensor([rows[0][:width], rows[1][:width]])
    mask = torch.ones_like(ids)
    mask[1, width // 2 :] = 0  # a padded row: the mask reaches every member
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=ids)
        expected = ensemble(ids, mask)
    torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=0)
    assert out.logits.shape == (*ids.shape, len(tokenizer))
    # The loss of the labels is the mixture's mean next-token negative log-likelihood.
    nll = -expected[:, :-1].gather(-1, ids[:, 1:, None]).mean()
    torch.testing.assert_close(out.loss, nll, atol=1e-5, rtol=0)


def test_generate_is_a_string_and_deterministic_for_a_seed(tmp_path, sweep_students):
    root, made = sweep_students
    ensemble = load_ensemble(export_ensemble(root, list(made), WEIGHTS, tmp_path / "ens", {}))
    text = ensemble.generate("def add", max_new_tokens=8, seed=3)
    assert isinstance(text, str)
    assert ensemble.generate("def add", max_new_tokens=8, seed=3) == text
    greedy = ensemble.generate("The", greedy=True, max_new_tokens=5)
    assert ensemble.generate("The", greedy=True, max_new_tokens=5, seed=9) == greedy  # no sampling
    assert ensemble.generate("The", max_new_tokens=0) == ""
    with pytest.raises(UserError, match="temperature"):
        ensemble.generate("The", temperature=0.0)


def test_export_refuses_what_would_not_make_a_valid_ensemble(tmp_path, sweep_students, tokenizer):
    root, _ = sweep_students
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="already exists"):
        export_ensemble(root, ["a", "b"], [0.5, 0.5], tmp_path / "taken", {})
    with pytest.raises(UserError, match="save_students: all"):
        export_ensemble(root, ["a", "gone"], [0.5, 0.5], tmp_path / "e", {})
    for bad in ([0.5, 0.6], [1.5, -0.5], [1.0]):
        with pytest.raises(UserError, match="weights"):
            export_ensemble(root, ["a", "b"], bad, tmp_path / "e", {})
    with pytest.raises(UserError, match="duplicates"):
        export_ensemble(root, ["a", "a"], [0.5, 0.5], tmp_path / "e", {})
    with pytest.raises(UserError, match="manifest's own"):
        export_ensemble(root, ["a", "b"], [0.5, 0.5], tmp_path / "e", {"members": []})

    other = tmp_path / "other"
    shutil.copytree(root, other)
    train_bpe(CORPUS[:2], vocab_size=280).save_pretrained(other / "b")
    with pytest.raises(UserError, match="tokenizer differs"):
        export_ensemble(other, ["a", "b"], [0.5, 0.5], tmp_path / "e", {})
    assert not (tmp_path / "e").exists()
    with pytest.raises(UserError, match="not an ensemble folder"):
        load_ensemble(tmp_path / "taken")


def test_export_runs_without_torch(tmp_path, sweep_students):
    root, _ = sweep_students
    code = (
        "import sys; from mia_kd.distill.ensemble import export_ensemble; "
        f"export_ensemble({str(root)!r}, ['a', 'b'], [0.5, 0.5], {str(tmp_path / 'ens')!r}, {{}}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    assert (tmp_path / "ens" / MANIFEST).is_file()
