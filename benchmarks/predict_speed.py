"""Inference speed and memory: frames per second of ``Predictor.predict_batch`` and peak RSS of ``predict_source``
on a long versus a short video.

    python benchmarks/predict_speed.py [--threads 2] [--frames-fps 64] [--skip-paper]
                                       [--long 2000] [--short 200] [--video-batch 8] [--device cpu] [--temporal]

Speed: models of the ``cpu`` and ``paper`` presets with random weights (``train.pretrained=none``; weights do
not change the cost), wrapped in ``Predictor``, on 320x180 RGB uint8 frames (a square moving over noise) at
batch 1 and 16, without the GrabCut refinement (``refine="none"``: its cost depends on the masks, which
random weights make meaningless; CHANGELOG.md gives it on DAVIS). Frames are resized to each preset's working
resolution ``data.size`` inside ``predict_batch``. One warm-up batch, then ``ceil(frames_fps / batch)`` timed batches.

Memory: a ``cpu``-preset checkpoint (``model_payload`` format, as training writes ``model.pt``) and two MP4
videos (``--short`` and ``--long`` frames, 320x180) are written to a temporary folder; each video is predicted
by ``predict_source`` (masks + detections.json) in a fresh subprocess, which reports its peak resident set
size after loading the model and at the end. Streaming prediction should give a long/short ratio close to 1.
With ``--temporal`` the videos are predicted in video mode (``predict --temporal``: a window of neighbouring
frames is held besides the batch). The memory figures are appended to ``benchmarks/results.jsonl``.

Peak RSS is read from ``VmHWM`` in ``/proc/self/status`` (the high-water mark of the process's own address
space). ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is printed too but is not used for the ratio: on Linux a
child started by ``subprocess`` starts with the parent's peak (vfork) or current (fork) RSS as its
``ru_maxrss``, which the kernel carries across ``execve``, so it mostly measures this benchmark's own process
(about 0.8 GB after importing torch and building the models). Where ``/proc`` is missing (macOS) the script
falls back to ``ru_maxrss``.

Prints the machine, threads, torch version and date, then two markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from machine import append_result, machine_line

from inpaintseg.config import TemporalOptions, resolve
from inpaintseg.engine.checkpoint import save_checkpoint
from inpaintseg.engine.train import model_payload
from inpaintseg.models.model import build_model
from inpaintseg.predict import Predictor, predict_source

FRAME_W, FRAME_H = 320, 180
BATCHES = (1, 16)


def synthetic_frame(background: np.ndarray, index: int, side: int = 40) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``background`` with a bright square whose top-left corner moves 3 px per frame
    (bouncing inside the frame)."""
    h, w = background.shape[:2]
    span_x, span_y = w - side, h - side
    x = abs((3 * index) % (2 * span_x) - span_x)
    y = abs((2 * index) % (2 * span_y) - span_y)
    frame = background.copy()
    frame[y : y + side, x : x + side] = (230, 60, 40)
    return frame


def noise_background(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)


def write_video(path: Path, frames: int, fps: int = 24) -> Path:
    """An MP4 (libx264 if available, else mpeg4, yuv420p) of ``frames`` synthetic 320x180 frames."""
    background = noise_background()
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = FRAME_W, FRAME_H, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(background, i), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_predictor(preset: str, device: str) -> Predictor:
    cfg = resolve(preset, overrides=["train.pretrained=none"])
    torch.manual_seed(0)
    return Predictor(build_model(cfg), cfg, device, refine="none")


def frames_per_second(predictor: Predictor, batch: int, frames: int) -> float:
    """Frames per second of ``predict_batch`` at ``batch``: one warm-up batch, then ceil(frames / batch)
    timed batches of distinct frames."""
    background = noise_background()
    images = [synthetic_frame(background, i) for i in range(batch)]
    predictor.predict_batch(images)  # warm-up: allocations, lazy initialisation
    n_batches = max(1, math.ceil(frames / batch))
    elapsed = 0.0
    for b in range(n_batches):
        images = [synthetic_frame(background, b * batch + i) for i in range(batch)]
        t0 = time.perf_counter()
        predictor.predict_batch(images)
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - t0
    return n_batches * batch / elapsed


