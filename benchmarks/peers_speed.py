"""Inference speed against a peer, and achieved FLOP/s against the machine's measured peak.

    python benchmarks/peers_speed.py [--threads 2] [--frames 32] [--batches 1,8] [--presets cpu,paper]
                                     [--skip-maskrcnn] [--maskrcnn-detections 1,100] [--train-steps 3]
                                     [--skip-train] [--peak-reps 5]

All models have random weights (weights do not change the cost, except Mask R-CNN's detection count, below)
and run on the CPU in eval mode under ``torch.no_grad`` (inference), in one process, on the same 320x180
RGB uint8 frames (a bright square over noise).

1. Peak: the best rate of a 2048x2048 @ 2048x2048 float32 matmul and of a 3x3 float32 convolution
   (batch 8, 128 -> 128 channels, 128x128, padding 1), each timed ``--peak-reps`` times after one warm-up
   (best time). The peak is the larger of the two. On CPUs with native bf16 the same two kernels are also
   timed in bf16 (the cpu preset trains under bf16 autocast there), for a second fraction column.
2. Inference, frames/s at each ``--batches`` size (one warm-up batch, then ceil(frames / batch) timed
   batches): ours = ``Predictor(build_model(cfg), cfg, refine="none")`` of each preset
   (``train.pretrained=none``), which resizes frames to the preset's ``data.size`` itself; peer = torchvision's
   Mask R-CNN R50-FPN
   (``maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)``) with ``min_size=180, max_size=320`` so it
   runs at the frame size (its transform then does not resize; batches are padded to multiples of 32).
   Timing includes each model's own preprocessing from uint8 arrays. With random weights no class score
   passes Mask R-CNN's default 0.05 threshold, so its mask head would never run; instead the threshold is 0
   and ``box_detections_per_img`` = each value of ``--maskrcnn-detections``, so the mask head runs on that
   many boxes per frame (100 = torchvision's default cap, the worst case; 1 = one object, what our model
   returns by default). The detections per frame actually returned are printed.
3. Training: one stage-2 step (``stage2_losses`` + backward + Adam, as ``benchmarks/train_speed.py``) per
   preset at its own batch and resolution: cpu preset with a temporal-style background (its default on
   video), paper preset with its frozen U-Net inpainter (random weights; the paper's default). One warm-up
   step, then ``--train-steps`` timed steps (mean).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on one extra, untimed call (matmuls and
convolutions, forward and backward: 2 per multiply-add; resampling, normalisation, element-wise ops,
RoIAlign and NMS are not counted). Achieved FLOP/s = counted FLOPs / measured time. "fraction" = achieved /
float32 peak; "fraction (own precision)" divides bf16 work by the bf16 peak.

Prints the machine, threads, torch version and date, then markdown tables.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from machine import machine_line
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from inpaintseg.config import Config, resolve
from inpaintseg.engine.common import cpu_has_native_bf16, step_generator, use_bf16
from inpaintseg.engine.data import FrameBank
from inpaintseg.engine.train import make_optimizer
from inpaintseg.engine.train_inpainter import build_inpainter
from inpaintseg.models.model import build_model
from inpaintseg.models.perceptual import PerceptualFeatures
from inpaintseg.objective import RunningStats, stage2_losses
from inpaintseg.predict import Predictor

FRAME_W, FRAME_H = 320, 180
DEVICE = torch.device("cpu")


def make_frames(n: int, seed: int = 0, side: int = 40) -> list[np.ndarray]:
    """``n`` RGB uint8 (FRAME_H, FRAME_W, 3) frames: fixed noise with a bright square moving 3 px per frame."""
    background = np.random.default_rng(seed).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        x = (3 * i) % (FRAME_W - side)
        y = (2 * i) % (FRAME_H - side)
        frame = background.copy()
        frame[y : y + side, x : x + side] = (230, 60, 40)
        frames.append(frame)
    return frames


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of the matmuls/convolutions run by ``fn()``, forward and backward."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def best_time(fn: Callable[[], object], reps: int) -> float:
    """Best wall time in seconds of ``reps`` calls of ``fn`` after one warm-up call."""
    fn()
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def measure_peak(reps: int, dtype: torch.dtype) -> list[tuple[str, int, float]]:
    """(kernel, FLOPs, best seconds) of a 2048^3 matmul and a batch-8 128->128 3x3 conv at 128x128."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2048, 2048, generator=g).to(dtype)
    b = torch.randn(2048, 2048, generator=g).to(dtype)
    x = torch.randn(8, 128, 128, 128, generator=g).to(dtype)
    conv = nn.Conv2d(128, 128, 3, padding=1, bias=False).to(dtype)
    rows = []
    for name, fn in (("matmul 2048x2048 @ 2048x2048", lambda: a @ b),
                     ("conv3x3 8x128x128x128 -> 128", lambda: conv(x))):
        rows.append((name, count_flops(fn), best_time(fn, reps)))
    return rows


