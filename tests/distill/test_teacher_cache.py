"""The teacher's logits cached once (``distill.teacher_logits``) stand in for its forward pass, exactly.

Exactly up to float rounding, not bit for bit: the cache scores each record unpadded, a training batch pads it
to the batch's longest record, and attention over a wider padded row rounds differently (about 1e-7 on CPU).
So the students distilled with and without the cache are compared with a tolerance far below one optimiser
step (lr ≥ 1e-3), and the teacher's forward pass is counted to show the cache is what was read.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mia_kd.config import DistillConfig, validate_config
from mia_kd.distill.teacher_cache import build_teacher_logits, logits_bytes, should_cache
from mia_kd.distill.trainer import distill
from mia_kd.models.batching import bucketed_batches, pad
from mia_kd.privacy import MethodContext, Vulnerability, build_method
from tests._tolerance import float32_atol, forward_ops

CPU = torch.device("cpu")
VOCAB = 64
QUICK = 16  # records distilled on in the tests of methods (a few seconds each)
STUDENT_TOLERANCE = 1e-5  # max |Δ weight| between students distilled with and without the cache


def tiny_model(seed: int, n_layer: int = 2, positions: int = 64) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB, n_layer=n_layer, n_embd=32, n_head=4, n_positions=positions,
                        bos_token_id=0, eos_token_id=0)
    return AutoModelForCausalLM.from_config(config)


def weight_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    with torch.no_grad():
        return max(float((pa[k] - pb[k]).abs().max()) for k in pa)


class ForwardCounter:
    """Counts a module's forward calls (the teacher's: zero when the cache answers every batch)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_) -> None:
        self.calls += 1

    def __enter__(self) -> ForwardCounter:
        return self

    def __exit__(self, *_) -> None:
        self._handle.remove()


@pytest.fixture(scope="module")
def rows() -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [[0, *rng.integers(1, VOCAB, size=int(n)).tolist()] for n in rng.integers(4, 16, size=40)]


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    return tiny_model(123).eval()


@pytest.fixture(scope="module")
def cache(teacher, rows):
    return build_teacher_logits(teacher, rows, pad_id=0, device=CPU, batch_size=8)


def test_cached_logits_equal_the_teachers_forward_on_training_batches(teacher, rows, cache):
    assert len(cache.logits) == len(rows) and cache.vocab == VOCAB and cache.dtype == torch.float32
    assert cache.nbytes == logits_bytes(rows, VOCAB) == sum(map(len, rows)) * VOCAB * 4
    worst = 0.0
    for batch in bucketed_batches([len(r) for r in rows], 8, np.random.default_rng(1)):
        ids, mask = pad([rows[i] for i in batch], pad_id=0)
        with torch.no_grad():
            expected = teacher(input_ids=ids, attention_mask=mask).logits
        got = cache.lookup(ids, mask)
        assert got is not None and got.shape == expected.shape and got.dtype == expected.dtype
        real = mask.bool()
        assert (got[~real] == 0).all()  # padded positions: zeros, which the loss ignores
        worst = max(worst, float((got[real] - expected[real]).abs().max()))
        torch.testing.assert_close(got[real], expected[real], rtol=0,
                                   atol=float32_atol(expected[real], ops=forward_ops(teacher.config, ids.shape[1])))
    print(f"max |cached - forward| over the training batches: {worst:.3g}")  # 6e-8 on the CI machine


def test_each_record_is_cached_as_scored_alone_and_cut_to_the_context(rows):
    teacher = tiny_model(5, positions=12).eval()
    cache = build_teacher_logits(teacher, rows, pad_id=0, device=CPU, batch_size=3)
    assert cache.context == 12 and set(cache.logits) == {tuple(r[:12]) for r in rows}
    row = max(rows, key=len)[:12]
    with torch.no_grad():
        alone = teacher(input_ids=torch.tensor([row])).logits[0]
    np.testing.assert_array_equal(cache.logits[tuple(row)], alone.numpy())  # unpadded: the same computation
    # A student with a longer context trains on uncut records: the cache cannot stand in, and says why.
    assert "not in it" in cache.unusable(rows, context=64, amp_dtype=None)
    assert cache.unusable(rows, context=12, amp_dtype=None) is None
    assert "autocast" in cache.unusable(rows, context=12, amp_dtype=torch.bfloat16)