def ru_maxrss_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB (KiB on Linux, bytes on macOS); see the module docstring
    for why it overstates a subprocess's own peak on Linux."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def peak_rss_mib() -> float:
    """Peak resident set size of this process's address space so far, MiB: ``VmHWM`` from
    ``/proc/self/status``, or ``ru_maxrss`` where there is no ``/proc``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return ru_maxrss_mib()


def rss_child(model: str, video: str, out: str, batch: int, threads: int, device: str, temporal: bool) -> None:
    """Run in a fresh process: load the model, predict the video with ``predict_source``; print JSON."""
    torch.set_num_threads(threads)
    Predictor.load(model, device)  # load once to measure the memory of imports + model
    after_load = peak_rss_mib()
    t0 = time.perf_counter()
    predict_source(model, video, out, batch=batch, device=device, progress=False, refine="none",
                   temporal=TemporalOptions() if temporal else None)
    wall = time.perf_counter() - t0
    frames = len(list(Path(out).glob("*/*.png")))
    print(json.dumps({"after_load_mib": after_load, "peak_mib": peak_rss_mib(), "ru_maxrss_mib": ru_maxrss_mib(),
                      "wall_s": wall, "frames": frames}))


def measure_rss(model: Path, video: Path, out: Path, batch: int, threads: int, device: str, temporal: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--rss-child", str(model), str(video), str(out), str(batch), str(threads),
           device, str(int(temporal))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--frames-fps", type=int, default=64, help="frames timed per speed setting (default 64)")
    ap.add_argument("--skip-paper", action="store_true", help="time the cpu preset only")
    ap.add_argument("--long", type=int, default=2000, help="frames of the long video (default 2000)")
    ap.add_argument("--short", type=int, default=200, help="frames of the short video (default 200)")
    ap.add_argument("--video-batch", type=int, default=8, help="predict_source batch for the RSS runs (default 8)")
    ap.add_argument("--skip-rss", action="store_true", help="speed table only")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--temporal", action="store_true", help="predict the videos in video mode (predict --temporal)")
    ap.add_argument("--rss-child", nargs=7, help=argparse.SUPPRESS,
                    metavar=("MODEL", "VIDEO", "OUT", "BATCH", "THREADS", "DEVICE", "TEMPORAL"))
    a = ap.parse_args()
    if a.rss_child:
        model, video, out, batch, threads, device, temporal = a.rss_child
        rss_child(model, video, out, int(batch), int(threads), device, temporal == "1")
        return
    torch.set_num_threads(a.threads)
    print(machine_line(torch.get_num_threads()))
    print(f"input frames {FRAME_W}x{FRAME_H} RGB uint8, random weights, device {a.device}\n")

    print("| preset | working size (data.size) | batch | frames/s | ms/frame |\n| --- | --- | --- | --- | --- |")
    for preset in ("cpu",) if a.skip_paper else ("cpu", "paper"):
        predictor = make_predictor(preset, a.device)
        w, h = predictor.size
        for batch in BATCHES:
            fps = frames_per_second(predictor, batch, a.frames_fps)
            print(f"| {preset} | {w}x{h} | {batch} | {fps:.1f} | {1000 / fps:.1f} |", flush=True)
        del predictor

    if a.skip_rss:
        return
    with tempfile.TemporaryDirectory(prefix="predict_speed_") as tmp:
        tmp = Path(tmp)
        cfg = resolve("cpu", overrides=["train.pretrained=none"])
        torch.manual_seed(0)
        model_path = tmp / "model.pt"
        save_checkpoint(model_path, model_payload(build_model(cfg), cfg, 0))
        rows = {}
        for n in (a.short, a.long):
            video = write_video(tmp / f"video_{n}.mp4", n)
            rows[n] = measure_rss(model_path, video, tmp / f"pred_{n}", a.video_batch, a.threads, a.device,
                                  a.temporal)
            if rows[n]["frames"] != n:
                raise RuntimeError(f"{video}: predicted {rows[n]['frames']} frames, expected {n}")
        print(f"\npeak RSS of predict_source (cpu preset, batch {a.video_batch}, masks + detections.json), "
              "fresh process per video\n")
        print("| video frames | peak RSS after model load (MiB) | peak RSS at end (MiB) | ru_maxrss* (MiB) | wall s "
              "| frames/s |\n| --- | --- | --- | --- | --- | --- |")
        for n, r in rows.items():
            print(f"| {n} | {r['after_load_mib']:.0f} | {r['peak_mib']:.0f} | {r['ru_maxrss_mib']:.0f} | "
                  f"{r['wall_s']:.1f} | {n / r['wall_s']:.1f} |")
        print("\n*ru_maxrss of the child includes the RSS of this parent process at spawn time (Linux keeps it "
              "across execve); peak RSS is VmHWM.")
        ratio = rows[a.long]["peak_mib"] / rows[a.short]["peak_mib"]
        growth = rows[a.long]["peak_mib"] - rows[a.long]["after_load_mib"]
        print(f"\npeak RSS ratio {a.long} / {a.short} frames: {ratio:.3f} "
              f"(growth during prediction of {a.long} frames: {growth:.0f} MiB)")
        append_result({"benchmark": "predict_rss", "temporal": a.temporal, "batch": a.video_batch,
                       "device": a.device, "frames": {str(n): r for n, r in rows.items()}, "rss_ratio": ratio,
                       "frames_per_s": {str(n): n / r["wall_s"] for n, r in rows.items()}})


if __name__ == "__main__":
    main()
