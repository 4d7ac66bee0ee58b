"""Memory: peak RSS of a trial at quickstart size, and how it grows with the number of records scored.

Each measurement runs in a fresh subprocess (peak RSS = ``ru_maxrss`` of that process). The scorer keeps
per-token log-probs (and, for min_k_pp, per-token mean and std) of each record, never full-vocabulary
logits beyond one batch: memory should grow with tokens scored, not with tokens x vocabulary. The table
also gives the ``records`` table's bytes per record against what full-vocabulary logits would take.
Prints Markdown tables, writes JSON.   python benchmarks/memory.py [--sizes 500 1000 2000 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

SCORE = """
import resource, sys, time, numpy as np, torch
from mia_kd.config import ModelConfig, TokenizerConfig
from mia_kd.data import load_texts
from mia_kd.models.build import build_model
from mia_kd.models.scoring import score
from mia_kd.models.tokenizer import build_tokenizer, encode
n = int(sys.argv[1])
texts = load_texts("python-docs")[1]
texts = [texts[i % len(texts)] + (" again" * (i // len(texts))) for i in range(n + 2000)]
tok = build_tokenizer(TokenizerConfig(vocab_size=2048, max_length=128), texts[:2000])
rows, _ = encode(tok, texts[2000:], max_length=128)
model = build_model(ModelConfig(config={"n_layer": 2, "n_embd": 128, "n_head": 4}), tok, seed=0, role="teacher")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stats = score(model, rows, pad_id=tok.pad_token_id, batch_size=64, device=torch.device("cpu"), moments=True)
tokens = sum(len(lp) for lp in stats.logprobs)
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, tokens, len(tok))
"""

TRIAL = """
import resource, sys
from mia_kd.config import load_config
from mia_kd.trial import run_trial
config = load_config(sys.argv[1], [f"runtime.cache_dir={sys.argv[2]}/cache", "runtime.progress=false"])
result = run_trial(config)
result.write(sys.argv[2] + "/out")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, result.records.nbytes, result.records.num_rows)
"""


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return out.stdout.split()


# glibc raises its mmap threshold after each large free, so later batch-sized tensors land in the heap and
# fragment it; a fixed threshold gives each its own mapping (returned when freed), at a cost in speed.
FIXED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    parser.add_argument("--config", default="sweeps/quickstart.yaml")
    parser.add_argument("--out", default="benchmarks/results/memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mia_kd_mem_") as tmp:
        peak_kib, records_bytes, n_rows = (int(v) for v in _run(TRIAL, args.config, tmp))
    rows = []
    for n in args.sizes:
        base, default_peak, tokens, vocab = (int(v) for v in _run(SCORE, str(n)))
        _, peak, _, _ = (int(v) for v in _run(SCORE, str(n), env=FIXED))
        rows.append({"records": n, "tokens": tokens, "before_mib": base / 1024, "peak_mib": peak / 1024,
                     "default_peak_mib": default_peak / 1024,
                     "scoring_mib": (peak - base) / 1024, "default_malloc_mib": (default_peak - base) / 1024,
                     "full_logits_mib": tokens * vocab * 4 / 2**20})
    print(f"Memory ({date.today()}, `python benchmarks/memory.py`)\n")
    print(f"One quickstart trial (`{args.config}`): peak RSS **{peak_kib / 1024:.0f} MiB**; its `records` rows: "
          f"{n_rows} rows, {records_bytes / 2**20:.1f} MiB in memory ({records_bytes / n_rows:.0f} bytes a row)\n")
    print("| records scored (moments on) | tokens | RSS before (MiB) | peak RSS (MiB) | added by scoring (MiB) | "
          "added with MALLOC_MMAP_THRESHOLD_=1MiB (MiB) | full-vocabulary logits would be (MiB) |\n"
          "|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['records']:,} | {r['tokens']:,} | {r['before_mib']:.0f} | {r['default_peak_mib']:.0f} | "
              f"{r['default_malloc_mib']:.0f} | {r['scoring_mib']:.0f} | {r['full_logits_mib']:,.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"date": str(date.today()), "trial_peak_mib": peak_kib / 1024,
                                          "records_table_bytes": records_bytes, "records_rows": n_rows,
                                          "scoring": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