def test_lookup_falls_back_on_unknown_records_odd_masks_and_inside_torch_func(cache, rows):
    ids, mask = pad(rows[:2], pad_id=0)
    assert cache.lookup(ids, mask) is not None
    unknown = ids.clone()
    unknown[0, 1] = (unknown[0, 1] + 1) % VOCAB
    assert cache.lookup(unknown, mask) is None
    holes = mask.clone()
    holes[0, 1] = 0
    assert cache.lookup(ids, holes) is None
    seen = []

    def per_record(i: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        seen.append(cache.lookup(i[None], m[None]))
        return i.float()

    torch.func.vmap(per_record)(ids, mask)
    assert seen == [None]  # traced values cannot be read: the caller runs the teacher
    empty = cache.lookup(torch.zeros((0, 1), dtype=torch.long), torch.zeros((0, 1), dtype=torch.long))
    assert empty is not None and empty.shape == (0, 1, VOCAB)


def distil(teacher, rows, *, cache=None, method=None, epochs=2):
    with ForwardCounter(teacher) as counter:
        result = distill(tiny_model(7), teacher, rows, DistillConfig(epochs=epochs, batch_size=8, lr=1e-3), seed=0,
                         pad_id=0, device=CPU, method=method, record_ids=[f"r{i}" for i in range(len(rows))],
                         teacher_cache=cache)
    return result, counter.calls


@pytest.fixture(scope="module")
def plain(teacher, rows, cache):
    return distil(teacher, rows[:QUICK], cache=cache)[0]


@pytest.mark.parametrize(("name", "strength"), [("output_noise", 0.5), ("temperature", 0.5), ("topk_targets", 0.5)])
def test_a_method_that_transforms_the_teachers_logits_trains_the_same_student_from_the_cache(
    name, strength, teacher, rows, cache, plain
):
    mask = np.zeros(VOCAB, dtype=bool)
    mask[::3] = True
    vulnerability = Vulnerability(attack="loss", member_ids=("r0",), scores=np.array([1.0]), n_vulnerable=1,
                                  token_mask=mask, tokens_rule="all")

    def method():
        context = MethodContext(vulnerability=vulnerability, vocab_size=VOCAB, seed=0, n_records=len(rows))
        return build_method(name, strength, {}, context)

    recomputed, calls = distil(teacher, rows[:QUICK], method=method())
    cached, cached_calls = distil(teacher, rows[:QUICK], method=method(), cache=cache)
    assert calls > 0 and cached_calls == 0
    assert weight_diff(recomputed.student, cached.student) < STUDENT_TOLERANCE
    assert weight_diff(plain.student, cached.student) > 100 * STUDENT_TOLERANCE  # the method did act


@pytest.mark.parametrize("path", ["vectorised", "loop"])
def test_dp_sgd_reads_the_cache_on_both_per_sample_paths(path, teacher, rows, cache, monkeypatch):
    from mia_kd.privacy.dp_sgd import DpSgd

    if path == "loop":
        monkeypatch.setattr(DpSgd, "_choose_path", staticmethod(lambda *args: "loop"))

    def run(with_cache):
        method = build_method("dp_sgd", 1.0, {}, MethodContext(vulnerability=None, vocab_size=VOCAB, seed=0,
                                                               n_records=QUICK))
        result, calls = distil(teacher, rows[:QUICK], method=method, cache=cache if with_cache else None, epochs=1)
        return result, calls, method.report()

    recomputed, calls, report = run(False)
    cached, cached_calls, cached_report = run(True)
    assert report["per_sample_gradients"] == cached_report["per_sample_gradients"] == path
    assert calls > 0 and cached_calls == 0
    assert cached_report == report  # same Poisson batches, noise and accountant: the same ε
    assert weight_diff(recomputed.student, cached.student) < STUDENT_TOLERANCE


def test_auto_caches_within_the_budget_and_recomputes_over_it(teacher, rows):
    size_mb = logits_bytes(rows, VOCAB) / 2**20
    assert should_cache("auto", rows, teacher, size_mb)
    assert not should_cache("auto", rows, teacher, size_mb * 0.99)
    assert should_cache("cache", rows, teacher, size_mb * 0.01)  # asked for: cached whatever its size
    assert not should_cache("recompute", rows, teacher, 1e9)


def test_the_config_names_the_modes_and_defaults_to_auto():
    from mia_kd.errors import UserError

    assert DistillConfig().teacher_logits == "auto" and DistillConfig().teacher_logits_max_mb == 2048
    with pytest.raises(UserError, match="teacher_logits"):
        validate_config({"distill": {"teacher_logits": "top_k"}})
    # Where the logits come from changes no result beyond float rounding: the config hash (and so the hash of
    # every stored trial from before the setting existed) does not depend on it.
    base = validate_config({})
    other = validate_config({"distill": {"teacher_logits": "recompute", "teacher_logits_max_mb": 1}})
    assert base.config_hash() == other.config_hash() != validate_config({"distill": {"epochs": 3}}).config_hash()


# ---- the trial: prepare builds the cache once, run_student hands it to distill unless told to recompute


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, ci_raw_factory):
    """The CI config's data, teacher architecture, student and distillation; its teacher trained briefly and
    one attack only (no reference model): neither changes what the cache is, and preparing stays quick."""
    from mia_kd.trial import prepare

    raw = ci_raw_factory(tmp_path_factory.mktemp("cache"))
    raw["teacher"]["train"]["epochs"] = 2
    raw["attacks"] = ["loss"]
    config = validate_config(raw)
    return config, prepare(config)


