"""Train on one dataset, predict on held-out data, evaluate: one accuracy figure with its command.

    python benchmarks/accuracy.py synthetic --camera ptz --out runs/bench_ptz [key=value ...]
    python benchmarks/accuracy.py davis --data ../shared/data/davis2016-train-240p --out runs/bench_davis [k=v ...]

``synthetic``: 48 training sequences x 30 frames from seed 0, 16 test sequences x 60 frames from seed 1000
(disjoint scenes). Smaller splits were tried first: with 4 test sequences J moved by +-0.05 with the sequences
drawn, and 8 training scenes were too few for the detector. With 16 x 30 (``--train-sequences 16``) the
detector found the figure in every training frame (mAP 1.0) but not in all test frames; three times as many
scenes closed much of that gap (CHANGELOG.md).
``davis``: trains on the frames without labels and evaluates on the same frames (the project's real-footage
protocol: self-supervised training on unlabeled footage, single-image inference).
Predictions are refined with ``--refine`` (default ``grabcut``, the predictor's default); the network's own
masks (``refine=none``) are evaluated too and recorded under ``raw``, the figure that shows what the model learnt.
``--model MODEL`` skips training and evaluates MODEL (``default``: the shipped weights) on the test frames.
``--shuffle`` trains and predicts on the test frames shuffled into one flat folder of images (no sequence
order, so no neighbouring frames: ``background=auto`` falls back to the inpainter); the predictions are mapped
back to their sequences for the evaluation.
Prints the evaluation table and appends a JSON line (settings, metrics, wall times, machine) to
``benchmarks/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from machine import append_result

from inpaintseg.config import PREDICT, REFINE_CHOICES, TemporalOptions, resolve
from inpaintseg.data.synth import generate
from inpaintseg.demo import TEST_SPLIT, TRAIN_SPLIT
from inpaintseg.engine.pipeline import run_training
from inpaintseg.evaluate import run as run_evaluate
from inpaintseg.predict import predict_source


def shuffle_frames(root: Path, out: Path, seed: int = 0) -> dict[str, list[str]]:
    """Link every frame of the DAVIS root ``root`` into the flat folder ``out`` in a random order
    (``000000.jpg``, ...). Returns {flat name: [sequence, frame]}."""
    frames = [(seq, f) for seq in sorted((root / "JPEGImages").iterdir()) for f in sorted(seq.iterdir())]
    order = np.random.default_rng(seed).permutation(len(frames))
    out.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for k, i in enumerate(order):
        seq, f = frames[i]
        link = out / f"{k:06d}{f.suffix}"
        if not link.is_symlink():
            link.symlink_to(f.resolve())
        mapping[f"{k:06d}"] = [seq.name, f.stem]
    return mapping


def unshuffle_predictions(flat: Path, out: Path, mapping: dict[str, list[str]]) -> Path:
    """Predictions of the flat folder (``flat/<folder>/<k>.png``, ``flat/detections.json``) back under their
    sequences: ``out/<seq>/<frame>.png`` and ``out/detections.json``."""
    (folder,) = [d for d in flat.iterdir() if d.is_dir()]
    for name, (seq, stem) in mapping.items():
        (out / seq).mkdir(parents=True, exist_ok=True)
        os.replace(folder / f"{name}.png", out / seq / f"{stem}.png")
    dets = json.loads((flat / "detections.json").read_text())
    for d in dets:
        d["sequence"], d["frame"] = mapping[d["frame"]]
    (out / "detections.json").write_text(json.dumps(dets))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=["synthetic", "davis"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/davis2016-train-240p"))
    ap.add_argument("--camera", default="ptz")
    ap.add_argument("--train-sequences", type=int, default=TRAIN_SPLIT[0])
    ap.add_argument("--train-frames", type=int, default=TRAIN_SPLIT[1])
    ap.add_argument("--test-sequences", type=int, default=TEST_SPLIT[0])
    ap.add_argument("--test-frames", type=int, default=TEST_SPLIT[1])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--refine", choices=REFINE_CHOICES, default=PREDICT.refine,
                    help="mask refinement of the headline figures (default grabcut); raw masks are always evaluated")
    ap.add_argument("--model", help="evaluate this model (a model.pt, or default) without training")
    ap.add_argument("--shuffle", action="store_true", help="train and predict on the test frames as one flat, "
                                                           "shuffled folder of images")
    ap.add_argument("--temporal", action="store_true", help="predict in video mode (predict --temporal)")
    ap.add_argument("--cell-weight", type=float, default=TemporalOptions.cell_weight,
                    help="with --temporal: weight in [0, 1] of the background reward against D's probability "
                         "in each cell's score (0 = D alone)")
    ap.add_argument("--mask-weight", type=float, default=TemporalOptions.mask_weight,
                    help="with --temporal: share of background subtraction in the masks (0 = off)")
    ap.add_argument("overrides", nargs="*")
    a, extra = ap.parse_known_args()
    bad = [e for e in extra if "=" not in e or e.startswith("-")]
    if bad:
        ap.error(f"unrecognized arguments: {' '.join(bad)}")
    a.overrides = [*a.overrides, *extra]
    a.out.mkdir(parents=True, exist_ok=True)
    if a.dataset == "synthetic":
        train_root, test_root = a.out / "data" / "train", a.out / "data" / "test"
        if not (train_root / "meta.json").exists():
            generate(train_root, camera=a.camera, sequences=a.train_sequences, frames=a.train_frames, seed=0)
            generate(test_root, camera=a.camera, sequences=a.test_sequences, frames=a.test_frames, seed=1000)
    else:
        train_root = test_root = a.data
    gt_root, mapping = test_root, None
    if a.shuffle:
        mapping = shuffle_frames(test_root, a.out / "data" / "shuffled")
        train_root = test_root = a.out / "data" / "shuffled"
    cfg = resolve(a.preset, overrides=a.overrides)
    t0 = time.time()
    model = a.model or run_training(cfg, train_root, a.out / "run", progress=False)
    t_train = time.time() - t0
    temporal = TemporalOptions(a.cell_weight, a.mask_weight) if a.temporal else None

    def predict(name: str, refine: str) -> Path:
        if mapping is None:
            return predict_source(model, test_root, a.out / name, progress=False, refine=refine, temporal=temporal)
        flat = predict_source(model, test_root, a.out / f"{name}_flat", progress=False, refine=refine,
                              temporal=temporal)
        return unshuffle_predictions(flat, a.out / name, mapping)

    t0 = time.time()
    pred = predict("pred", a.refine)
    t_pred = time.time() - t0
    result = run_evaluate(pred, gt_root, a.out / "eval.json")
    raw = None
    if a.refine != "none":
        pred_raw = predict("pred_raw", "none")
        r = run_evaluate(pred_raw, gt_root, a.out / "eval_raw.json")
        raw = {"J": r["J_mean"], "F": r["F_mean"], "mAP50": r["mAP50"], "threshold": r["threshold"]}
    append_result({
        "dataset": a.dataset, "camera": a.camera if a.dataset == "synthetic" else None, "preset": a.preset,
        "overrides": a.overrides, "model": a.model, "shuffle": a.shuffle,
        "temporal": None if temporal is None else {"cell_weight": a.cell_weight, "mask_weight": a.mask_weight},
        "data": str(a.data) if a.dataset == "davis" else None,
        "split": ({"train": [a.train_sequences, a.train_frames], "test": [a.test_sequences, a.test_frames]}
                  if a.dataset == "synthetic" else None),
        "J": result["J_mean"], "F": result["F_mean"], "mAP50": result["mAP50"],
        "threshold": result["threshold"], "refine": a.refine, "raw": raw,
        "train_s": round(t_train, 1), "predict_s": round(t_pred, 1), "sequences": result["sequences"],
    }, Path(__file__).parent / "results.jsonl")

if __name__ == "__main__":
    main()
