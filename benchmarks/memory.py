"""Memory: how much peak RSS scoring adds at 500 and at 4,000 records, the scorer against the one before it.

Each measurement runs in a fresh subprocess (peak RSS is per process: ``ru_maxrss`` after scoring minus
before), on the quickstart teacher's shape (2 layers, 128 wide, 2,048-token vocabulary, 128-token
records, batches of 64, moments on), built once and loaded by every measurement. ``old`` is the scorer
before 2026-12-01, copied below: it kept each batch's results (views of that batch's tensors) until the
end, so they sat between one batch's large temporaries and the next and fragmented glibc's heap, and
peak RSS grew with the number of records scored. ``new`` is :func:`mia_kd.models.scoring.score`. The two
alternate, in ``--repeats`` processes each; a process scores ``--runs`` times, the first for its peak RSS
(the table: the median over processes), all for the time (the fastest: other jobs on a shared machine only
ever slow a run down).
Targets: (added at the largest size) / (added at the smallest) <= 2, and new / old time <= 1.10.
Optionally (``--trial``) one quickstart trial's peak RSS and its ``records`` rows' size, as before.
Prints Markdown, writes JSON and a .md copy.   python benchmarks/memory.py [--sizes 500 4000] [--trial]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

PREPARE = """
import json, sys
from mia_kd.config import ModelConfig, TokenizerConfig
from mia_kd.data import load_texts
from mia_kd.models.build import build_model
from mia_kd.models.tokenizer import build_tokenizer, encode
n, out = int(sys.argv[1]), sys.argv[2]
texts = load_texts("python-docs")[1]
texts = [texts[i % len(texts)] + (" again" * (i // len(texts))) for i in range(n + 2000)]
tok = build_tokenizer(TokenizerConfig(vocab_size=2048, max_length=128), texts[:2000])
rows, _ = encode(tok, texts[2000:], max_length=128)
model = build_model(ModelConfig(config={"n_layer": 2, "n_embd": 128, "n_head": 4}), tok, seed=0, role="teacher")
model.save_pretrained(out + "/model")
(__import__("pathlib").Path(out) / "rows.json").write_text(json.dumps({"pad_id": tok.pad_token_id, "rows": rows}))
"""

SCORE = """
import json, resource, sys, time, numpy as np, torch
from transformers import AutoModelForCausalLM
from mia_kd.models.batching import bucketed_batches, pad
from mia_kd.models.scoring import score

@torch.inference_mode()
def old_score(model, rows, *, pad_id, batch_size, device, moments):
    # The scorer before 2026-12-01, less its sliding window (no row here is longer than the context).
    outputs = [()] * len(rows)
    for batch in bucketed_batches([len(row) for row in rows], batch_size):
        ids, mask = pad([rows[k] for k in batch], pad_id=pad_id)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1, :].float()
        logp = torch.log_softmax(logits, dim=-1)
        observed = logp.gather(-1, ids[:, 1:, None]).squeeze(-1).cpu().numpy()
        if moments:
            p = logp.exp()
            mu = (p * logp).sum(-1)
            sigma = (p * (logp - mu[..., None]).square()).sum(-1).sqrt()
            mu, sigma = mu.cpu().numpy(), sigma.cpu().numpy()
        for j, k in enumerate(batch):
            span = slice(0, len(rows[k]) - 1)
            outputs[k] = (observed[j, span], *((mu[j, span], sigma[j, span]) if moments else ()))
    return [[np.concatenate([column]).astype(np.float32) for column in row] for row in outputs]

folder, n, which, threads, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
data = json.loads(open(folder + "/rows.json").read())
rows = data["rows"][:n]
model = AutoModelForCausalLM.from_pretrained(folder + "/model").eval()
kw = dict(pad_id=data["pad_id"], batch_size=64, device=torch.device("cpu"), moments=True)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
walls, cpus = [], []
for run in range(runs):  # the peak is the first run's; later runs only time it again
    wall, cpu = time.perf_counter(), time.process_time()
    if which == "old":
        columns = list(zip(*old_score(model, rows, **kw)))
    else:
        stats = score(model, rows, **kw)
        columns = [stats.logprobs, stats.mean, stats.std]
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
    if run == 0:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sums = [float(sum(np.sum(a, dtype=np.float64) for a in column)) for column in columns]
print(json.dumps({"base_kib": base, "peak_kib": peak, "wall_s": walls, "cpu_s": cpus, "sums": sums,
                  "tokens": sum(len(a) for a in columns[0]), "vocab": model.config.vocab_size}))
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

GROWTH_TARGET, TIME_TARGET = 2.0, 1.10


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env).stdout


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 4000])
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per scorer and size")
    parser.add_argument("--runs", type=int, default=2,
                        help="scoring runs per process: RSS is the first's, time the fastest of all")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while scoring (1: on a shared machine, waiting OpenMP threads make "
                             "wall time vary several-fold)")
    parser.add_argument("--trial", action="store_true", help="also one quickstart trial's peak RSS (slow)")
    parser.add_argument("--config", default="sweeps/quickstart.yaml")
    parser.add_argument("--out", default="benchmarks/results/memory.json")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    result: dict = {"date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                    "threads": args.threads, "repeats": args.repeats, "runs": args.runs}
    lines = [f"Memory ({date.today()}, `python benchmarks/memory.py`; {result['machine']}, torch threads "
             f"{args.threads}; each scorer and size in {args.repeats} fresh processes of {args.runs} runs: RSS "
             f"added by the first run (median), time of the fastest)", ""]
    with tempfile.TemporaryDirectory(prefix="mia_kd_mem_") as tmp:
        if args.trial:
            peak_kib, records_bytes, n_rows = (int(v) for v in _run(TRIAL, args.config, tmp).split())
            result.update(trial_peak_mib=peak_kib / 1024, records_table_bytes=records_bytes, records_rows=n_rows)
            lines += [f"One quickstart trial (`{args.config}`): peak RSS **{peak_kib / 1024:.0f} MiB**; its "
                      f"`records` rows: {n_rows} rows, {records_bytes / 2**20:.1f} MiB in memory "
                      f"({records_bytes / n_rows:.0f} bytes a row)", ""]
        _run(PREPARE, str(sizes[-1]), tmp)
        runs: dict[tuple[int, str], list[dict]] = {(n, w): [] for n in sizes for w in ("old", "new")}
        for _ in range(args.repeats):
            for n in sizes:
                for which in ("old", "new"):
                    runs[n, which].append(json.loads(_run(SCORE, tmp, str(n), which, str(args.threads), str(args.runs))))
    rows = []
    for n in sizes:
        row = {"records": n, "tokens": runs[n, "new"][0]["tokens"],
               "full_logits_mib": runs[n, "new"][0]["tokens"] * runs[n, "new"][0]["vocab"] * 4 / 2**20}
        for which in ("old", "new"):
            added = [(r["peak_kib"] - r["base_kib"]) / 1024 for r in runs[n, which]]
            row.update({f"{which}_added_mib": statistics.median(added), f"{which}_added_mib_runs": added,
                        f"{which}_wall_s": min(min(r["wall_s"]) for r in runs[n, which]),
                        f"{which}_cpu_s": min(min(r["cpu_s"]) for r in runs[n, which]),
                        f"{which}_first_wall_s": min(r["wall_s"][0] for r in runs[n, which]),
                        f"{which}_before_mib": statistics.median(r["base_kib"] / 1024 for r in runs[n, which])})
        old_sums, new_sums = runs[n, "old"][0]["sums"], runs[n, "new"][0]["sums"]
        row["max_rel_diff_of_sums"] = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(old_sums, new_sums))
        rows.append(row)
    small, large = rows[0], rows[-1]
    growth = {w: large[f"{w}_added_mib"] / small[f"{w}_added_mib"] for w in ("old", "new")}
    time_ratio = sum(r["new_wall_s"] for r in rows) / sum(r["old_wall_s"] for r in rows)
    cpu_ratio = sum(r["new_cpu_s"] for r in rows) / sum(r["old_cpu_s"] for r in rows)
    result.update(scoring=rows, growth=growth, time_ratio=time_ratio, cpu_time_ratio=cpu_ratio,
                  growth_target=GROWTH_TARGET, time_target=TIME_TARGET,
                  growth_met=growth["new"] <= GROWTH_TARGET, time_met=time_ratio <= TIME_TARGET)
    lines += ["| records scored (moments on) | tokens | added by scoring, old (MiB) | added, new (MiB) | "
              "scoring, old (s) | scoring, new (s) | CPU, old (s) | CPU, new (s) | first run, old / new (s) | "
              "full-vocabulary logits (MiB) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['records']:,} | {r['tokens']:,} | {r['old_added_mib']:.0f} | {r['new_added_mib']:.0f} | "
                     f"{r['old_wall_s']:.2f} | {r['new_wall_s']:.2f} | {r['old_cpu_s']:.2f} | {r['new_cpu_s']:.2f} | "
                     f"{r['old_first_wall_s']:.2f} / {r['new_first_wall_s']:.2f} | {r['full_logits_mib']:,.0f} |")
    ratio = f"{large['records']:,} / {small['records']:,} records"
    lines += ["", f"Added RSS, {ratio}: old {growth['old']:.2f}x, new **{growth['new']:.2f}x** (target <= "
              f"{GROWTH_TARGET:g}x: {_verdict(result['growth_met'])}).",
              f"Scoring time new / old, all sizes: **{time_ratio:.2f}** wall, {cpu_ratio:.2f} CPU (target <= "
              f"{TIME_TARGET:.2f}: {_verdict(result['time_met'])}).",
              f"Same statistics: largest relative difference of their sums, new vs old: "
              f"{max(r['max_rel_diff_of_sums'] for r in rows):.1e}."]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    Path(args.out).with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
