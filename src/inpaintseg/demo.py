"""``inpaintseg demo``: the main job on built-in data, start to finish.

Makes a synthetic PTZ benchmark (48 training sequences x 30 frames and 16 held-out test sequences x 60 frames,
from different seeds; the same split as ``benchmarks/accuracy.py``), trains both
stages with the ``cpu`` preset, predicts on the held-out sequences, evaluates J, F and mAP@0.5 and writes
the HTML report ``out/report.html``.
"""

from __future__ import annotations

from pathlib import Path

from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.pipeline import run_training
from inpaintseg.evaluate import run as run_evaluate
from inpaintseg.predict import predict_source
from inpaintseg.report import write_report

DEMO_TRAIN_MINUTES = 12.0
TRAIN_SPLIT = (48, 30)
"""Synthetic training sequences x frames (seed 0), also ``benchmarks/accuracy.py``'s default."""
TEST_SPLIT = (16, 60)
"""Held-out test sequences x frames (seed 1000), also ``benchmarks/accuracy.py``'s default."""


def run_demo(out: str | Path = "demo", overrides: list[str] = (), camera: str = "ptz") -> dict:
    """The whole job on ``TRAIN_SPLIT`` / ``TEST_SPLIT`` synthetic sequences; returns the evaluation."""
    out = Path(out)
    (train_sequences, train_frames), (test_sequences, test_frames) = TRAIN_SPLIT, TEST_SPLIT
    train_root = out / "data" / "train"
    test_root = out / "data" / "test"
    print(f"[1/4] synthetic {camera} benchmark -> {out / 'data'}")
    generate(train_root, camera=camera, sequences=train_sequences, frames=train_frames, seed=0, progress=True)
    generate(test_root, camera=camera, sequences=test_sequences, frames=test_frames, seed=1000, progress=True)
    # DEMO_TRAIN_MINUTES of stage 2 leave room within 15 minutes on 2 cores for making the data, the backgrounds
    # and mask targets, predicting with the GrabCut refinement and evaluating. Without the cpu preset's optical
    # flow: on the synthetic benchmarks the temporal background already finds the figures and the flow did not
    # raise J (CHANGELOG.md), while computing it would push the demo past 15 minutes. A user's override wins.
    cfg = resolve("cpu", overrides=[f"train.minutes={DEMO_TRAIN_MINUTES}", "data.flow=false", *overrides])
    print("[2/4] training (stage 1 inpainter, stage 2 detector + segmenter)")
    model = run_training(cfg, train_root, out / "run")
    print("[3/4] predicting on the held-out sequences")
    pred = predict_source(model, test_root, out / "pred")
    print("[4/4] evaluating")
    result = run_evaluate(pred, test_root, out / "eval.json")
    report = write_report(out / "run", pred, out / "report.html", gt_root=test_root, eval_json=out / "eval.json")
    print(f"report: {report}")
    return result
