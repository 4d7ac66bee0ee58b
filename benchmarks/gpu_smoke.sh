#!/usr/bin/env bash
# GPU smoke test: a tiny sweep (CI-sized models) with fractional GPUs, so four trials share one GPU.
# Prints what it measured: the device, trials/hour, per-trial seconds, peak GPU memory, and each trial's
# device and precision as the trials table recorded them.
#   bash benchmarks/gpu_smoke.sh [GPU_FRACTION] [TRIALS_PER_METHOD]
set -euo pipefail
cd "$(dirname "$0")/.."
fraction=${1:-0.25}
trials=${2:-4}
py=${PYTHON:-.venv/bin/python}
mia=${MIA_KD:-.venv/bin/mia-kd}
work=$(mktemp -d /tmp/mia_kd_gpu_XXXX)
trap 'rm -rf "$work"' EXIT
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 RAY_TMPDIR="$work/ray"
mkdir -p "$RAY_TMPDIR"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no NVIDIA GPU visible"; exit 1; }
cat > "$work/sweep.yaml" <<YAML
sweep_id: gpu_smoke
data: {members: 200, nonmembers: 200, utility: 100, public: 400, blind_check_bootstrap: 200}
tokenizer: {vocab_size: 1024, max_length: 80}
teacher: {config: {n_layer: 2, n_embd: 64, n_head: 4, n_positions: 256}, train: {epochs: 20, batch_size: 16, lr: 0.005}}
student: {config: {n_layer: 1, n_embd: 64, n_head: 4, n_positions: 256}}
distill: {epochs: 4, batch_size: 16, lr: 0.003}
reference: {epochs: 2, batch_size: 32, lr: 0.003}
metrics: {n_bootstrap: 200}
runtime: {device: auto, precision: auto, cache_dir: $work/cache}
sweep:
  methods: {none: {}, temperature: {}, red_list: {}}
  trials_per_method: $trials
  max_concurrent: 8
  resources: {cpu: 1, gpu: $fraction}
  save_students: none
  out: $work/out
YAML

nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$work/mem.log" &
smi=$!
start=$(date +%s.%N)
"$mia" sweep "$work/sweep.yaml" -q
end=$(date +%s.%N)
kill "$smi" 2>/dev/null || true

"$py" - "$work" "$start" "$end" "$fraction" <<'PY'
import sys
from pathlib import Path
import pandas as pd
work, start, end, fraction = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
trials = pd.read_parquet(work / "out" / "trials")
done = trials[trials["status"] == "completed"]
mem = [int(x) for x in (work / "mem.log").read_text().split() if x.strip().isdigit()]
wall = end - start
print(f"\n| measure | value |\n|---|---|")
print(f"| GPU fraction per trial | {fraction} ({int(1 / fraction)} trials per GPU) |")
print(f"| trials completed / failed | {len(done)} / {len(trials) - len(done)} |")
print(f"| sweep wall-clock (s), prepare included | {wall:.1f} |")
print(f"| trials per hour (this sweep) | {3600 * len(done) / wall:.0f} |")
print(f"| per-trial seconds (median, inside the trial) | {done['wall_time_s'].median():.1f} |")
print(f"| peak GPU memory used (MiB, whole GPU) | {max(mem) if mem else 'n/a'} |")
print(f"| trial devices | {', '.join(sorted(done['device'].astype(str).unique()))} |")
PY