def run_batches(fn: Callable[[list[np.ndarray]], object], frames: list[np.ndarray], batch: int,
                n_frames: int) -> tuple[int, float]:
    """One warm-up batch, then ceil(n_frames / batch) timed batches (cycling through ``frames``).
    Returns (frames timed, seconds)."""
    def batch_at(k: int) -> list[np.ndarray]:
        return [frames[(k * batch + i) % len(frames)] for i in range(batch)]

    fn(batch_at(0))
    n_batches = max(1, math.ceil(n_frames / batch))
    elapsed = 0.0
    for k in range(n_batches):
        images = batch_at(k + 1)
        t0 = time.perf_counter()
        fn(images)
        elapsed += time.perf_counter() - t0
    return n_batches * batch, elapsed


def make_maskrcnn(detections: int) -> nn.Module:
    """torchvision's Mask R-CNN R50-FPN, random weights, eval, at the frame size, score threshold 0."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min(FRAME_H, FRAME_W),
                                  max_size=max(FRAME_H, FRAME_W), box_score_thresh=0.0,
                                  box_detections_per_img=detections)
    return model.eval()


def maskrcnn_call(model: nn.Module, detections_seen: list[int]) -> Callable[[list[np.ndarray]], object]:
    """uint8 (H, W, 3) frames -> Mask R-CNN outputs; appends the detections per frame to ``detections_seen``."""
    @torch.no_grad()
    def call(images: list[np.ndarray]) -> object:
        tensors = [torch.from_numpy(im).permute(2, 0, 1).float().div(255.0) for im in images]
        out = model(tensors)
        detections_seen.extend(len(o["boxes"]) for o in out)
        return out

    return call


class TrainStep:
    """One stage-2 step of a preset on random frames: cpu -> temporal-style background tensor, paper -> its
    frozen U-Net inpainter (random weights), as training would use them (``engine/train.py:train_model``)."""

    def __init__(self, preset: str, overrides: Sequence[str] = ()) -> None:
        background = "temporal" if preset == "cpu" else "inpainter"
        cfg = resolve(preset, overrides=["train.pretrained=none", f"data.background={background}", *overrides])
        self.cfg: Config = cfg
        w, h = cfg.data.size
        g = torch.Generator().manual_seed(0)
        frames = (torch.rand(32, 3, h, w, generator=g) * 255).to(torch.uint8)
        self.bank = FrameBank(frames, torch.zeros(32, dtype=torch.long), ["s"], [str(i) for i in range(32)],
                              backgrounds=frames.flip(-1).contiguous() if background == "temporal" else None)
        torch.manual_seed(0)
        self.model = build_model(cfg).train()
        self.inpainter = None
        if background == "inpainter":
            self.inpainter = build_inpainter(cfg).eval()
            self.inpainter.requires_grad_(False)
        self.phi = PerceptualFeatures("none") if cfg.loss.w_perceptual > 0 else None
        self.opt = make_optimizer(self.model, cfg)
        self.stats = RunningStats()
        self.bf16 = use_bf16(cfg.train.precision, DEVICE)
        self.background = background
        self.step_index = 0

    def __call__(self) -> None:
        gen = step_generator(0, self.step_index, 2)
        self.step_index += 1
        idx = torch.randint(len(self.bank), (self.cfg.train.batch,), generator=gen)
        images, bgs = self.bank.batch(idx)
        total, _, _ = stage2_losses(self.model, self.inpainter, self.phi, images, bgs, self.cfg, self.stats, gen,
                                    self.bf16)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()


def gflops(x: float) -> str:
    return f"{x / 1e9:.2f}"


def parse_ints(text: str, name: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SystemExit(f"{name}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{name}: expected positive integers, got {text!r}")
    return values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--frames", type=int, default=32, help="frames timed per inference setting (default 32)")
    ap.add_argument("--batches", default="1,8", help="inference batch sizes (default 1,8)")
    ap.add_argument("--presets", default="cpu,paper", help="our presets (default cpu,paper)")
    ap.add_argument("--skip-maskrcnn", action="store_true", help="time our model only")
    ap.add_argument("--maskrcnn-detections", default="1,100",
                    help="Mask R-CNN box_detections_per_img values, one row each (default 1,100)")
    ap.add_argument("--skip-train", action="store_true", help="no training-step rows")
    ap.add_argument("--train-steps", type=int, default=3, help="timed stage-2 steps per preset (default 3)")
    ap.add_argument("--peak-reps", type=int, default=5, help="timed repetitions of each peak kernel (default 5)")
    a = ap.parse_args()
    batches = parse_ints(a.batches, "--batches")
    detections = parse_ints(a.maskrcnn_detections, "--maskrcnn-detections")
    presets = [p.strip() for p in a.presets.split(",") if p.strip()]
    torch.set_num_threads(a.threads)
    print(machine_line(torch.get_num_threads()))
    print(f"input frames {FRAME_W}x{FRAME_H} RGB uint8, random weights, CPU, {a.frames} frames timed per "
          "inference row\n")

    # --- peak
    bf16_native = cpu_has_native_bf16()
    peaks = {"fp32": measure_peak(a.peak_reps, torch.float32)}
    if bf16_native:
        peaks["bf16"] = measure_peak(a.peak_reps, torch.bfloat16)
    peak = {p: max(f / t for _, f, t in rows) for p, rows in peaks.items()}
    print("| peak kernel | dtype | GFLOP | best s | GFLOP/s |\n| --- | --- | --- | --- | --- |")
    for p, rows in peaks.items():
        for name, f, t in rows:
            print(f"| {name} | {p} | {gflops(f)} | {t:.4f} | {f / t / 1e9:.1f} |")
    print(f"\npeak (best of the float32 kernels): {peak['fp32'] / 1e9:.1f} GFLOP/s"
          + (f"; bf16: {peak['bf16'] / 1e9:.1f} GFLOP/s" if bf16_native else "") + "\n", flush=True)

    # --- inference
    frames = make_frames(max(batches) * 2)
    fps: dict[tuple[str, int], float] = {}
    print("| model | working size | batch | frames/s | ms/frame | GFLOP/frame | achieved GFLOP/s | fraction of peak "
          "|\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for preset in presets:
        cfg = resolve(preset, overrides=["train.pretrained=none"])
        torch.manual_seed(0)
        predictor = Predictor(build_model(cfg), cfg, DEVICE, refine="none")
        w, h = predictor.size
        for batch in batches:
            flops = count_flops(partial(predictor.predict_batch, frames[:batch])) / batch
            n, sec = run_batches(predictor.predict_batch, frames, batch, a.frames)
            rate = n / sec
            fps[(f"ours {preset}", batch)] = rate
            print(f"| ours, {preset} preset | {w}x{h} | {batch} | {rate:.1f} | {1000 / rate:.1f} | "
                  f"{gflops(flops)} | {flops * rate / 1e9:.1f} | {flops * rate / peak['fp32']:.3f} |", flush=True)
        del predictor
    if not a.skip_maskrcnn:
        for k in detections:
            model = make_maskrcnn(k)
            for batch in batches:
                seen: list[int] = []
                call = maskrcnn_call(model, seen)
                flops = count_flops(partial(call, frames[:batch])) / batch
                seen.clear()
                n, sec = run_batches(call, frames, batch, a.frames)
                rate = n / sec
                fps[(f"Mask R-CNN {k}", batch)] = rate
                print(f"| Mask R-CNN R50-FPN, {k} detections/img (got {np.mean(seen):.1f}) | "
                      f"{FRAME_W}x{FRAME_H} | {batch} | {rate:.1f} | {1000 / rate:.1f} | {gflops(flops)} | "
                      f"{flops * rate / 1e9:.1f} | {flops * rate / peak['fp32']:.3f} |", flush=True)
            del model
        print("\nspeed ratio (our frames/s / Mask R-CNN frames/s)\n")
        print("| ours | Mask R-CNN | " + " | ".join(f"batch {b}" for b in batches) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in batches) + " |")
        for preset in presets:
            for k in detections:
                ratios = [fps[(f"ours {preset}", b)] / fps[(f"Mask R-CNN {k}", b)] for b in batches]
                print(f"| {preset} preset | {k} detections/img | " + " | ".join(f"{r:.1f}x" for r in ratios) + " |")

    # --- training
    if a.skip_train:
        return
    print("\none stage-2 training step (forward + backward + Adam)\n")
    print("| preset | background | precision | batch | size | s/step | GFLOP/step | achieved GFLOP/s | fraction of "
          "fp32 peak | fraction (own precision) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for preset in presets:
        step = TrainStep(preset)
        flops = count_flops(step)  # also the warm-up step
        times = []
        for _ in range(a.train_steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        sec = sum(times) / len(times)
        rate = flops / sec
        precision = "bf16 autocast" if step.bf16 else "fp32"
        own = peak["bf16"] if step.bf16 and bf16_native else peak["fp32"]
        w, h = step.cfg.data.size
        print(f"| {preset} | {step.background} | {precision} | {step.cfg.train.batch} | {w}x{h} | {sec:.3f} | "
              f"{gflops(flops)} | {rate / 1e9:.1f} | {rate / peak['fp32']:.3f} | {rate / own:.3f} |", flush=True)
        del step


if __name__ == "__main__":
    main()
