"""Inpainting network I: a U-Net that fills a rectangular hole from the surrounding image.

Input: ``image`` (B, 3, H, W) float in [0, 1] and ``hole`` (B, 1, H, W) in {0, 1} (1 = removed).
The network sees the image with the hole zeroed plus the hole mask (4 channels) and predicts the whole
image; :meth:`InpaintingUNet.inpaint` composites its prediction into the hole only, so pixels outside
the hole are the input's. Any H, W works: the input is padded to a multiple of 2^(levels-1).

Paper (section 3.6): 6 levels with 8, 16, 32, 64, 128, 256 channels, trained from scratch on the
target domain with random rectangles removed, L2 + perceptual loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class InpaintingUNet(nn.Module):
    def __init__(self, channels: list[int] | tuple[int, ...] = (8, 16, 32, 64, 128, 256)) -> None:
        super().__init__()
        self.channels = list(channels)
        self.down = nn.ModuleList()
        cin = 4
        for c in self.channels:
            self.down.append(_block(cin, c))
            cin = c
        self.up = nn.ModuleList()
        for c in reversed(self.channels[:-1]):
            self.up.append(_block(cin + c, c))
            cin = c
        self.head = nn.Conv2d(cin, 3, 1)

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) image in [0,1], (B,1,H,W) hole -> (B,3,H,W) predicted full image in [0,1]."""
        h, w = image.shape[-2:]
        m = 2 ** (len(self.channels) - 1)
        ph, pw = (-h) % m, (-w) % m
        x = torch.cat([image * (1 - hole), hole], dim=1)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        out = torch.sigmoid(self.head(x))
        return out[..., :h, :w]

    def inpaint(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Background image I_bar: the prediction inside the hole, the input outside. (B,3,H,W)."""
        return hole * self.forward(image, hole) + (1 - hole) * image
