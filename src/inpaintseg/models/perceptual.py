"""Perceptual feature extractor phi: low-level ResNet-18 features (conv1 and layer1), frozen.

Input (B, 3, H, W) in [0, 1]; output a list of feature maps [(B, 64, H/2, W/2), (B, 64, H/4, W/4)].
With ``pretrained="imagenet"`` these are ImageNet features as in the paper (eq. 4). Without ImageNet
weights they are fixed random convolution features (seeded), which still compare local structure.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintseg.models.backbones import Normalize, resnet


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
