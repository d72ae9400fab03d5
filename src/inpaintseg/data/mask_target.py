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

With the optical-flow branch (``data.flow``), the seeds come from both cues where the flow agrees with the
error: if the stabilised flow's mean squared magnitude inside the error's core is at least ``FLOW_CONTRAST``
times that outside it, the ratio above is replaced by the geometric mean of the error ratio and the flow's
squared magnitude over its frame mean (that mean floored at ``FLOW_FLOOR``). A pixel then seeds the
foreground only where it both differs from the background and moves: the ghosts and lighting changes that the
temporal median leaves, and the ground that DIS smears motion onto, drop out. Frames whose flow is invalid or
does not single out the error's core (an object that stands still) keep the error alone. Measured the same
way (data/flow.py's two-pair flow): synthetic PTZ 0.70 -> 0.77, synthetic handheld 0.70 -> 0.77 (16
sequences each), DAVIS 2016 training 0.52 -> 0.55.

Coordinates: images are (H, W, 3) uint8 RGB at the training resolution; targets are (H, W) uint8 in {0, 1}.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaintseg.data.background import background_error
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
FLOW_CONTRAST = 8.0
"""The flow joins the seeds when its mean squared magnitude inside the error's core is at least this many times
that outside it (chosen offline on synthetic PTZ, handheld and DAVIS together: 4 and 16 were no better)."""
FLOW_FLOOR = 0.25 / 160
"""Floor of the flow's frame mean magnitude, as a fraction of the image width (0.25 px at 160 px), so that the
noise of a nearly still frame is not inflated."""


def error_ratio(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Squared RGB error (H, W) float32 between ``image`` and ``background`` over its frame mean."""
    err = background_error(background, image)
    return err / max(float(err.mean()), 1e-8)


def combine_with_flow(ratio: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The seed ratio from the error ``ratio`` (H, W) and the stabilised ``flow`` (H, W, 2) in pixels: their
    geometric mean (the flow as squared magnitude over its frame mean) when the flow singles out the error's
    core by ``FLOW_CONTRAST``, else ``ratio`` unchanged."""
    core = ratio >= CORE_RATIO
    if int(core.sum()) < MIN_CORE_PIXELS or core.all():
        return ratio
    mag2 = (flow.astype(np.float32) ** 2).sum(axis=-1)
    if float(mag2[core].mean()) < FLOW_CONTRAST * max(float(mag2[~core].mean()), 1e-12):
        return ratio
    floor = (FLOW_FLOOR * ratio.shape[1]) ** 2
    return np.sqrt(ratio * mag2 / max(float(mag2.mean()), floor))


def grabcut_target(image: np.ndarray, background: np.ndarray, flow: np.ndarray | None = None) -> np.ndarray:
    """Binary foreground target (H, W) uint8 for ``image`` given its ``background`` estimate (both (H,W,3)
    uint8 RGB) and, optionally, its camera-stabilised optical ``flow`` (H, W, 2) float in pixels (data/flow.py;
    None where there is none). Frames without a clear foreground (fewer than ``MIN_CORE_PIXELS`` core pixels)
    get the thresholded ratio itself, which is then (nearly) empty."""
    ratio = error_ratio(image, background)
    if flow is not None:
        ratio = combine_with_flow(ratio, flow)
    core = (ratio >= CORE_RATIO).astype(np.uint8)
    if int(core.sum()) < MIN_CORE_PIXELS:
        return core
    w = image.shape[1]
    labels = np.full(core.shape, cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(core, square_kernel(NEAR, w)) > 0] = cv2.GC_PR_BGD
    labels[cv2.morphologyEx(core, cv2.MORPH_CLOSE, square_kernel(CLOSE, w)) > 0] = cv2.GC_PR_FGD
    labels[ratio >= FG_RATIO] = cv2.GC_FGD
    return run_grabcut(image, labels, ITERATIONS).astype(np.uint8)
