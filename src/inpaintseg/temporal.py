"""Video mode (``predict --temporal``): what a frame's neighbours in the sequence say, used at test time.

The network predicts from one image. In a video, the frames around it give the cue that training relies on: the
background, estimated as the median of the neighbouring frames warped onto the frame by homographies
(:func:`~inpaintseg.data.background.temporal_background`, the same estimate ``data.background=temporal`` trains
with). Two uses, each with its weight in :class:`~inpaintseg.config.TemporalOptions`:

- **Cells** (``cell_weight`` = a in [0, 1]): each cell's score is ``p ** (1 - a) * r ** a``, renormalised, where
  ``p`` is D's probability and ``r`` the background reward of the cell's box: the mean background error inside the
  box divided by the frame's mean error (the training reward's density form, eq. 3, made independent of the
  frame's error scale). a = 0 keeps D's choice; a = 1 takes, among the boxes D proposes, the one the neighbours
  explain least (border cells, which D gives probability 0, stay out). D's probabilities are peaked after
  training, so only a weight near 1 lets the reward overrule a confident D.
- **Masks** (``mask_weight``): each object's soft mask becomes ``(1 - w) * m + w * b`` inside the detector's box
  and ``(1 - w) * m`` outside it, before the refinement on the image's colours. ``b`` is the mean of two motion
  cues: the background-subtraction probability
  (:func:`~inpaintseg.data.background.background_subtraction_mask`) and the stabilised flow's magnitude
  (:func:`~inpaintseg.data.flow.frame_flow`, the frames ``FLOW_GAP`` before and after), divided by
  ``MOTION_SCALE`` times the longer side and clipped to 1. Without a flow (neither pair aligned), ``b`` is the
  background-subtraction probability alone.

Frames are streamed: a frame leaves :func:`with_context` once its last neighbour has arrived, so at most
``2 * max(max|offset|, FLOW_GAP) + 1`` frames of a sequence are held at a time, whatever its length. A frame none
of whose neighbours could be aligned (a single image, a shot change, an unordered collection) gets no context and
is predicted from the image alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inpaintseg.data.background import (
    FeatureCache,
    background_error,
    background_subtraction_mask,
    neighbour_indices,
    temporal_background,
)
from inpaintseg.data.flow import FLOW_GAP, frame_flow
from inpaintseg.data.image_io import resize_image
from inpaintseg.data.sources import Frame

MOTION_SCALE = 1.0 / 320
"""Flow magnitude, as a fraction of the image's longer side, at which the flow's cue reaches 1 (one pixel at the
backgrounds' 320-pixel working size)."""


@dataclass
class Context:
    """What the neighbours say about one frame, at the background's working size (w, h).

    ``background``: (h, w, 3) uint8, the median of the aligned neighbours; ``coverage``: (h, w) uint8, how many
    neighbours cover each pixel; ``image``: (h, w, 3) uint8, the frame itself at that size; ``motion``: (h, w)
    float32, the magnitude in pixels of the frame's stabilised flow, or None when it has none."""

    background: np.ndarray
    coverage: np.ndarray
    image: np.ndarray
    motion: np.ndarray | None = None

    def error(self) -> np.ndarray:
        """(h, w) float32 squared error of the background, 0 where no neighbour covers the pixel."""
        return background_error(self.background, self.image) * (self.coverage > 0)

    def foreground(self, width: int, height: int) -> np.ndarray:
        """(height, width) float32 foreground probability in [0, 1] at the frame's own size: the mean of the
        background-subtraction probability and the flow's cue (see the module), or the former alone."""
        prob = background_subtraction_mask(self.image, self.background, self.coverage)
        if self.motion is not None:
            cue = np.clip(self.motion / (MOTION_SCALE * max(self.motion.shape)), 0.0, 1.0)
            prob = 0.5 * (prob + cue)
        return np.clip(resize_image(prob, (width, height), cv2.INTER_LINEAR), 0.0, 1.0)


class _Window:
    """The frames of one sequence held at a time, indexed by their position in the stream (``temporal_background``
    reads ``frames[i]`` and ``len(frames)``)."""

    def __init__(self) -> None:
        self.frames: dict[int, np.ndarray] = {}
        self.count = 0

    def __getitem__(self, i: int) -> np.ndarray:
        return self.frames[i]

    def __len__(self) -> int:
        return self.count


def with_context(frames: Iterable[Frame], offsets: Sequence[int], size: tuple[int, int], motion: bool = False
                 ) -> Iterator[tuple[Frame, Context | None]]:
    """Each frame of ``frames`` (sequences one after the other, each in order) with its :class:`Context` at
    ``size`` (W, H), or None when none of its neighbours at ``offsets`` could be aligned. Frames come out in the
    order they went in, each as soon as its last neighbour has been read. ``motion``: also compute each context's
    stabilised flow (``Context.motion``; the mask's cue needs it, the cell rewards do not)."""
    reach = max(max((abs(int(o)) for o in offsets), default=0), FLOW_GAP)
    window, features, pending, current = _Window(), None, {}, None

    def emit(position: int) -> tuple[Frame, Context | None]:
        frame = pending.pop(position)
        neighbours = neighbour_indices(position, len(window), offsets)
        background, coverage = temporal_background(window, position, offsets, features, neighbours)
        context = None
        if coverage.max() > 0:
            flow = frame_flow(window, position, features) if motion else None
            speed = None if flow is None else np.hypot(flow[..., 0], flow[..., 1])
            context = Context(background, coverage, window[position], speed)
        for old in [p for p in window.frames if p < position + 1 - reach]:  # no later frame needs them
            del window.frames[old]
        return frame, context

    for frame in frames:
        if frame.sequence != current:
            while pending:
                yield emit(min(pending))
            window, current = _Window(), frame.sequence
            features = FeatureCache(window, max_items=2 * reach + 8)
        position = window.count
        window.frames[position] = resize_image(frame.image, size, cv2.INTER_AREA)
        window.count += 1
        pending[position] = frame
        if position - reach in pending:
            yield emit(position - reach)
    while pending:
        yield emit(min(pending))


def cell_rewards(error: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Each box's mean error divided by the frame's mean error.

    Args:
        error: (h, w) float error map (:meth:`Context.error`).
        boxes: (C, 4) xyxy boxes as fractions of the image (clipped to it).

    Returns:
        (C,) float64 rewards, 1 for a box as wrong as the frame on average; all 1 when the error is 0 everywhere.
    """
    h, w = error.shape
    mean = float(error.mean())
    if mean <= 0:
        return np.ones(len(boxes))
    integral = cv2.integral(error.astype(np.float64))  # (h + 1, w + 1)
    x0 = np.clip(np.floor(boxes[:, 0] * w), 0, w - 1).astype(int)
    y0 = np.clip(np.floor(boxes[:, 1] * h), 0, h - 1).astype(int)
    x1 = np.maximum(np.clip(np.ceil(boxes[:, 2] * w), 0, w).astype(int), x0 + 1)
    y1 = np.maximum(np.clip(np.ceil(boxes[:, 3] * h), 0, h).astype(int), y0 + 1)
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return total / ((x1 - x0) * (y1 - y0)) / mean


def fuse_cells(probs: np.ndarray, boxes: np.ndarray, context: Context, weight: float) -> np.ndarray:
    """(C,) cell scores ``probs ** (1 - weight) * rewards ** weight``, renormalised, from D's (C,) probabilities
    and the rewards of the cells' (C, 4) xyxy-fraction boxes; cells of probability 0 stay at 0. ``probs``
    unchanged when ``weight`` is 0 or every score is 0."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"cell_weight must be in [0, 1], got {weight!r}")
    if weight == 0:
        return probs
    p = probs.astype(np.float64)
    fused = np.where(p > 0, p ** (1.0 - weight) * cell_rewards(context.error(), boxes) ** weight, 0.0)
    total = fused.sum()
    return (fused / total).astype(probs.dtype) if total > 0 else probs


def fuse_mask(mask: np.ndarray, box: np.ndarray, foreground: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * mask + weight * foreground`` inside ``box`` (xyxy pixels), ``(1 - weight) * mask``
    outside it; ``mask``, ``foreground``: (H, W) float in [0, 1] at the frame's size."""
    if weight == 0:
        return mask
    h, w = mask.shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    inside = np.zeros_like(mask)
    inside[y0:y1, x0:x1] = foreground[y0:y1, x0:x1]
    return ((1.0 - weight) * mask + weight * inside).astype(mask.dtype)
