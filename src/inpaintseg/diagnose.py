"""Why does a training run fail or work? ``inpaintseg diagnose RUN DATA``.

Two parts:

1. **Vital signs over time** from ``RUN/train_metrics.jsonl`` (written by stage 2, see
   ``objective.py:vital_signs``): the values at the first, 25%, 50%, 75% and last logged step, and
   warnings computed on the mean of the last quarter of the logged steps:

   - boxes at a scale bound: ``vital/box_w`` or ``vital/box_h`` within 5% of the range of
     ``detector.scale_range``'s s_min or s_max (docs/method.md, "Failure modes");
   - p near uniform: ``vital/p_max`` below 1.5 / (number of inner cells) (the detector never concentrated);
   - ``vital/argmax_on_ring`` above 0.5: the detector prefers the outermost inner ring of cells, the
     failure mode of a weak background model (docs/method.md, "Failure modes"). Not checked when every
     inner cell is on the ring (inner grid of at most 2 rows or columns); the message states the ring's
     share of the inner cells (the value a detector without preference would show).

2. **Against ground truth** (diagnosis only; training never reads annotations) on up to N frames per
   annotated sequence of DATA, evenly spaced:

   a. *Background contrast*: mean squared error (per pixel, mean over RGB in [0, 1], as
      ``losses.error_map``) of the background estimate training used, on object pixels versus background
      pixels, and their ratio (object / background; large = the background loss can find the object).
      ``data.background=temporal|known``: the estimate is computed as in training (``load_frames`` +
      ``attach_backgrounds`` with the run's cache ``RUN/cache``, so cached backgrounds are reused); object
      pixels are the annotated mask, background pixels all others. ``inpainter``: ``RUN/inpainter.pt``
      inpaints a hole = the ground-truth box enlarged by ``loss.hole_expand`` (object error: its annotated
      pixels); the background error is the inpainter's error in holes of the same size placed at the
      3 x 3 positions (image corners, edge midpoints, centre) that do not overlap the object's hole (mean
      over those holes; none fit -> no value for that frame).
   b. *The trained model* ``RUN/model.pt`` (:class:`~inpaintseg.predict.Predictor`): the share of the
      detector's probability mass on cells whose box overlaps the ground-truth box with IoU > 0.3
      (``p_mass_iou``) and on cells whose box centre lies inside the ground-truth box (``p_mass_centre``);
      the argmax cell's box IoU (``Prediction.proposals``) and the mask-refined box IoU
      (``Prediction.boxes``) with the ground-truth box; the mask's J at threshold 0.5 and the mean mask
      value inside and outside the ground-truth mask.

   The ground-truth object is the union of all labels > 0; its box is the tight box around it. Frames with
   an empty annotation are not used. Per sequence: means over its frames (the contrast ratio is the ratio
   of the means); the ``mean`` row: mean over sequences (ratio again of the means).

Part 1 boxes are (cx, cy, w, h) fractions of the image (models/crop.py); part 2 works at the training
resolution ``data.size`` for the contrast and at the frames' own resolution for the model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch

from inpaintseg.boxes import box_iou
from inpaintseg.config import Config, from_dict
from inpaintseg.config import load as load_config
from inpaintseg.data.background import background_error
from inpaintseg.data.image_io import resize_image
from inpaintseg.data.sources import Sequence, Source, open_source
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.data import attach_backgrounds, evenly_spaced, load_frames
from inpaintseg.engine.logger import read_metrics
from inpaintseg.errors import DataError
from inpaintseg.io import atomic_write_text
from inpaintseg.metrics import jaccard
from inpaintseg.models.crop import box_mask, box_to_xyxy, expand_box
from inpaintseg.objective import VITAL_KEYS as OBJECTIVE_VITAL_KEYS
from inpaintseg.predict import Predictor

VITAL_KEYS = (*OBJECTIVE_VITAL_KEYS, "loss/total")
"""What the diagnosis reports over time: the vital signs and the total loss."""
CHECKPOINTS = (0.0, 0.25, 0.5, 0.75, 1.0)
BOUND_MARGIN = 0.05
"""A box side within this fraction of the scale range of a bound counts as "at the bound"."""
UNIFORM_FACTOR = 1.5
"""p_max below this multiple of 1 / (inner cells) counts as "near uniform"."""
RING_LIMIT = 0.5
MASS_IOU = 0.3
"""A cell "covers" the object when its box has IoU > MASS_IOU with the ground-truth box."""
WEAK_CONTRAST = 2.0
"""Object / background error ratio below which the background estimate hardly separates the object."""
OBJECT_KEYS = ("frames", "object_error", "background_error", "contrast_ratio", "p_mass_iou", "p_mass_centre",
               "argmax_iou", "refined_iou", "mask_j", "mask_in", "mask_out")


# -- part 1: vital signs -------------------------------------------------------------------------------------


def read_train_metrics(path: str | Path) -> list[dict]:
    """The rows of ``train_metrics.jsonl`` that carry vital signs, in file order. DataError naming the file
    when it is missing or a line is not JSON."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing: no training metrics (is this a stage-2 run folder?)")
    return [row for row in read_metrics(path)[0] if "vital/p_max" in row]


