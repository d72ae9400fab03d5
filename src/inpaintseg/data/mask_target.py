"""Per-frame foreground targets for S's mask, from a frame and its background estimate (beyond the paper).

The background error alone makes a poor mask target: where a slow object's ghost stays in the temporal median,
or where the object's colour matches the background behind it, the error is low inside the object, and S
learns the holes. :func:`grabcut_target` uses the error only as seeds for OpenCV's GrabCut, which labels the
remaining pixels by colour models of the object and of its surroundings:

- error >= ``FG_RATIO`` x the frame's mean error: sure foreground;
- the morphological closing of (error >= ``CORE_RATIO`` x mean): probable foreground;
- within ``NEAR`` of that core: probable background; everywhere else: sure background.

Measured offline (annotations used for diagnosis only; 160x96, IoU of the binary target with the object):
synthetic PTZ training frames 0.58 for the thresholded error, 0.65 with a closing, 0.70 with GrabCut;
the 27 DAVIS 2016 training sequences 0.37, 0.45 and 0.52 (docs/method.md).

Coordinates: images are (H, W, 3) uint8 RGB at the training resolution; targets are (H, W) uint8 in {0, 1}.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaintseg.grabcut import run_grabcut, square_kernel

CORE_RATIO = 4.0
"""Error / frame mean error above which a pixel seeds the probable foreground."""
FG_RATIO = 10.0
"""Error / frame mean error above which a pixel is sure foreground."""
CLOSE = 0.056
"""Closing kernel of the core, as a fraction of the image width (9 px at 160 px)."""
NEAR = 0.094
"""Dilation of the core that bounds the probable background, as a fraction of the width (15 px at 160)."""
ITERATIONS = 3
MIN_CORE_PIXELS = 10


def grabcut_target(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Binary foreground target (H, W) uint8 for ``image`` given its ``background`` estimate (both (H,W,3)
    uint8 RGB). Frames without a clear foreground (fewer than ``MIN_CORE_PIXELS`` core pixels) get the
    thresholded error itself, which is then (nearly) empty."""
    err = ((image.astype(np.float32) - background.astype(np.float32)) / 255.0) ** 2
    err = err.mean(axis=-1)
    ratio = err / max(float(err.mean()), 1e-8)
    core = (ratio >= CORE_RATIO).astype(np.uint8)
    if int(core.sum()) < MIN_CORE_PIXELS:
        return core
    w = image.shape[1]
    labels = np.full(core.shape, cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(core, square_kernel(NEAR, w)) > 0] = cv2.GC_PR_BGD
    labels[cv2.morphologyEx(core, cv2.MORPH_CLOSE, square_kernel(CLOSE, w)) > 0] = cv2.GC_PR_FGD
    labels[ratio >= FG_RATIO] = cv2.GC_FGD
    return run_grabcut(image, labels, ITERATIONS).astype(np.uint8)
