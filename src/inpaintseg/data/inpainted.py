"""A per-frame background from the inpainter alone (``data.background=inpainted``; beyond the paper).

The paper inpaints, at every training step, the hole of each proposed box. Here the frozen inpainter instead
fills a fixed set of holes tiling the frame once per frame, and the fills are blended into one background
image per frame: each pixel takes mostly the fills of the holes whose centre is near it, where the inpainter
saw least of its surroundings. A moving subject inside such a hole cannot be re-synthesised from the rest of
the frame, so it stays out of the background, as in the paper's per-box fill; textured background can be, so it
does not stand out. With a background per frame, stage 2 runs as with the temporal background: the exhaustive
expectation of L_bg, the box-fit and GrabCut mask-target terms. It needs no neighbouring frames, so it serves
single images and unordered photo collections.

Images (N, 3, H, W) float in [0, 1]; holes are fractions ``HOLE`` of the frame's sides, placed every ``STRIDE``
of the sides (the last flush with the frame's right and bottom edges).
"""

from __future__ import annotations

import torch

from inpaintseg.models.unet import InpaintingUNet

HOLE = 0.4
"""Hole width and height as fractions of the frame's."""
STRIDE = 0.3
"""Spacing of the holes as a fraction of the frame's sides."""


def _starts(size: int, hole: int, stride: int) -> list[int]:
    starts = list(range(0, size - hole + 1, max(stride, 1)))
    if starts[-1] != size - hole:
        starts.append(size - hole)
    return starts


def hole_windows(height: int, width: int, hole: float = HOLE,
                 stride: float = STRIDE) -> list[tuple[int, int, int, int]]:
    """(y0, x0, hole_h, hole_w) of the tiling holes, in pixels."""
    hh, hw = max(1, round(hole * height)), max(1, round(hole * width))
    sh, sw = round(stride * height), round(stride * width)
    return [(y0, x0, hh, hw) for y0 in _starts(height, hh, sh) for x0 in _starts(width, hw, sw)]


def _weight(height: int, width: int, window: tuple[int, int, int, int]) -> torch.Tensor:
    """(H, W) weight of one hole's fill: 1 + the distance (pixels) to the hole's nearest edge that lies inside the
    frame (an edge on the frame's border gives no surroundings, so it does not count), 0 outside the hole."""
    y0, x0, hh, hw = window
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    big = float(height + width)
    dist = torch.full((height, width), big)
    if y0 > 0:
        dist = torch.minimum(dist, ys - y0)
    if y0 + hh < height:
        dist = torch.minimum(dist, y0 + hh - 1 - ys)
    if x0 > 0:
        dist = torch.minimum(dist, xs - x0)
    if x0 + hw < width:
        dist = torch.minimum(dist, x0 + hw - 1 - xs)
    inside = (ys >= y0) & (ys < y0 + hh) & (xs >= x0) & (xs < x0 + hw)
    return torch.where(inside, 1.0 + dist.clamp(0, big), torch.zeros(()))


@torch.no_grad()
def inpainted_background(inpainter: InpaintingUNet, images: torch.Tensor, hole: float = HOLE,
                         stride: float = STRIDE) -> torch.Tensor:
    """The blended fills of the tiling holes: images (N,3,H,W) in [0,1] -> backgrounds (N,3,H,W) in [0,1]."""
    n, _, h, w = images.shape
    total = torch.zeros_like(images)
    weights = torch.zeros(1, 1, h, w)
    for window in hole_windows(h, w, hole, stride):
        y0, x0, hh, hw = window
        mask = torch.zeros(1, 1, h, w)
        mask[..., y0 : y0 + hh, x0 : x0 + hw] = 1.0
        fill = inpainter.inpaint(images, mask.expand(n, -1, -1, -1))
        wgt = _weight(h, w, window)[None, None]
        total += wgt * fill
        weights += wgt
    return total / weights.clamp_min(1e-6)
