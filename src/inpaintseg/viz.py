"""Pictures of predictions: the paper's figure-6 view (cell probabilities as dots, chosen box, offset line,
mask tint) and a plain overlay (mask tint, outline and box per object) for videos and quick looks."""

from __future__ import annotations

import cv2
import numpy as np

from inpaintseg.config import PREDICT

# One colour per object (RGB), reused cyclically when there are more objects.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 64, 0), (0, 160, 255), (60, 200, 60), (230, 200, 0), (200, 0, 200), (0, 200, 200),
)


def object_color(k: int) -> tuple[int, int, int]:
    """RGB colour of object ``k`` (0 = the most probable)."""
    return PALETTE[k % len(PALETTE)]


def overlay_prediction(image: np.ndarray, prediction, threshold: float = PREDICT.threshold,
                       alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 (H,W,3) image + Prediction -> RGB uint8 (H,W,3).

    Object k (in score order) gets colour ``object_color(k)``: its soft mask (H,W) in [0,1] tints the image
    with weight ``alpha * mask``, the outline of ``mask >= threshold`` is drawn, and its box (xyxy pixels)
    is drawn as a rectangle labelled with its score.
    """
    h, w = image.shape[:2]
    out = image.astype(np.float32)
    for k, mask in enumerate(prediction.masks):
        m = alpha * np.clip(mask, 0, 1)[..., None]
        out = out * (1 - m) + np.array(object_color(k), np.float32) * m
    out = np.clip(out, 0, 255).round().astype(np.uint8)
    thickness = max(1, round(max(h, w) / 200))
    for k, (mask, box, score) in enumerate(zip(prediction.masks, prediction.boxes, prediction.scores, strict=True)):
        color = object_color(k)
        contours, _ = cv2.findContours((mask >= threshold).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, thickness, cv2.LINE_AA)
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, thickness, cv2.LINE_AA)
        scale = max(0.3, max(h, w) / 800)
        cv2.putText(out, f"{float(score):.2f}", (max(0, x0), max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    color, thickness, cv2.LINE_AA)
    return out


def plot_prediction(image: np.ndarray, prediction, tint: tuple[int, int, int] = (255, 64, 0)) -> np.ndarray:
    """RGB uint8 (H,W,3) image + Prediction -> RGB uint8 (H,W,3): mask tinted, each cell's probability as a
    blue dot (area proportional to p) at the cell centre, the chosen box dashed red, a green line from the
    chosen cell's centre to the box centre."""
    h, w = image.shape[:2]
    out = image.astype(np.float32)
    m = prediction.mask[..., None]
    out = out * (1 - 0.5 * m) + np.array(tint, np.float32) * 0.5 * m
    out = np.clip(out, 0, 255).astype(np.uint8)
    probs = prediction.probabilities
    gh, gw = probs.shape
    scale = max(h, w) / 40.0
    for r in range(gh):
        for c in range(gw):
            p = float(probs[r, c])
            if p <= 0:
                continue
            centre = (int((c + 0.5) / gw * w), int((r + 0.5) / gh * h))
            cv2.circle(out, centre, max(1, int(round(scale * np.sqrt(p) * 3))), (40, 90, 255), -1, cv2.LINE_AA)
    for box, cell in zip(prediction.boxes, getattr(prediction, "cells", [None] * len(prediction.boxes)), strict=True):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        _dashed_rectangle(out, (x0, y0), (x1, y1), (255, 0, 0), max(1, int(scale / 4)))
        if cell is not None:
            r, c = divmod(int(cell), gw)
            start = (int((c + 0.5) / gw * w), int((r + 0.5) / gh * h))
            cv2.line(out, start, ((x0 + x1) // 2, (y0 + y1) // 2), (0, 200, 0), max(1, int(scale / 4)), cv2.LINE_AA)
    return out


def _dashed_rectangle(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], color, thickness: int) -> None:
    (x0, y0), (x1, y1) = p0, p1
    dash = max(3, (abs(x1 - x0) + abs(y1 - y0)) // 30)
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for s in range(0, length, 2 * dash):
            t0, t1 = s / max(length, 1), min(s + dash, length) / max(length, 1)
            q0 = (int(a[0] + (b[0] - a[0]) * t0), int(a[1] + (b[1] - a[1]) * t0))
            q1 = (int(a[0] + (b[0] - a[0]) * t1), int(a[1] + (b[1] - a[1]) * t1))
            cv2.line(img, q0, q1, color, thickness, cv2.LINE_AA)
