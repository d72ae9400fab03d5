"""Evaluate predicted soft masks (and optional detections) against DAVIS-layout ground truth.

Protocol of the paper: every prediction is thresholded at one global threshold, chosen on the grid
``metrics.THRESHOLDS`` to maximise the mean region similarity J; the boundary F-measure is reported at
that threshold. J and F are averaged over the annotated frames of a sequence, then over sequences.

Layouts:

- ground truth: a DAVIS root holding ``Annotations/<seq>/<frame>.png``, or that ``Annotations``
  folder itself. Foreground is every value > 0 (several object labels are merged for J and F;
  each label gives one box for mAP). Only frames with a GT file are evaluated.
- predictions: ``<pred_root>/<seq>/<frame>.png`` soft masks, 0..255 = probability (8-bit gray;
  16-bit and RGB are converted to 8-bit gray by ``read_mask``), plus an optional
  ``<pred_root>/detections.json``: a list of ``{"sequence", "frame", "bbox": [x, y, w, h], "score"}``
  with boxes in pixels of the GT frame.

A missing prediction file counts as an empty mask; a prediction of another size than its GT is
resized (bilinear on the soft mask). Both are counted in the result and warned about.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inpaintseg.data.image_io import IMAGE_SUFFIXES, read_mask
from inpaintseg.errors import DataError
from inpaintseg.io import atomic_write_text
from inpaintseg.metrics import (
    THRESHOLDS,
    average_precision_50,
    boxes_from_labels,
    f_measure,
    jaccard_at_thresholds,
    threshold_levels,
)

log = logging.getLogger(__name__)

DETECTIONS_FILE = "detections.json"

FrameKey = tuple[str, str]  # (sequence, frame name without suffix)


@dataclass(frozen=True)
class _Frame:
    sequence: str
    name: str
    gt_path: Path
    pred_path: Path


def find_annotations(gt_root: str | Path) -> Path:
    """The folder of ``<seq>/<frame>.png`` GT masks: ``gt_root/Annotations`` if present, else ``gt_root``."""
    root = Path(gt_root)
    if not root.is_dir():
        raise DataError(root, "ground-truth folder does not exist")
    if (root / "Annotations").is_dir():
        return root / "Annotations"
    if (root / "JPEGImages").is_dir():
        raise DataError(root, "no ground-truth masks: this DAVIS root has no Annotations/ folder")
    return root


def _gt_sequences(ann_root: Path) -> dict[str, list[tuple[str, Path]]]:
    """``{sequence: [(frame name, path), ...]}`` of the GT PNGs, sorted; DataError if there are none."""
    sequences: dict[str, list[tuple[str, Path]]] = {}
    for seq_dir in sorted(p for p in ann_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        frames = sorted((p.stem, p) for p in seq_dir.glob("*.png") if not p.name.startswith("."))
        if frames:
            sequences[seq_dir.name] = frames
    if not sequences:
        raise DataError(ann_root, "no ground-truth masks (expected <sequence>/<frame>.png)")
    return sequences


def read_soft_mask(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Read a soft-mask PNG as uint8 (H, W) of the given ``shape``; returns (mask, was_resized).

    A mask of another size is resized with bilinear interpolation of the soft values.
    """
    soft = read_mask(path)
    if soft.ndim == 3:  # gray + alpha
        soft = soft[..., 0]
    if soft.shape == shape:
        return soft, False
    resized = cv2.resize(soft, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized, True


def _frame_name(frame: str) -> str:
    """Frame name without an image suffix: ``"00012.png"`` -> ``"00012"``."""
    p = Path(frame)
    return p.stem if p.suffix.lower() in IMAGE_SUFFIXES else frame


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def read_detections(path: str | Path) -> list[tuple[FrameKey, list[float], float]]:
    """Read ``detections.json``: a list of ``{"sequence", "frame", "bbox": [x, y, w, h], "score"}``.

    Returns ``[((sequence, frame name), [x, y, w, h], score)]``; DataError naming the file if malformed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"cannot read detections ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, list):
        raise DataError(path, "expected a JSON list of detections")
    dets: list[tuple[FrameKey, list[float], float]] = []
    for i, d in enumerate(data):
        if not isinstance(d, dict) or not {"sequence", "frame", "bbox", "score"} <= d.keys():
            raise DataError(path, f"detection {i}: expected an object with sequence, frame, bbox, score")
        seq, frame, bbox, score = d["sequence"], d["frame"], d["bbox"], d["score"]
        if not isinstance(seq, str) or not isinstance(frame, str):
            raise DataError(path, f"detection {i}: sequence and frame must be strings")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise DataError(path, f"detection {i}: bbox must be [x, y, w, h] of finite numbers")
        if bbox[2] < 0 or bbox[3] < 0:
            raise DataError(path, f"detection {i}: bbox width and height must be >= 0")
        if not _is_number(score):
            raise DataError(path, f"detection {i}: score must be a finite number")
        dets.append(((seq, _frame_name(frame)), [float(v) for v in bbox], float(score)))
    return dets


def _progress(items: Sequence[_Frame], enabled: bool, desc: str) -> Iterable[_Frame]:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="frame")


def _gt_frame(frame: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """The frame's annotation as read (H,W) labels, and its foreground (H,W) bool."""
    labels = read_mask(frame.gt_path)
    if labels.ndim == 3:
        labels = labels[..., 0]
    return labels, labels > 0


def _jaccard_pass(
    frames: Sequence[_Frame], thresholds: np.ndarray, with_boxes: bool, progress: bool
) -> tuple[dict[str, list[np.ndarray]], dict[FrameKey, list[list[float]]], int, int]:
    """Pass 1: J of every frame at every threshold, per sequence, and the annotated boxes when ``with_boxes``.
    Returns (curves per sequence, boxes per frame, missing predictions, resized predictions)."""
    j_curves: dict[str, list[np.ndarray]] = {}
    gt_boxes: dict[FrameKey, list[list[float]]] = {}
    missing = resized = 0
    for frame in _progress(frames, progress, "J"):
        labels, gt = _gt_frame(frame)
        if frame.pred_path.is_file():
            soft, was_resized = read_soft_mask(frame.pred_path, gt.shape)
            resized += was_resized
        else:
            soft = np.zeros(gt.shape, np.uint8)
            missing += 1
        j_curves.setdefault(frame.sequence, []).append(jaccard_at_thresholds(soft, gt, thresholds))
        if with_boxes:
            gt_boxes[(frame.sequence, frame.name)] = [box for _, box in boxes_from_labels(labels)]
    if missing:
        log.warning("%d of %d prediction files are missing (counted as empty masks)", missing, len(frames))
    if resized:
        log.warning("%d prediction(s) differ in size from their ground truth and were resized", resized)
    return j_curves, gt_boxes, missing, resized


def _boundary_pass(frames: Sequence[_Frame], threshold: float, progress: bool) -> dict[str, list[float]]:
    """Pass 2: F of every frame at the chosen threshold only (the masks are read again rather than held)."""
    level = int(threshold_levels([threshold])[0])  # soft >= level  <=>  soft / 255 >= threshold
    f_values: dict[str, list[float]] = {}
    for frame in _progress(frames, progress, "F"):
        _, gt = _gt_frame(frame)
        if frame.pred_path.is_file():
            soft, _ = read_soft_mask(frame.pred_path, gt.shape)
            pred = soft >= level
        else:
            pred = np.zeros(gt.shape, bool)
        f_values.setdefault(frame.sequence, []).append(f_measure(pred, gt))
    return f_values


def evaluate(
    pred_root: str | Path,
    gt_root: str | Path,
    thresholds: Sequence[float] | np.ndarray = THRESHOLDS,
    progress: bool = False,
) -> dict:
    """Evaluate the soft masks under ``pred_root`` against the GT under ``gt_root`` (see module docstring).

    Returns a JSON-ready dict: ``threshold`` (the chosen global threshold; the lowest one on ties),
    ``J_mean``, ``F_mean``, ``JF_mean`` (= (J + F) / 2), ``J_recall`` (mean over sequences of the
    fraction of frames with J > 0.5), ``mAP50`` (None without detections), ``sequences``
    (``{seq: {"J", "F"}}``), ``frames`` (evaluated), ``missing`` (prediction files absent) and
    ``resized`` (predictions of the wrong size).
    """
    pred_root = Path(pred_root)
    if not pred_root.is_dir():
        raise DataError(pred_root, "prediction folder does not exist")
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if thresholds.size == 0:
        raise ValueError("need at least one threshold")
    sequences = _gt_sequences(find_annotations(gt_root))
    extra = sorted(
        p.name
        for p in pred_root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in sequences
    )
    if extra:
        log.warning("ignored %d prediction sequence(s) absent from the GT: %s", len(extra), ", ".join(extra))
    frames = [
        _Frame(seq, name, gt_path, pred_root / seq / f"{name}.png")
        for seq, seq_frames in sequences.items()
        for name, gt_path in seq_frames
    ]
    det_path = pred_root / DETECTIONS_FILE
    dets = read_detections(det_path) if det_path.is_file() else None

    j_curves, gt_boxes, missing, resized = _jaccard_pass(frames, thresholds, dets is not None, progress)
    seq_curves = {seq: np.stack(j_curves[seq]).mean(axis=0) for seq in sequences}
    mean_curve = np.mean(np.stack(list(seq_curves.values())), axis=0)
    best = int(np.argmax(mean_curve))
    threshold = float(thresholds[best])
    f_values = _boundary_pass(frames, threshold, progress)

    per_seq = {
        seq: {"J": float(seq_curves[seq][best]), "F": float(np.mean(f_values[seq]))} for seq in sequences
    }
    j_mean = float(np.mean([v["J"] for v in per_seq.values()]))
    f_mean = float(np.mean([v["F"] for v in per_seq.values()]))
    recall = float(np.mean([np.mean(np.stack(j_curves[seq])[:, best] > 0.5) for seq in sequences]))
    map50 = average_precision_50(gt_boxes, dets) if dets else None
    return {
        "threshold": threshold,
        "J_mean": j_mean,
        "F_mean": f_mean,
        "JF_mean": (j_mean + f_mean) / 2.0,
        "J_recall": recall,
        "mAP50": map50,
        "sequences": per_seq,
        "frames": len(frames),
        "missing": missing,
        "resized": resized,
    }


def format_table(result: dict) -> str:
    """A human-readable table of an ``evaluate`` result: per-sequence J and F, the means and the summary."""
    seqs = result["sequences"]
    width = max([len("sequence"), len("mean")] + [len(s) for s in seqs])
    lines = [f"{'sequence':<{width}}  {'J':>6}  {'F':>6}", "-" * (width + 16)]
    for seq, v in seqs.items():
        lines.append(f"{seq:<{width}}  {v['J']:6.3f}  {v['F']:6.3f}")
    lines.append("-" * (width + 16))
    lines.append(f"{'mean':<{width}}  {result['J_mean']:6.3f}  {result['F_mean']:6.3f}")
    map50 = "n/a (no detections)" if result["mAP50"] is None else f"{result['mAP50']:.3f}"
    lines += [
        "",
        f"threshold  {result['threshold']:.2f}",
        f"J&F        {result['JF_mean']:.3f}",
        f"J recall   {result['J_recall']:.3f}",
        f"mAP@0.5    {map50}",
        f"frames     {result['frames']}  (missing predictions: {result['missing']}, "
        f"resized: {result['resized']})",
    ]
    return "\n".join(lines)


def run(pred_root: str | Path, gt_root: str | Path, json_out: str | Path | None = None) -> dict:
    """Evaluate, print the table, and write the result as JSON (atomically) if ``json_out`` is given."""
    result = evaluate(pred_root, gt_root)
    print(format_table(result))
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result, indent=2) + "\n")
    return result
