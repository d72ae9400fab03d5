"""What the predictor returns for one image (:class:`Prediction`), and its COCO form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util

from inpaintseg.config import PREDICT
from inpaintseg.data.image_io import write_png

COCO_CATEGORY = {"id": 1, "name": "object"}


def mask_to_rle(mask: np.ndarray) -> dict:
    """bool/uint8 (H, W) -> COCO RLE ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


@dataclass
class Prediction:
    """Result for one image of size (H, W); N objects, sorted by score (N = 1 by default: the argmax cell)."""

    boxes: np.ndarray
    """(N, 4) float32 x0, y0, x1, y1 in pixels of the input image (x1, y1 exclusive)."""
    proposals: np.ndarray
    """(N, 4) the detector's boxes (the crop windows), same format; ``boxes`` may be refined from the mask."""
    scores: np.ndarray
    """(N,) float32 cell probabilities of the boxes."""
    masks: np.ndarray
    """(N, H, W) float32 masks in [0, 1] at the input resolution (soft; see ``Predictor``'s ``refine``)."""
    probabilities: np.ndarray
    """(G_h, G_w) float32 cell probabilities (border cells 0)."""
    cells: np.ndarray
    """(N,) int: the grid cell (row * G_w + col) that proposed each box."""

    def plot(self, image: np.ndarray) -> np.ndarray:
        """The paper's figure-6 view of this prediction over ``image`` (RGB uint8 (H,W,3))."""
        from inpaintseg.viz import plot_prediction

        return plot_prediction(image, self)

    @property
    def box(self) -> np.ndarray:
        return self.boxes[0]

    @property
    def score(self) -> float:
        return float(self.scores[0])

    @property
    def mask(self) -> np.ndarray:
        """The union (max) of the object masks, (H, W)."""
        return self.masks.max(axis=0) if len(self.masks) else np.zeros(self.masks.shape[1:], np.float32)

    def save(self, folder: str | Path, name: str, objects: bool = False) -> list[Path]:
        """Write ``folder/<name>.png``: the union mask as uint8 0..255 (the DAVIS layout ``evaluate`` reads).

        With ``objects``, also ``folder/<name>_<k>.png`` for each object k (0 = highest score).
        Returns the paths written.
        """
        folder = Path(folder)
        paths = [folder / f"{name}.png"]
        write_png(paths[0], to_uint8(self.mask))
        if objects:
            for k, m in enumerate(self.masks):
                paths.append(folder / f"{name}_{k}.png")
                write_png(paths[-1], to_uint8(m))
        return paths

    def to_coco(self, image_id: int, threshold: float = PREDICT.threshold, first_id: int = 1) -> list[dict]:
        """COCO annotation dicts, one per object (ids ``first_id``, ``first_id + 1``, ...).

        ``bbox`` = [x, y, w, h] pixels from ``boxes``; ``segmentation`` = RLE of ``mask >= threshold``
        (``counts`` as str); ``area`` = its pixel count; ``category_id`` 1 ("object"); ``iscrowd`` 0.
        """
        out = []
        for k, (box, score, mask) in enumerate(zip(self.boxes, self.scores, self.masks, strict=True)):
            x0, y0, x1, y1 = (float(v) for v in box)
            rle = mask_to_rle(mask >= threshold)
            out.append({
                "id": first_id + k, "image_id": int(image_id), "category_id": COCO_CATEGORY["id"],
                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score), "segmentation": rle,
                "area": float(mask_util.area(_rle_bytes(rle))), "iscrowd": 0,
            })
        return out


def to_uint8(mask: np.ndarray) -> np.ndarray:
    return (np.clip(mask, 0, 1) * 255).round().astype(np.uint8)


def _rle_bytes(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