def _mean(values: list) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else None


def ring_share(inner_grid: tuple[int, int]) -> float:
    """Share of the inner cells (an ``inner_grid`` (rows, cols) block) that lie on its outermost ring."""
    rows, cols = inner_grid
    return 1.0 - max(rows - 2, 0) * max(cols - 2, 0) / max(rows * cols, 1)


def vital_warnings(rows: list[dict], scale_range: tuple[float, float], inner_grid: tuple[int, int]) -> list[str]:
    """Warnings on the mean of the last quarter of ``rows`` (at least one row): boxes at a bound of
    ``scale_range`` (s_min, s_max), p_max near uniform over the ``inner_grid`` (rows, cols) cells, argmax
    mostly on the inner ring of cells."""
    inner_cells = inner_grid[0] * inner_grid[1]
    if not rows:
        return ["no vital signs logged (train_metrics.jsonl has no rows with vital/*)"]
    tail = rows[len(rows) - max(1, len(rows) // 4):]
    last = {k: _mean([r.get(k) for r in tail]) for k in VITAL_KEYS}
    steps = f"steps {tail[0].get('step')}-{tail[-1].get('step')}"
    lo, hi = float(scale_range[0]), float(scale_range[1])
    margin = BOUND_MARGIN * (hi - lo)
    out = []
    for side in ("box_w", "box_h"):
        v = last[f"vital/{side}"]
        if v is None:
            continue
        if v <= lo + margin:
            out.append(f"{side}={v:.3f} sits at the lower scale bound s_min={lo:g} ({steps}): boxes shrank to "
                       "the smallest size (mask prior / area-normalised reward winning)")
        elif v >= hi - margin:
            out.append(f"{side}={v:.3f} sits at the upper scale bound s_max={hi:g} ({steps}): boxes grew to the "
                       "largest size (growing the box costs nothing in L_fg)")
    uniform = 1.0 / max(inner_cells, 1)
    p_max = last["vital/p_max"]
    if p_max is not None and p_max < UNIFORM_FACTOR * uniform:
        out.append(f"p_max={p_max:.3f} stays near uniform (1/{inner_cells} = {uniform:.3f}) ({steps}): the "
                   "background reward does not single out any cell")
    ring = last["vital/argmax_on_ring"]
    chance = ring_share(inner_grid)
    if ring is not None and ring > RING_LIMIT and chance < 1.0:
        out.append(f"argmax_on_ring={ring:.2f} > {RING_LIMIT} ({steps}; the ring holds {chance:.0%} of the inner "
                   "cells): the detector prefers the border ring, the failure mode of a weak background model "
                   "(its errors are largest at the image border)")
    return out


def vital_summary(rows: list[dict], scale_range: tuple[float, float], inner_grid: tuple[int, int]) -> dict:
    """``{"checkpoints": [{"at", "step", <VITAL_KEYS>}], "logged_rows", "scale_range", "inner_cells",
    "uniform_p", "ring_share", "warnings"}``; checkpoints at the first, 25%, 50%, 75% and last logged row
    (a row picked twice is shown once, labelled 0% or 100% when it is the first or last)."""
    labels: dict[int, str] = {}
    for q in (*CHECKPOINTS[1:-1], CHECKPOINTS[0], CHECKPOINTS[-1]):  # first and last win the label
        if rows:
            labels[int(round(q * (len(rows) - 1)))] = f"{q:.0%}"
    checkpoints = [{"at": labels[k], "step": rows[k].get("step"), **{key: rows[k].get(key) for key in VITAL_KEYS}}
                   for k in sorted(labels)]
    inner_cells = int(inner_grid[0] * inner_grid[1])
    return {
        "logged_rows": len(rows),
        "scale_range": [float(scale_range[0]), float(scale_range[1])],
        "inner_cells": inner_cells,
        "uniform_p": 1.0 / max(inner_cells, 1),
        "ring_share": ring_share(inner_grid),
        "checkpoints": checkpoints,
        "warnings": vital_warnings(rows, scale_range, inner_grid),
    }


# -- part 2a: background contrast ------------------------------------------------------------------------------


def background_contrast(image: np.ndarray, background: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(object error, background error): mean of the error map of ``background`` against ``image`` (both
    (H,W,3) float in [0,1]) over ``mask`` (H,W bool) pixels and over the other pixels (nan if none)."""
    err = background_error(background, image)
    mask = mask.astype(bool)
    obj = float(err[mask].mean()) if mask.any() else float("nan")
    bg = float(err[~mask].mean()) if (~mask).any() else float("nan")
    return obj, bg


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight box around the True pixels of ``mask`` (H,W): xyxy float64 in pixels, x1/y1 exclusive; None
    when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def xyxy_to_cxcywh(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """xyxy pixels -> (cx, cy, w, h) fractions of a (width, height) image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height])


def background_holes(object_box: np.ndarray, hole_expand: float, height: int, width: int) -> tuple[
        torch.Tensor, torch.Tensor]:
    """The object's hole and the holes of the same size elsewhere.

    ``object_box`` (cx, cy, w, h) fractions -> (object hole (1,1,H,W), other holes (K,1,H,W)) in {0,1}: the
    box enlarged by ``hole_expand``; the others at the 3 x 3 positions (corners, edge midpoints, centre of
    the frame, kept inside the frame where they fit) whose hole shares no pixel with the object's hole.
    """
    box = expand_box(torch.as_tensor(object_box, dtype=torch.float32)[None], hole_expand)
    hole = box_mask(box, height, width)
    bw, bh = float(box[0, 2]), float(box[0, 3])
    xs = sorted({min(max(c, bw / 2), 1 - bw / 2) if bw < 1 else 0.5 for c in (0.0, 0.5, 1.0)})
    ys = sorted({min(max(c, bh / 2), 1 - bh / 2) if bh < 1 else 0.5 for c in (0.0, 0.5, 1.0)})
    cands = torch.tensor([[cx, cy, bw, bh] for cy in ys for cx in xs], dtype=torch.float32)
    holes = box_mask(cands, height, width)
    free = (holes * hole).flatten(1).sum(1) == 0
    return hole, holes[free]


@torch.no_grad()
def inpainter_contrast(inpainter, image: np.ndarray, mask: np.ndarray, hole_expand: float) -> tuple[float, float]:
    """(object error, background error) of an inpainter (``inpaint(images (B,3,H,W), holes (B,1,H,W))``).

    ``image`` (H,W,3) float in [0,1], ``mask`` (H,W) bool object pixels. Object error: the mean error map over
    the object's pixels with the hole = its box enlarged by ``hole_expand``; background error: mean error
    over the pixels of the same-size holes of :func:`background_holes` (nan when none fits; nan, nan for
    an empty mask)."""
    h, w = mask.shape
    box = mask_box(mask)
    if box is None:
        return float("nan"), float("nan")
    hole, others = background_holes(xyxy_to_cxcywh(box, w, h), hole_expand, h, w)
    holes = torch.cat([hole, others])
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    x = x.expand(len(holes), -1, -1, -1).contiguous()
    out = inpainter.inpaint(x, holes).float().clamp(0, 1)
    err = (out - x).pow(2).mean(1).double()  # (K+1, H, W)
    obj = float(err[0][torch.from_numpy(mask.astype(bool))].mean())
    if len(others) == 0:
        return obj, float("nan")
    bg = float((err[1:] * holes[1:, 0]).sum() / holes[1:, 0].sum())
    return obj, bg


# -- part 2b: the model against the ground truth ---------------------------------------------------------------


def probability_mass(probs: np.ndarray, boxes: np.ndarray, gt_box: np.ndarray, iou: float = MASS_IOU) -> tuple[
        float, float]:
    """Share of the probability on cells that find the object.

    ``probs`` (C,) cell probabilities, ``boxes`` (C,4) the cells' boxes as (cx, cy, w, h) fractions, ``gt_box``
    (4,) xyxy fractions of the image. Returns (mass on cells whose box has IoU > ``iou`` with ``gt_box``,
    mass on cells whose box centre is inside ``gt_box``)."""
    probs = np.asarray(probs, np.float64)
    boxes = np.asarray(boxes, np.float64)
    corners = box_to_xyxy(torch.from_numpy(boxes)).numpy()
    ious = box_iou(corners, np.asarray(gt_box, np.float64)[None])[:, 0]
    x0, y0, x1, y1 = (float(v) for v in gt_box)
    inside = (boxes[:, 0] >= x0) & (boxes[:, 0] < x1) & (boxes[:, 1] >= y0) & (boxes[:, 1] < y1)
    return float(probs[ious > iou].sum()), float(probs[inside].sum())


def model_stats(predictor: Predictor, image: np.ndarray, gt: np.ndarray) -> dict:
    """Detector and mask figures of one frame: ``image`` RGB uint8 (H,W,3), ``gt`` (H,W) bool (not empty)."""
    h, w = gt.shape
    pred = predictor.predict(image)
    small = resize_image(image, predictor.size)
    x = torch.from_numpy(small).permute(2, 0, 1)[None].float().div(255.0).to(predictor.device)
    with torch.no_grad():
        props = predictor.model(x)
    gt_box = mask_box(gt)
    scale = np.array([w, h, w, h], np.float64)
    mass_iou, mass_centre = probability_mass(props.probs[0].float().cpu().numpy(),
                                             props.boxes[0].float().cpu().numpy(), gt_box / scale)
    mask = pred.mask
    return {
        "p_mass_iou": mass_iou,
        "p_mass_centre": mass_centre,
        "argmax_iou": float(box_iou(pred.proposals[:1], gt_box[None])[0, 0]),
        "refined_iou": float(box_iou(pred.boxes[:1], gt_box[None])[0, 0]),
        "mask_j": float(jaccard(mask >= 0.5, gt)),
        "mask_in": float(mask[gt].mean()),
        "mask_out": float(mask[~gt].mean()) if (~gt).any() else float("nan"),
    }


# -- part 2: per sequence ---------------------------------------------------------------------------------------


def _gt_object(seq: Sequence, i: int) -> np.ndarray | None:
    labels = seq.read_mask(i)
    if labels is None:
        return None
    labels = labels[..., 0] if labels.ndim == 3 else labels
    gt = labels > 0
    return gt if gt.any() else None


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def _training_backgrounds(cfg: Config, source: Source, seq: Sequence, run_dir: Path) -> dict[str, tuple]:
    """frame name -> (frame, background) at ``data.size``, (H,W,3) float in [0,1], computed as in training."""
    bank, per_seq = load_frames(source.subset([seq.name]), tuple(cfg.data.size), cfg.data.max_frames,
                                progress=False, keep=True)
    mode = "temporal" if cfg.data.background == "auto" else cfg.data.background
    attach_backgrounds(bank, per_seq, mode, run_dir / "cache", cfg.data.temporal_offsets, progress=False)
    frames = bank.frames.permute(0, 2, 3, 1).numpy()
    bgs = bank.backgrounds.permute(0, 2, 3, 1).numpy()
    return {name: (frames[k] / 255.0, bgs[k] / 255.0) for k, name in enumerate(bank.frame_names)}


def _aggregate(rows: list[dict]) -> dict:
    """Means of the frame (or sequence) rows; the contrast ratio as the ratio of the mean errors."""
    out: dict = {"frames": int(sum(r.get("frames", 1) for r in rows))}
    for key in OBJECT_KEYS[1:]:
        if key != "contrast_ratio":
            out[key] = _mean([r.get(key) for r in rows])
    obj, bg = out["object_error"], out["background_error"]
    out["contrast_ratio"] = obj / bg if obj is not None and bg is not None and bg > 0 else None
    return {k: out[k] for k in OBJECT_KEYS}


def sequence_stats(cfg: Config, source: Source, seq: Sequence, run_dir: Path, predictor: Predictor,
                   inpainter, frames: int) -> dict | None:
    """The part-2 figures of one sequence on up to ``frames`` annotated frames; None without annotations."""
    names = seq.frame_names
    has_mask = getattr(seq, "mask_path", None)  # ImageSequence: look up the file without reading it
    annotated = [i for i in range(len(seq)) if (has_mask(i) if has_mask else seq.read_mask(i)) is not None]
    if not annotated:
        return None
    bgs = None
    if cfg.data.background != "inpainter":
        bgs = _training_backgrounds(cfg, source, seq, run_dir)
        annotated = [i for i in annotated if names[i] in bgs]  # frames training read (data.max_frames)
    size = tuple(cfg.data.size)
    rows = []
    for i in [annotated[k] for k in evenly_spaced(len(annotated), frames)]:
        gt = _gt_object(seq, i)
        if gt is None:
            continue
        image = seq.read(i)
        if gt.shape != image.shape[:2]:
            gt = _resize_mask(gt, (image.shape[1], image.shape[0]))
        small_gt = _resize_mask(gt, size)
        row: dict = {"frame": names[i]}
        if bgs is not None:
            frame, background = bgs[names[i]]
            row["object_error"], row["background_error"] = background_contrast(frame, background, small_gt)
        elif inpainter is not None and small_gt.any():
            frame = resize_image(image, size) / 255.0
            row["object_error"], row["background_error"] = inpainter_contrast(inpainter, frame, small_gt,
                                                                              cfg.loss.hole_expand)
        row.update(model_stats(predictor, image, gt))
        rows.append(row)
    if not rows:
        return None
    return {"name": seq.name, **_aggregate(rows)}


def object_warnings(mean: dict, background: str) -> list[str]:
    """Findings from the part-2 means (thresholds in the module constants)."""
    out = []
    ratio = mean.get("contrast_ratio")
    if ratio is not None and ratio < WEAK_CONTRAST:
        out.append(f"weak background contrast: object/background error ratio {ratio:.2f} < {WEAK_CONTRAST:g} "
                   f"(background={background}): the background loss cannot tell the object from the scene")
    mass = mean.get("p_mass_iou")
    if mass is not None and mass < 0.25:
        cause = ("although the background separates it" if ratio is not None and ratio >= WEAK_CONTRAST
                 else "")
        out.append(f"the detector puts only {mass:.0%} of its probability on boxes that find the object "
                   f"(IoU > {MASS_IOU}) {cause}".rstrip())
    box, j = mean.get("argmax_iou"), mean.get("mask_j")
    if box is not None and j is not None and box >= 0.5 and j < 0.3:
        out.append(f"boxes find the object (IoU {box:.2f}) but masks do not (J {j:.2f}): a segmenter problem")
    return out


def _model_config(run_dir: Path, model_path: Path) -> Config:
    path = run_dir / "config.yaml"
    if path.is_file():
        return load_config(path)
    return from_dict(load_checkpoint(model_path, "model")["config"])


def _split_of(run_dir: Path) -> dict[str, str]:
    path = run_dir / "split.json"
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
        return {**{n: "val" for n in split.get("val", [])}, **{n: "train" for n in split.get("train", [])}}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def diagnose(run_dir: str | Path, data: str | Path, frames_per_sequence: int = 10, *, device: str = "cpu") -> dict:
    """Diagnose the run in ``run_dir`` (``model.pt``, ``train_metrics.jsonl``, ``config.yaml``) on ``data``.

    Returns a JSON-ready dict: ``run``, ``data``, ``background``, ``vitals`` (:func:`vital_summary`),
    ``objects`` (``skipped``: None or why part 2 was skipped; ``frames_per_sequence``, ``sequences``: rows
    ``{"name", "split", <OBJECT_KEYS>}``, ``mean``, ``warnings``, and texts ``contrast``, ``mass_rule``) and
    ``warnings`` (all of them). Raises DataError naming ``model.pt`` or ``train_metrics.jsonl`` when missing.
    DATA without annotations is not an error: part 2 is skipped with a note.
    """
    run_dir = Path(run_dir)
    model_path = run_dir / "model.pt"
    if not model_path.is_file():
        raise DataError(model_path, "missing: no trained model in this run folder")
    rows = read_train_metrics(run_dir / "train_metrics.jsonl")
    cfg = _model_config(run_dir, model_path)
    gh, gw = cfg.detector.input_size[1] // 16, cfg.detector.input_size[0] // 16
    inner = (max(gh - 2 * cfg.detector.border, 1), max(gw - 2 * cfg.detector.border, 1))
    vitals = vital_summary(rows, tuple(cfg.detector.scale_range), inner)
    background = cfg.data.background
    objects: dict = {
        "skipped": None, "frames_per_sequence": int(frames_per_sequence), "sequences": [], "mean": None,
        "warnings": [],
        "contrast": ("background estimate as in training (RUN/cache): object pixels vs the other pixels"
                     if background != "inpainter" else
                     f"inpainter: hole = GT box +{cfg.loss.hole_expand:.0%} (object pixels) vs same-size holes "
                     "elsewhere"),
        "mass_rule": f"p_mass_iou: cells whose box has IoU > {MASS_IOU} with the GT box; "
                     "p_mass_centre: cells whose box centre is inside the GT box",
    }
    source = open_source(data)
    annotated = [s for s in source.sequences if s.has_masks]
    if not annotated:
        objects["skipped"] = f"{data}: no annotations (ground-truth masks); part 2 skipped"
    else:
        predictor = Predictor.load(model_path, device, refine="none")  # the network itself, not the post-processing
        inpainter = None
        if background == "inpainter":
            path = run_dir / "inpainter.pt"
            if path.is_file():
                from inpaintseg.engine.train_inpainter import load_inpainter

                inpainter = load_inpainter(path, device)
            else:
                objects["contrast"] = f"{path} missing: no background contrast"
        split = _split_of(run_dir)
        for seq in annotated:
            stats = sequence_stats(cfg, source, seq, run_dir, predictor, inpainter, frames_per_sequence)
            if stats is not None:
                objects["sequences"].append({"name": stats.pop("name"), "split": split.get(seq.name, "-"), **stats})
        if objects["sequences"]:
            objects["mean"] = _aggregate(objects["sequences"])
            objects["warnings"] = object_warnings(objects["mean"], background)
        else:
            objects["skipped"] = f"{data}: no frame with a non-empty annotation; part 2 skipped"
    return {
        "run": str(run_dir), "data": str(data), "background": background, "vitals": vitals, "objects": objects,
        "warnings": [*vitals["warnings"], *objects["warnings"]],
    }


# -- text ---------------------------------------------------------------------------------------------------


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.3g}"


