"""Perceptual feature extractor phi: low-level ResNet-18 features (conv1 and layer1), frozen.

Input (B, 3, H, W) in [0, 1]; output a list of feature maps [(B, 64, H/2, W/2), (B, 64, H/4, W/4)].
With ``pretrained="imagenet"`` these are ImageNet features as in the paper (eq. 4). Without ImageNet
weights they are fixed random convolution features (seeded), which still compare local structure.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintseg.models.backbones import Normalize, resnet
from inpaintseg.models.crop import box_to_xyxy, crop


class PerceptualFeatures(nn.Module):
    def __init__(self, pretrained: str = "none", seed: int = 1234) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = resnet("resnet18", pretrained)
        self.normalize = Normalize()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.block = nn.Sequential(net.maxpool, net.layer1)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PerceptualFeatures:  # always frozen, BN in eval mode
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        a = self.stem(self.normalize(image))
        return [a, self.block(a)]


def perceptual_distance(phi: PerceptualFeatures, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared feature distance, (B,). Gradients flow to ``x`` (and ``y``)."""
    total = 0
    for fx, fy in zip(phi(x), phi(y), strict=True):
        total = total + (fx.float() - fy.float()).pow(2).mean(dim=(1, 2, 3))
    return total


def perceptual_distance_in_window(
    phi: PerceptualFeatures, x: torch.Tensor, y: torch.Tensor, window: torch.Tensor, size: int
) -> torch.Tensor:
    """The perceptual distance of two (B, 3, H, W) images that differ only inside ``window`` (B, 4) cxcywh,
    computed on the window's (B, 3, size, size) crops and scaled by the window's share of the frame, so it
    estimates the full-frame :func:`perceptual_distance` (B,) at a fraction of its cost. The window is a
    constant: gradients flow to ``x`` only. What it leaves out: features that straddle the window's edge."""
    window = window.detach()
    x0, y0, x1, y1 = box_to_xyxy(window).clamp(0, 1).unbind(-1)
    share = (x1 - x0) * (y1 - y0)  # the window's area inside the frame, as a fraction of the frame
    return perceptual_distance(phi, crop(x, window, size), crop(y, window, size)) * share
