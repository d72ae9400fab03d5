"""Segmentation and detection metrics: region similarity J, boundary F-measure, boxes and mAP@0.5.

All masks are 2-D arrays (H, W) in image coordinates (row = y, column = x). Boxes are
``[x, y, w, h]`` in pixels, where a box covering pixel columns ``x0..x1`` (inclusive) has
``x = x0`` and ``w = x1 - x0 + 1`` (the COCO convention: pixel ``i`` spans ``[i, i + 1)``).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Hashable, Mapping, Sequence

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from skimage.morphology import disk

# Global threshold grid of the paper's protocol: 0.05, 0.10, ..., 0.95.
THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)

# The 256 probabilities an 8-bit soft mask can hold; ``soft / 255 >= t`` is ``LEVELS[soft] >= t``.
_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"masks must be 2-D of the same shape, got {pred.shape} and {gt.shape}")


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J (intersection over union) of two boolean masks (H, W); 1.0 when both are empty."""
    _check_pair(pred, gt)
    pred = pred.astype(bool, copy=False)
    gt = gt.astype(bool, copy=False)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def threshold_levels(thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """For each probability threshold t, the smallest 8-bit value v with ``v / 255 >= t`` (256 if none).

    Returns int64 (T,). Thresholding a uint8 soft mask as ``soft >= level`` is exactly ``soft / 255 >= t``.
    """
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    passes = _LEVELS[None, :] >= t[:, None]  # (T, 256)
    return np.where(passes.any(axis=1), passes.argmax(axis=1), 256)


def jaccard_at_thresholds(
    soft: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] | np.ndarray = THRESHOLDS
) -> np.ndarray:
    """J of ``soft / 255 >= t`` against ``gt`` for every threshold t, in one pass over the pixels.

    ``soft`` is a uint8 (H, W) soft mask (0..255 = probability), ``gt`` a boolean (H, W) mask.
    Returns float64 (T,). Uses histograms of the soft values inside the GT and overall, so the
    cost does not grow with the number of thresholds.
    """
    _check_pair(soft, gt)
    if soft.dtype != np.uint8:
        raise ValueError(f"soft mask must be uint8, got {soft.dtype}")
    gt = gt.astype(bool, copy=False)
    hist_all = np.bincount(soft.ravel(), minlength=256)
    hist_fg = np.bincount(soft[gt], minlength=256)
    # at_least[v] = number of pixels with value >= v, for v = 0..256
    at_least_all = np.concatenate([np.cumsum(hist_all[::-1])[::-1], [0]])
    at_least_fg = np.concatenate([np.cumsum(hist_fg[::-1])[::-1], [0]])
    levels = threshold_levels(thresholds)
    inter = at_least_fg[levels].astype(np.float64)
    n_pred = at_least_all[levels]
    union = (int(hist_fg.sum()) + n_pred - inter).astype(np.float64)
    out = np.ones(levels.shape, dtype=np.float64)
    nonzero = union > 0
    out[nonzero] = inter[nonzero] / union[nonzero]
    return out


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """DAVIS-style boundary of a binary mask: bool (H, W).

    A pixel is a boundary pixel when its value differs from its east, south or south-east
    neighbour. The last row and column are padded by replication, so an object touching the
    image border gets no boundary along the image edge. The boundary of an object therefore lies
    on the outside of its top/left edges and on the inside of its bottom/right edges.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    m = np.pad(mask.astype(bool, copy=False), ((0, 1), (0, 1)), mode="edge")
    here = m[:-1, :-1]
    east = m[:-1, 1:]
    south = m[1:, :-1]
    south_east = m[1:, 1:]
    return (here ^ east) | (here ^ south) | (here ^ south_east)


def boundary_tolerance(shape: tuple[int, ...], bound_th: float = 0.008) -> int:
    """Boundary match tolerance in pixels: ``ceil(bound_th * diagonal)``, or ``bound_th`` itself if >= 1."""
    if bound_th >= 1:
        return int(math.ceil(bound_th))
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _dilate(boundary: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return boundary
    return cv2.dilate(boundary.astype(np.uint8), disk(radius).astype(np.uint8)).astype(bool)


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS boundary F-measure of two binary masks (H, W).

    Each boundary map (``boundary_map``) is dilated with a disk of radius ``boundary_tolerance``;
    precision = fraction of predicted boundary pixels within the tolerance of the GT boundary,
    recall = fraction of GT boundary pixels within the tolerance of the predicted boundary.
    Both boundaries empty: P = R = 1. Only the GT boundary empty: P = 0, R = 1. Only the
    predicted boundary empty: P = 1, R = 0. F = 2PR / (P + R), 0 when P + R = 0.
    """
    _check_pair(pred, gt)
    radius = boundary_tolerance(pred.shape, bound_th)
    pred_b = boundary_map(pred)
    gt_b = boundary_map(gt)
    n_pred = np.count_nonzero(pred_b)
    n_gt = np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = np.count_nonzero(pred_b & _dilate(gt_b, radius)) / n_pred
        recall = np.count_nonzero(gt_b & _dilate(pred_b, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def boxes_from_labels(labels: np.ndarray) -> list[tuple[int, list[float]]]:
    """Tight boxes of the objects of a label image.

    ``labels`` is a 2-D integer array (H, W): 0 is background, every other value one object
    (DAVIS 2016: 255; multi-object annotations: 1, 2, ...). Returns ``[(label, [x, y, w, h])]``
    sorted by label, in pixels, with ``w = x_max - x_min + 1`` and ``h = y_max - y_min + 1``.
    """
    if labels.ndim != 2:
        raise ValueError(f"label image must be 2-D, got shape {labels.shape}")
    boxes: list[tuple[int, list[float]]] = []
    for label in np.unique(labels):
        if label == 0:
            continue
        obj = labels == label
        rows = np.flatnonzero(obj.any(axis=1))
        cols = np.flatnonzero(obj.any(axis=0))
        x0, x1, y0, y1 = int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])
        boxes.append((int(label), [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]))
    return boxes


def average_precision_50(
    gt: Mapping[Hashable, Sequence[Sequence[float]]],
    dets: Sequence[tuple[Hashable, Sequence[float], float]],
) -> float | None:
    """Single-class average precision at IoU 0.5, computed by pycocotools' COCOeval.

    ``gt`` maps an image key to its GT boxes ``[x, y, w, h]``; every key is an evaluated image, so
    an image with GT boxes and no detection counts as misses. ``dets`` is a list of
    ``(image key, [x, y, w, h], score)``; detections on keys absent from ``gt`` are ignored.
    Uses COCO's 101-point interpolated precision, area range "all", and no limit on the number
    of detections per image. Returns None when there is no detection on an evaluated image, or no
    GT box at all (AP undefined).
    """
    keys = list(gt.keys())
    image_id = {key: i + 1 for i, key in enumerate(keys)}
    annotations = []
    for key in keys:
        for box in gt[key]:
            x, y, w, h = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id[key],
                    "category_id": 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    results = [
        {"image_id": image_id[key], "category_id": 1, "bbox": [float(v) for v in box], "score": float(score)}
        for key, box, score in dets
        if key in image_id
    ]
    if not results or not annotations:
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": [{"id": i} for i in image_id.values()],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "object"}],
        }
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.areaRng = [[0.0, 1e12]]
        ev.params.areaRngLbl = ["all"]
        ev.params.maxDets = [len(results)]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, 0, 0, 0]  # (recall thresholds,)
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else None
