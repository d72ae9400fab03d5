"""Box helpers of inference: the tight box of a mask, IoU of box sets, and the cells kept as objects (NMS).

Boxes are xyxy arrays (x0, y0, x1, y1; x1 and y1 exclusive)."""

from __future__ import annotations

import numpy as np

from inpaintseg.config import PREDICT

BOX_FROM_MASK = 0.4
"""Default ``relative`` of :func:`box_from_mask` (chosen by mAP; docs/method.md)."""


def box_from_mask(mask: np.ndarray, fallback: np.ndarray, relative: float = BOX_FROM_MASK) -> np.ndarray:
    """Tight xyxy box (pixels, x1/y1 exclusive) around the pixels of ``mask`` (H,W) >= ``relative`` x its
    maximum; ``fallback`` when the mask is empty or ``relative`` is 0."""
    peak = float(mask.max())
    if relative <= 0 or peak <= 0:
        return fallback
    ys, xs = np.nonzero(mask >= relative * peak)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)




def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xyxy boxes (any consistent units) -> (N, M) float64."""
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def select_cells(probs: np.ndarray, boxes: np.ndarray, max_objects: int = PREDICT.max_objects,
                 nms_iou: float = PREDICT.nms_iou, min_prob: float = PREDICT.min_prob) -> np.ndarray:
    """Cells to segment: greedy non-maximum suppression in order of probability.

    Args:
        probs: (C,) cell probabilities.
        boxes: (C, 4) the cells' boxes, xyxy (any units; IoU does not depend on them).
        max_objects: at most this many cells.
        nms_iou: a cell is dropped when its box overlaps an already kept box with IoU > ``nms_iou``.
        min_prob: cells below this probability (or at 0) are never kept, except the most probable cell.

    Returns:
        (K,) int64 cell indices, 1 <= K <= max_objects, by decreasing probability. The first is always
        ``np.argmax(probs)`` (first index among ties), so ``max_objects=1`` is the paper's argmax cell.
    """
    probs = np.asarray(probs)
    order = np.argsort(-probs, kind="stable")  # ties: lower index first, like argmax
    keep = [int(order[0])]
    for c in order[1:]:
        if len(keep) >= max_objects or probs[c] < min_prob or probs[c] <= 0:
            break  # sorted: every later cell is at most as probable
        if box_iou(boxes[c : c + 1], boxes[keep]).max() > nms_iou:
            continue
        keep.append(int(c))
    return np.array(keep, dtype=np.int64)