@pytest.mark.slow
def test_prepare_caches_the_teacher_on_the_transfer_set_and_trials_read_it(prepared, monkeypatch):
    import mia_kd.trial as trial

    config, p = prepared
    assert p.teacher_logits is not None and "teacher_logits" in p.stage_times
    assert p.teacher_logits.unusable(p.member_rows, context=256, amp_dtype=None) is None

    class Stop(Exception):
        pass

    handed = {}

    def fake_distill(*args, teacher_cache=None, **kwargs):
        handed["cache"] = teacher_cache
        raise Stop

    monkeypatch.setattr(trial, "distill", fake_distill)
    for mode, expected in (("auto", p.teacher_logits), ("cache", p.teacher_logits), ("recompute", None)):
        with pytest.raises(Stop):
            trial.run_student(p, config.model_copy(update={"distill": config.distill.model_copy(
                update={"teacher_logits": mode})}))
        assert handed.pop("cache") is expected, mode


@pytest.mark.slow
def test_a_ci_sized_distillation_trains_the_same_student_from_the_cache(prepared):
    from mia_kd.models.build import build_model

    config, p = prepared
    teacher = p.teacher.model

    def run(cache):
        with ForwardCounter(teacher) as counter:
            result = distill(build_model(config.student, p.tokenizer, seed=1, role="student"), teacher, p.member_rows,
                             config.distill, seed=1, pad_id=p.tokenizer.pad_token_id, device=CPU, teacher_cache=cache)
        return result, counter.calls

    recomputed, calls = run(None)
    cached, cached_calls = run(p.teacher_logits)
    assert calls > 0 and cached_calls == 0
    diff = weight_diff(recomputed.student, cached.student)
    print(f"CI-sized distillation, max |Δ weight| cache vs recompute: {diff:.3g}")
    # Not bit for bit (padded attention rounds differently; module docstring). Adam's normalised steps carry
    # the 1e-7 rounding of the targets into the weights: after the CI run's 52 steps they differ by about 1%
    # of one step (2e-5 at lr 3e-3), where a wrong target would move them by whole steps.
    assert diff < 0.05 * config.distill.lr
    assert recomputed.report.final_loss == pytest.approx(cached.report.final_loss, rel=1e-5)
