#!/usr/bin/env bash
# The GPU check of issue 14, prepared for a machine with a CUDA GPU (not run where none is lent):
# eval of hrm:27m and hf-arch:gpt2 on 50 MBPP test tasks with --device cuda and batching, the same on
# the CPU at batch 1 for the samples/s comparison, then bench with its GPU column.
# Usage: scripts/gpu/check.sh [OUT_DIR]   (needs ../shared/data/mbpp/mbpp.jsonl; HF_HUB_OFFLINE=1 is fine)
set -euo pipefail
OUT=${1:-cache/gpu-check}
PY=${PY:-.venv/bin/python}
MBPP=${MBPP:-../shared/data/mbpp/mbpp.jsonl}
mkdir -p "$OUT"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
for model in hrm:27m hf-arch:gpt2; do
  name=${model//[:\/]/-}
  "$PY" -m core eval --model "$model" --data-path "$MBPP" --limit 50 --device cuda --batch 16 \
    --run-dir "$OUT/$name-cuda" --no-progress --wandb off
  "$PY" -m core eval --model "$model" --data-path "$MBPP" --limit 10 --device cpu --batch 1 \
    --run-dir "$OUT/$name-cpu" --no-progress --wandb off
done
"$PY" -m core bench --model hrm:27m --model hf-arch:gpt2 --data-path "$MBPP" --device cuda --threads 4 \
  --skip-train --out "$OUT/bench.json" --wandb off
"$PY" - "$OUT" <<'PYEOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for run in sorted(p for p in out.iterdir() if p.is_dir()):
    t = json.loads((run / "run_summary.json").read_text())["timings"]
    print(f"{run.name:24s} {t.get('generation_samples_per_s')} samples/s (batch {t.get('batch')})")
PYEOF
