#!/usr/bin/env bash
# The compute-matched experiment (issue 15) on one NVIDIA GPU in under 10 minutes of wall time:
# corpus from this machine's Python -> HRM-27M and GPT-2-small pretrained at equal measured FLOPs ->
# MBPP samples of both -> stats -> gate. Only small files are copied to OUT (manifests, metrics.jsonl,
# samples.jsonl, results.jsonl, stats.json; no weights, no tokens), so the evaluation, statistics and
# dashboard can be redone on a CPU machine from OUT, e.g.
#   python -m core eval --samples OUT/candidate/samples.jsonl --run-dir ... (or a pipeline with samples = FILE)
#
#   scripts/compute_matched.sh [--cpu-tiny] [OUT]      (default OUT: results/compute-matched)
#
# --cpu-tiny runs the same steps at a tiny CPU scale (configs/compute-matched-cpu-tiny.toml: 300 files,
# a few steps, 3 tasks) to prove the recipe end to end where no GPU is lent. PYTHON picks the interpreter
# (default .venv/bin/python, else python); LIMIT_S the wall-clock limit (default 600); CONFIG another TOML.
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/compute-matched-gpu.toml
gpu=1
if [[ "${1:-}" == "--cpu-tiny" ]]; then
  config=configs/compute-matched-cpu-tiny.toml
  gpu=0
  shift
fi
config=${CONFIG:-$config}
out=${1:-results/compute-matched}
py=${PYTHON:-.venv/bin/python}
[[ -x "$py" ]] || py=python
if [[ $gpu == 1 ]] && ! "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "no CUDA device visible to $py; use --cpu-tiny on a CPU machine" >&2
  exit 2
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
timeout "${LIMIT_S:-600}" "$py" -m core experiment --config "$config" --no-progress
exp=$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["experiment"]["out_dir"])' "$config")
corpus=$("$py" -c 'import sys, tomllib; c = tomllib.load(open(sys.argv[1], "rb")); print(c.get("corpus", {}).get("out") or c["experiment"]["out_dir"] + "/corpus")' "$config")
mkdir -p "$out"
cp "$corpus/manifest.json" "$out/corpus-manifest.json"
for f in experiment.json pipeline.json stats.json; do
  [[ -f "$exp/$f" ]] && cp "$exp/$f" "$out/$f"
done
for run in train-candidate train-baseline candidate baseline; do
  mkdir -p "$out/$run"
  for f in manifest.json metrics.jsonl run_summary.json samples.jsonl results.jsonl; do
    [[ -f "$exp/$run/$f" ]] && cp "$exp/$run/$f" "$out/$run/$f"
  done
done
echo "compute-matched experiment ($config) in $(( $(date +%s) - start )) s; small outputs in $out:"
du -sh "$out"
"$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print("verdict", d.get("verdict")); [print(" ", s, m["model"], "val loss", m["final_val_loss"], "tokens/s", m["tokens_per_s"], "MFU", m["mfu"], "FLOPs", m["flops"]) for s, m in d["models"].items()]' "$out/experiment.json"
