"""Stage-2 training step time under different settings, on synthetic frames (no disk, no backgrounds to compute).

    python benchmarks/train_speed.py [--steps 15] [--preset cpu] [--threads 2]

Rows: the preset's defaults, then one lever changed at a time: importance sampling instead of exhaustive
evaluation of all cells, float32 instead of bf16 autocast, the perceptual term on the whole frame instead of the
hole, channels_last memory format, ResNet-18 instead of the half-width detector, torch.compile of D and S
(first steps excluded: they compile), one thread instead of ``--threads``. Prints a markdown table (seconds per
step, steps per minute, ratio to the defaults) and the machine.
"""

from __future__ import annotations

import argparse
import time

import torch
from machine import machine_line

from inpaintseg.config import resolve
from inpaintseg.engine.common import step_generator, use_bf16
from inpaintseg.engine.data import FrameBank
from inpaintseg.engine.train import make_optimizer
from inpaintseg.models.model import build_model
from inpaintseg.models.perceptual import PerceptualFeatures
from inpaintseg.objective import RunningStats, stage2_losses


def time_steps(overrides: list[str], steps: int, preset: str, channels_last: bool = False,
               compile_model: bool = False) -> float:
    """Mean seconds per stage-2 step (after 3 warm-up steps) with a temporal-style background."""
    cfg = resolve(preset, overrides=["data.background=temporal", *overrides])
    w, h = cfg.data.size
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(64, 3, h, w, generator=g) * 255).to(torch.uint8)
    bank = FrameBank(frames, torch.zeros(64, dtype=torch.long), ["s"], [str(i) for i in range(64)],
                     backgrounds=frames.flip(-1).contiguous())
    model = build_model(cfg)
    phi = PerceptualFeatures("none")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        phi = phi.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    if compile_model:
        model.detector = torch.compile(model.detector)
        model.segmenter = torch.compile(model.segmenter)
    stats = RunningStats()
    bf16 = use_bf16(cfg.train.precision, torch.device("cpu"))
    times = []
    for step in range(3 + steps):
        t0 = time.perf_counter()
        gen = step_generator(0, step, 2)
        idx = torch.randint(len(bank), (cfg.train.batch,), generator=gen)
        images, bgs = bank.batch(idx)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        total, _, _ = stage2_losses(model, None, phi, images, bgs, cfg, stats, gen, bf16)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sum(times[3:]) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    # (name, overrides, channels_last, torch.compile, threads)
    rows = [
        ("defaults (exhaustive L_bg, bf16 where native)", [], False, False, a.threads),
        ("importance sampling, 1 sample", ["sampling.method=importance"], False, False, a.threads),
        ("float32", ["train.precision=fp32"], False, False, a.threads),
        ("L_f on the whole frame (the paper) instead of the hole", ["loss.perceptual_region=frame"], False, False,
         a.threads),
        ("channels_last", [], True, False, a.threads),
        ("ResNet-18 detector (the paper's) instead of the half-width one", ["detector.backbone=resnet18"], False,
         False, a.threads),
        ("torch.compile (D and S)", [], False, True, a.threads),
        ("1 thread", [], False, False, 1),
    ]
    print(f"{machine_line(a.threads)}, preset {a.preset}")
    print("| setting | s/step | steps/min | ratio to defaults |\n| --- | --- | --- | --- |")
    base = None
    for name, over, cl, compiled, threads in rows:
        torch.set_num_threads(threads)
        try:
            t = time_steps(over, a.steps, a.preset, cl, compiled)
        except Exception as e:  # noqa: BLE001  e.g. torch.compile without a working C++ compiler
            print(f"| {name} | failed: {type(e).__name__}: {str(e).splitlines()[0][:100]} | | |", flush=True)
            continue
        base = base or t
        print(f"| {name} | {t:.3f} | {60 / t:.0f} | {t / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
