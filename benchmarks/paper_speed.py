"""Step time of both training stages through the real training loops, on whatever device torch picks.

    python benchmarks/paper_speed.py [--preset paper] [--steps 300] [--warmup 30] [--precision auto,fp32]
                                     [key=value ...]

Calls ``train_inpainter`` and then ``train_model`` (what ``inpaintseg train`` runs) for ``--steps`` steps each on
a bank of random frames at the preset's image size: the work per step does not depend on the content. Step times
come from the metrics files (``time/elapsed_s``, logged every step; the ``.item()`` calls of every step wait for
the GPU), averaged over the steps after ``--warmup``. Checkpoints and TensorBoard pictures are left out of the
timed steps. Stage 2 runs once per ``--precision`` (stage 1 has no autocast). Prints the machine and a markdown
table: seconds per step, images per second, peak GPU memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from machine import machine_line

from inpaintseg.config import resolve
from inpaintseg.engine.common import pick_device, use_bf16
from inpaintseg.engine.data import FrameBank
from inpaintseg.engine.logger import read_metrics
from inpaintseg.engine.train import train_model
from inpaintseg.engine.train_inpainter import train_inpainter


def random_bank(n: int, width: int, height: int) -> FrameBank:
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(n, 3, height, width, generator=g) * 255).to(torch.uint8)
    return FrameBank(frames, torch.zeros(n, dtype=torch.long), ["random"], [f"{i:05d}" for i in range(n)])


def seconds_per_step(metrics: Path, warmup: int) -> float:
    rows = [r for r in read_metrics(metrics)[0] if "time/elapsed_s" in r]
    first, last = next(r for r in rows if r["step"] == warmup), rows[-1]
    return (last["time/elapsed_s"] - first["time/elapsed_s"]) / (last["step"] - first["step"])


def peak_gib(device: torch.device) -> str:
    if device.type != "cuda":
        return "-"
    gib = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return f"{gib:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--precision", default="auto,fp32", help="stage-2 precisions to time, comma-separated")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick the fastest kernels per shape")
    ap.add_argument("overrides", nargs="*", help="config key=value")
    a = ap.parse_args()
    never = 10**9
    cfg = resolve(a.preset, overrides=[
        "train.pretrained=none", "data.background=inpainter", f"inpainter.steps={a.steps}", "inpainter.minutes=0",
        f"train.steps={a.steps}", "train.minutes=0", "train.log_every=1", f"train.image_every={never}",
        f"train.checkpoint_every={never}", *a.overrides])
    device = pick_device(cfg.train.device)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    w, h = cfg.data.size
    bank = random_bank(a.frames, w, h)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{machine_line(torch.get_num_threads())}, device {device} ({name}), preset {a.preset}, {w}x{h}, "
          f"S encoder {cfg.segmenter.encoder}, batch {cfg.inpainter.batch} (stage 1) / {cfg.train.batch} (stage 2), "
          f"{a.steps} steps, first {a.warmup} not timed, cudnn.benchmark {a.cudnn_benchmark}, overrides {a.overrides}")
    print("| stage | precision | s/step | images/s | peak GPU memory (GiB) |\n| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        t0 = time.monotonic()
        train_inpainter(cfg, bank, run, progress=False)
        t = seconds_per_step(run / "inpainter_metrics.jsonl", a.warmup)
        print(f"| 1: inpainter | fp32 | {t:.4f} | {cfg.inpainter.batch / t:.0f} | {peak_gib(device)} |", flush=True)
        for precision in a.precision.split(","):
            cfg.train.precision = precision
            used = "bf16 autocast" if use_bf16(precision, device) else "fp32"
            (run / "train_metrics.jsonl").unlink(missing_ok=True)  # the logger appends
            train_model(cfg, bank, run, progress=False)
            t = seconds_per_step(run / "train_metrics.jsonl", a.warmup)
            print(f"| 2: detector + segmenter | {used} | {t:.4f} | {cfg.train.batch / t:.0f} | {peak_gib(device)} |",
                  flush=True)
    print(f"total wall time {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
