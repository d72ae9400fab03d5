"""Pictures of predictions: the paper's figure-6 view (cell probabilities as dots, chosen box, offset line,
mask tint)."""

from __future__ import annotations

import cv2
import numpy as np


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
