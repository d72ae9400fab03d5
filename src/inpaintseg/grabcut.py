"""GrabCut refinement of a soft mask (Rother, Kolmogorov & Blake, "GrabCut: Interactive Foreground Extraction
using Iterated Graph Cuts", SIGGRAPH 2004), as post-processing of the segmenter's output on a single image.

The paper post-processes its masks with a dense CRF (section 3.6; :mod:`inpaintseg.crf`). On both of our
benchmarks OpenCV's GrabCut, seeded by S's own mask, does better (docs/method.md, deviations table): S's mask says
roughly where the object is; GrabCut fits colour models (Gaussian mixtures) of the object and of its
surroundings and re-labels the uncertain pixels by a graph cut that follows image edges. The seeds, from
the soft mask ``p``:

- ``p >= sure``: object, fixed;
- ``split <= p < sure``: probably object;
- pixels within ``near`` (a fraction of the image width) of ``p >= low``: probably background;
- everywhere else: background, fixed.

GrabCut runs on the bounding rectangle of the uncertain band plus a margin of ``near`` (its background colour
model comes from the object's surroundings, and the cost follows the object's size, not the image's), shrunk
to at most ``max_side`` pixels on its longer side.

The output stays soft, so a threshold can still be searched afterwards (DAVIS protocol): the mean of ``p``
and GrabCut's binary label. GrabCut's object pixels are >= 0.5 and its background pixels < ``(1 + sure) / 2 -
0.5`` (0.45 with ``sure = 0.9``), so a threshold in (0.45, 0.5] returns GrabCut's labels (exactly, unless the
rectangle was shrunk: then up to the resampling of its result).

Coordinates: images (H, W, 3) uint8 RGB, masks (H, W) float in [0, 1], row 0 = top.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaintseg.errors import InpaintsegError


def run_grabcut(image: np.ndarray, labels: np.ndarray, iterations: int) -> np.ndarray:
    """OpenCV GrabCut from a label image (``cv2.GC_*`` values, (H, W) uint8) on ``image`` (H, W, 3) uint8.
    Returns the (H, W) bool object pixels; where GrabCut cannot run (no object or no background seed,
    degenerate colour models) the seeds' own object pixels."""
    seeds = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if seeds.all() or not seeds.any():
        return seeds
    labels = labels.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's RNG (per thread): same input, same output
    try:
        cv2.grabCut(np.ascontiguousarray(image), labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return seeds
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def square_kernel(fraction: float, width: int) -> np.ndarray:
    """A square structuring element of odd side (at least 3) about ``fraction`` of ``width`` pixels."""
    k = max(3, 2 * round(fraction * width / 2) + 1)
    return np.ones((k, k), np.uint8)


def refine_grabcut(image: np.ndarray, soft_mask: np.ndarray, *, sure: float = 0.9, split: float = 0.5,
                   low: float = 0.2, near: float = 0.05, iterations: int = 3, max_side: int = 512) -> np.ndarray:
    """Refine one object's soft mask with GrabCut on the image's colours.

    Args:
        image: RGB uint8 (H, W, 3), the frame the mask belongs to.
        soft_mask: float (H, W) object probability in [0, 1] (e.g. ``Prediction.masks[k]`` before refinement).
        sure, split, low: thresholds on ``soft_mask`` for the object, probable-object and probable-background
            seeds (see the module docstring).
        near: width of the probable-background band around ``p >= low``, as a fraction of the image width.
        iterations: GrabCut iterations.
        max_side: GrabCut's rectangle is shrunk to at most this many pixels on its longer side.

    Returns:
        float32 (H, W) in [0, 1]: ``(soft_mask + grabcut_label) / 2`` (see the module docstring). A mask with
        no pixel at ``split`` or above is returned unchanged.

    Raises:
        InpaintsegError: the image is not RGB uint8, or the shapes do not match.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InpaintsegError(f"refine_grabcut: image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if soft_mask.shape != (h, w):
        raise InpaintsegError(f"refine_grabcut: mask shape {soft_mask.shape} does not match image {(h, w)}")
    p = soft_mask.astype(np.float32)
    if not (p >= split).any():
        return p
    band = cv2.dilate((p >= low).astype(np.uint8), square_kernel(near, w)) > 0
    ys, xs = np.nonzero(band)
    m = round(near * w)
    y0, y1, x0, x1 = max(0, ys.min() - m), min(h, ys.max() + 1 + m), max(0, xs.min() - m), min(w, xs.max() + 1 + m)
    pc, img = p[y0:y1, x0:x1], image[y0:y1, x0:x1]
    labels = np.full(pc.shape, cv2.GC_BGD, np.uint8)
    labels[band[y0:y1, x0:x1]] = cv2.GC_PR_BGD
    labels[pc >= split] = cv2.GC_PR_FGD
    labels[pc >= sure] = cv2.GC_FGD
    ch, cw = pc.shape
    scale = min(1.0, max_side / max(ch, cw))
    if scale < 1.0:  # nearest keeps the labels' values; the result comes back through a linear resize
        size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
        small = run_grabcut(cv2.resize(img, size, interpolation=cv2.INTER_AREA),
                            cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST), iterations)
        label = cv2.resize(small.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR) >= 0.5
    else:
        label = run_grabcut(img, labels, iterations)
    out = np.zeros((h, w), np.float32)
    out[y0:y1, x0:x1] = label
    return 0.5 * (p + out)
