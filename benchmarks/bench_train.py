"""Pretraining throughput: clips/s and tokens/s of one IA-JEPA optimisation step per preset.

    python benchmarks/bench_train.py --presets tiny small --batch 8 --steps 5

Synthetic uint8 clips and random-tube masks (ratio 0.4; mask cost is in bench_masking.py); one
step = context encoder + EMA target encoder + predictor forward, backward, AdamW and EMA update.
On CUDA (bf16 autocast) it also prints the model FLOP utilisation against --peak-tflops.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ia_world.masking import MaskConfig, make_mask_fn
from ia_world.models import IAJEPA, preset
from ia_world.training import PretrainConfig, build_optimizer, forward_backward


def train_step(model, optimizer, frames, mask, use_amp, step_fn) -> None:
    """One full optimisation step (forward, backward, AdamW, EMA)."""
    forward_backward(step_fn, model, frames, mask, 1.0, use_amp)
    optimizer.step()
    model.update_target(0.998)


def bench(name: str, batch: int, steps: int, device: torch.device, compile_model: bool) -> dict:
    """Time `steps` optimisation steps of preset `name` after two warm-up steps."""
    cfg = preset(name)
    torch.manual_seed(0)
    model = IAJEPA(cfg).to(device)
    optimizer = build_optimizer(PretrainConfig(model=cfg), model)
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (batch, cfg.frames, cfg.size, cfg.size, 3),
                           generator=generator, dtype=torch.uint8)
    mask = make_mask_fn(MaskConfig(strategy="random_tube"))(frames, cfg.grid, generator)
    frames, mask = frames.to(device), mask.to(device)
    use_amp = device.type == "cuda"
    step_fn = torch.compile(model) if compile_model else model
    for _ in range(2):
        train_step(model, optimizer, frames, mask, use_amp, step_fn)
    with FlopCounterMode(display=False) as counter:
        forward_backward(model, model, frames, mask, 1.0, use_amp)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, frames, mask, use_amp, step_fn)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    return {"preset": name, "device": device.type, "batch": batch, "s_per_step": seconds,
            "clips_per_s": batch / seconds, "tokens_per_s": batch * cfg.grid.num_tokens / seconds,
            "tflops_per_s": counter.get_total_flops() / seconds / 1e12}


def main() -> None:
    """Print one markdown row per (device, preset)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--cuda-batch", type=int, default=64)
    parser.add_argument("--compile", action="store_true", help="torch.compile on CUDA")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="dense bf16 peak of the GPU (H100/H200 SXM: 989)")
    args = parser.parse_args()
    runs = [(torch.device("cpu"), args.batch, False)]
    if torch.cuda.is_available():
        runs.append((torch.device("cuda"), args.cuda_batch, args.compile))
    print("| device | preset | batch | s/step | clips/s | tokens/s | TFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|")
    for device, batch, compile_model in runs:
        for name in args.presets:
            row = bench(name, batch, args.steps, device, compile_model)
            mfu = (f"{100 * row['tflops_per_s'] / args.peak_tflops:.1f}%"
                   if device.type == "cuda" else "-")
            label = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
            print(f"| {label} | {name} | {batch} | {row['s_per_step']:.3f} | "
                  f"{row['clips_per_s']:.1f} | {row['tokens_per_s']:.0f} | "
                  f"{row['tflops_per_s']:.3f} | {mfu} |", flush=True)


if __name__ == "__main__":
    main()