def _digits(key: str) -> int:
    """Decimals shown for a column: errors are small (squared RGB differences in [0, 1])."""
    return 2 if key == "contrast_ratio" else 5 if "error" in key else 3


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]

    def line(cells: list[str]) -> str:  # first column left-aligned, numbers right-aligned
        return "  ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_report(result: dict) -> str:
    """The :func:`diagnose` result as readable text: tables and warnings."""
    v = result["vitals"]
    lines = [f"run {result['run']}  data {result['data']}  background={result['background']}", "",
             f"1. vital signs ({v['logged_rows']} logged steps; scale range {v['scale_range']}, "
             f"uniform p = 1/{v['inner_cells']} = {v['uniform_p']:.3f}; border ring = {v['ring_share']:.0%} "
             "of the inner cells)"]
    header = ["at", "step", *(k.split("/")[1] for k in VITAL_KEYS)]
    lines += _table(header, [[c["at"], _fmt(c["step"]), *(_fmt(c[k], _digits(k)) for k in VITAL_KEYS)]
                             for c in v["checkpoints"]])
    lines += [f"  ! {w}" for w in v["warnings"]] or ["  no warnings"]
    o = result["objects"]
    lines += ["", "2. against the ground truth (diagnosis only)"]
    if o["skipped"]:
        lines.append(f"  {o['skipped']}")
    else:
        lines += [f"  up to {o['frames_per_sequence']} frames per sequence; contrast: {o['contrast']}",
                  f"  {o['mass_rule']}"]
        header = ["sequence", "split", *OBJECT_KEYS]
        header = [h.replace("_error", "_err").replace("contrast_ratio", "ratio") for h in header]
        body = [[s["name"], s["split"], *(_fmt(s[k], _digits(k)) for k in OBJECT_KEYS)] for s in o["sequences"]]
        body.append(["mean", "", *(_fmt(o["mean"][k], _digits(k)) for k in OBJECT_KEYS)])
        lines += _table(header, body)
        lines += [f"  ! {w}" for w in o["warnings"]] or ["  no warnings"]
    return "\n".join(lines) + "\n"


def write_json(result: dict, path: str | Path) -> Path:
    """Write the result as JSON (atomically; non-finite numbers as null)."""

    def clean(x):
        if isinstance(x, float):
            return x if math.isfinite(x) else None
        if isinstance(x, dict):
            return {k: clean(val) for k, val in x.items()}
        if isinstance(x, list | tuple):
            return [clean(val) for val in x]
        return x

    atomic_write_text(path, json.dumps(clean(result), indent=1))
    return Path(path)
