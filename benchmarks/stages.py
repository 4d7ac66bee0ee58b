"""Scoring and distillation throughput against their baselines and limits, side by side in one run.

Same model, same records, same batch size, on the quickstart-sized setup (a 2-layer GPT-2 teacher and a
1-layer student over the quickstart tokenizer, records from the python-docs corpus):

- scoring, sequences/s: mia_kd's batched scorer (moments on, as the min_k_pp attack needs) vs a
  one-record-at-a-time loop (how the study's code scored) vs a bare batched forward pass of the same
  model that keeps only the observed-token log-probs (the limit). Targets: >= 10x the loop, >= 0.8x bare.
- distillation, tokens/s: mia_kd's trainer (``distill``) vs a bare PyTorch KD loop (same loss, optimiser,
  batches). Target: >= 0.9x. Also the share of a distillation step spent in the teacher's forward pass.

Prints Markdown tables and writes JSON.   python benchmarks/stages.py [--records 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from mia_kd.config import DistillConfig, ModelConfig, TokenizerConfig
from mia_kd.data import load_texts
from mia_kd.distill.loss import distill_loss
from mia_kd.distill.trainer import distill
from mia_kd.models.batching import bucketed_batches, pad
from mia_kd.models.build import build_model
from mia_kd.models.scoring import score
from mia_kd.models.tokenizer import build_tokenizer, encode


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed run on a shared machine


@torch.inference_mode()
def _bare_forward(model, rows, pad_id, batch_size):
    """The limit: the forward passes alone, on the same length-bucketed batches the scorer uses."""
    for batch in bucketed_batches([len(r) for r in rows], batch_size):
        ids, mask = pad([rows[i] for i in batch], pad_id=pad_id)
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), dim=-1)
        logp.gather(-1, ids[:, 1:, None])


@torch.inference_mode()
def _one_at_a_time(model, rows):
    for row in rows:
        ids = torch.tensor([row])
        logp = torch.log_softmax(model(input_ids=ids).logits[:, :-1].float(), dim=-1)
        logp.gather(-1, ids[:, 1:, None]).squeeze(-1).numpy()


def _bare_kd(student, teacher, rows, config: DistillConfig, pad_id: int, seed: int) -> int:
    """A plain KD loop: AdamW, the same length-bucketed batches, the same loss; returns tokens seen."""
    torch.manual_seed(seed)
    student.train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr)
    rng, tokens = np.random.default_rng(seed), 0
    for _ in range(config.epochs):
        for batch in bucketed_batches([len(r) for r in rows], config.batch_size, rng):
            ids, mask = pad([rows[i] for i in batch], pad_id=pad_id)
            with torch.no_grad():
                teacher_logits = teacher(input_ids=ids, attention_mask=mask).logits
            loss = distill_loss(student(input_ids=ids, attention_mask=mask).logits, teacher_logits, ids, mask,
                                temperature=config.temperature, alpha=config.alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), config.grad_clip)
            optimizer.step()
            tokens += int(mask.sum())
    return tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--loop-records", type=int, default=200, help="records for the slow one-at-a-time loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="benchmarks/results/stages.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    texts = load_texts("python-docs")[1]
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    tokenizer = build_tokenizer(TokenizerConfig(vocab_size=2048, max_length=128), texts[:2000])
    rows, _ = encode(tokenizer, texts[2000 : 2000 + args.records], max_length=128)
    pad_id = tokenizer.pad_token_id
    teacher = build_model(ModelConfig(config={"n_layer": 2, "n_embd": 128, "n_head": 4}), tokenizer, seed=0, role="teacher").eval()
    student_cfg = ModelConfig(config={"n_layer": 1, "n_embd": 128, "n_head": 4})
    cpu = torch.device("cpu")

    # ---- scoring
    ours = _best(lambda: score(teacher, rows, pad_id=pad_id, batch_size=args.batch_size, device=cpu, moments=True), args.repeats)
    plain = _best(lambda: score(teacher, rows, pad_id=pad_id, batch_size=args.batch_size, device=cpu), args.repeats)
    bare = _best(lambda: _bare_forward(teacher, rows, pad_id, args.batch_size), args.repeats)
    loop_rows = rows[: args.loop_records]
    loop = _best(lambda: _one_at_a_time(teacher, loop_rows), args.repeats) * len(rows) / len(loop_rows)
    scoring = {
        "records": len(rows), "mia_kd_seq_s": len(rows) / ours, "mia_kd_no_moments_seq_s": len(rows) / plain,
        "bare_seq_s": len(rows) / bare, "loop_seq_s": len(rows) / loop,
    }

    # ---- distillation
    config = DistillConfig(epochs=2, batch_size=32, lr=3e-3)

    def ours_kd():
        student = build_model(student_cfg, tokenizer, seed=1, role="student")
        return distill(student, teacher, rows, config, seed=1, pad_id=pad_id, device=cpu).report.tokens

    def bare_kd():
        student = build_model(student_cfg, tokenizer, seed=1, role="student")
        return _bare_kd(student, teacher, rows, config, pad_id, seed=1)

    tokens = ours_kd()
    t_ours = _best(ours_kd, args.repeats)
    t_bare = _best(bare_kd, args.repeats)
    t_teacher = _best(lambda: _bare_forward(teacher, rows, pad_id, config.batch_size), args.repeats) * config.epochs
    distillation = {
        "tokens": tokens, "mia_kd_tok_s": tokens / t_ours, "bare_tok_s": tokens / t_bare,
        "teacher_forward_share": t_teacher / t_bare,
    }

    s, d = scoring, distillation
    print(f"Stage throughput ({date.today()}, {args.threads} threads, best of {args.repeats}; "
          f"`python benchmarks/stages.py`)\n")
    print("| scoring (2-layer teacher, vocab 2048) | sequences/s | ratio | target |\n|---|---:|---:|---|")
    print(f"| one record at a time (the study's way) | {s['loop_seq_s']:.0f} | 1.0x loop | |")
    print(f"| bare batched forward (the limit) | {s['bare_seq_s']:.0f} | {s['bare_seq_s'] / s['loop_seq_s']:.1f}x loop | |")
    plain = s["mia_kd_no_moments_seq_s"]
    ok = plain >= 10 * s["loop_seq_s"] and plain >= 0.8 * s["bare_seq_s"]
    print(f"| mia_kd scorer (observed log-probs: the same work) | {plain:.0f} | {plain / s['loop_seq_s']:.1f}x loop, "
          f"{plain / s['bare_seq_s']:.2f}x bare | >= 10x loop, >= 0.8x bare: {'met' if ok else 'NOT met'} |")
    print(f"| mia_kd scorer with moments (for min_k_pp: more work) | {s['mia_kd_seq_s']:.0f} | "
          f"{s['mia_kd_seq_s'] / s['loop_seq_s']:.1f}x loop, {s['mia_kd_seq_s'] / s['bare_seq_s']:.2f}x bare | |")
    ratio = d["mia_kd_tok_s"] / d["bare_tok_s"]
    print("\n| distillation (1-layer student) | tokens/s | ratio | target |\n|---|---:|---:|---|")
    print(f"| bare PyTorch KD loop | {d['bare_tok_s']:.0f} | 1.00x | |")
    print(f"| mia_kd distill | {d['mia_kd_tok_s']:.0f} | {ratio:.2f}x | >= 0.9x: {'met' if ratio >= 0.9 else 'NOT met'} |")
    print(f"\nThe teacher's forward passes are {100 * d['teacher_forward_share']:.0f}% of a bare distillation run "
          "(the teacher's logits are computed each step, not cached).")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"date": str(date.today()), "threads": args.threads, "scoring": s,
                                          "distillation": d}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
