"""Spatial transformer T (differentiable crop), its inverse T^-1 and box helpers.

Box convention everywhere in the models: a tensor (..., 4) = (cx, cy, w, h), the box centre and size as
fractions of the image width and height (the image spans [0, 1] x [0, 1], x to the right, y down).
Pixel boxes for users are xyxy in pixels: x0 = (cx - w/2) * W, etc.

``crop`` resamples the box to an S x S patch with ``affine_grid``/``grid_sample`` (theta maps output
coordinates in [-1, 1] to input coordinates: x_in = (2 cx - 1) + w x_out). ``uncrop`` is the analytic
inverse: it resamples a patch back into an H x W frame, zero outside the box. Gradients flow to the box
through both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_theta(box: torch.Tensor) -> torch.Tensor:
    """(B,4) boxes -> (B,2,3) affine matrices from patch coords to image coords (both in [-1,1])."""
    cx, cy, w, h = box.unbind(-1)
    zero = torch.zeros_like(cx)
    row0 = torch.stack([w, zero, 2 * cx - 1], dim=-1)
    row1 = torch.stack([zero, h, 2 * cy - 1], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def uncrop_theta(box: torch.Tensor) -> torch.Tensor:
    """(B,4) boxes -> (B,2,3) affine matrices from image coords to patch coords (inverse of crop_theta)."""
    cx, cy, w, h = box.unbind(-1)
    zero = torch.zeros_like(cx)
    row0 = torch.stack([1 / w, zero, -(2 * cx - 1) / w], dim=-1)
    row1 = torch.stack([zero, 1 / h, -(2 * cy - 1) / h], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def crop(image: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor:
    """T: (B,C,H,W) images, (B,4) boxes -> (B,C,size,size) patches (zeros where the box leaves the image)."""
    grid = F.affine_grid(crop_theta(box), [image.shape[0], image.shape[1], size, size], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def uncrop(patch: torch.Tensor, box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """T^-1: (B,C,S,S) patches, (B,4) boxes -> (B,C,height,width), zero outside the box."""
    grid = F.affine_grid(uncrop_theta(box), [patch.shape[0], patch.shape[1], height, width], align_corners=False)
    return F.grid_sample(patch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def expand_box(box: torch.Tensor, fraction: float) -> torch.Tensor:
    """Enlarge each box's width and height by ``fraction`` (0.15 = the paper's 15%), same centre."""
    return torch.cat([box[..., :2], box[..., 2:] * (1 + fraction)], dim=-1)


def box_to_xyxy(box: torch.Tensor, width: float = 1.0, height: float = 1.0) -> torch.Tensor:
    """(...,4) cxcywh fractions -> (...,4) x0, y0, x1, y1 scaled by the image size."""
    cx, cy, w, h = box.unbind(-1)
    return torch.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], -1)


def box_mask(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Hard rectangle masks (B,1,H,W) in {0,1}: pixel centres inside the box. No gradient."""
    x0, y0, x1, y1 = box_to_xyxy(box.detach(), width, height).unbind(-1)
    xs = torch.arange(width, device=box.device, dtype=box.dtype) + 0.5
    ys = torch.arange(height, device=box.device, dtype=box.dtype) + 0.5
    inside_x = (xs[None, :] >= x0[:, None]) & (xs[None, :] < x1[:, None])
    inside_y = (ys[None, :] >= y0[:, None]) & (ys[None, :] < y1[:, None])
    return (inside_y[:, :, None] & inside_x[:, None, :]).to(box.dtype)[:, None]


def soft_box_mask(box: torch.Tensor, height: int, width: int, softness: float = 1.0) -> torch.Tensor:
    """Differentiable rectangle masks (B,1,H,W): product of sigmoids of the signed distance (in pixels,
    divided by ``softness``) to the four edges. Gradients flow to the box."""
    x0, y0, x1, y1 = box_to_xyxy(box, width, height).unbind(-1)
    xs = torch.arange(width, device=box.device, dtype=box.dtype) + 0.5
    ys = torch.arange(height, device=box.device, dtype=box.dtype) + 0.5
    mx = torch.sigmoid((xs[None] - x0[:, None]) / softness) * torch.sigmoid((x1[:, None] - xs[None]) / softness)
    my = torch.sigmoid((ys[None] - y0[:, None]) / softness) * torch.sigmoid((y1[:, None] - ys[None]) / softness)
    return (my[:, :, None] * mx[:, None, :])[:, None]
