#!/usr/bin/env bash
# One-GPU check (< 8 min): the `small` preset with bf16 autocast + torch.compile for a few
# hundred optimisation steps; prints s/step, tokens/s, TFLOP/s and MFU (bench_train.bench).
#
#   bash benchmarks/gpu_check.sh            # STEPS=300 BATCH=64 PEAK_TFLOPS=989 (H100/H200 SXM)
#
# Tried once on an H200 (2026-12-04): no figure (torch.compile stopped at split_mask's
# .item() within its 110 s). The regime's GPU throughput: benchmarks/gpu_calibrate.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
STEPS=${STEPS:-300} BATCH=${BATCH:-64} PEAK_TFLOPS=${PEAK_TFLOPS:-989} \
timeout 480 "$PYTHON" - <<'PY'
import os
import sys

import torch

sys.path.insert(0, "benchmarks")
from bench_train import bench  # noqa: E402

if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device")
steps, batch = int(os.environ["STEPS"]), int(os.environ["BATCH"])
peak = float(os.environ["PEAK_TFLOPS"])
print(f"gpu_check: {torch.cuda.get_device_name()}, torch {torch.__version__}, small preset, "
      f"bf16 + torch.compile, batch {batch}, {steps} steps", flush=True)
row = bench("small", batch, steps, torch.device("cuda"), compile_model=True)
print(f"s/step {row['s_per_step']:.4f}  clips/s {row['clips_per_s']:.1f}  "
      f"tokens/s {row['tokens_per_s']:.0f}  TFLOP/s {row['tflops_per_s']:.1f}  "
      f"MFU {100 * row['tflops_per_s'] / peak:.1f}% (peak {peak} TFLOP/s)")
PY
