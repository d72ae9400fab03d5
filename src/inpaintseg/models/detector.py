"""Proposal detector D (section 3.6, "Detection Network"): one candidate box and probability per grid cell.

Input: ``image`` (B, 3, H, W) float in [0, 1] at any size; it is resized to ``input_size`` (W_d, H_d)
(128x128 in the paper) and passed through a ResNet-18 up to ``layer3`` (stride 16; ``backbone="small"``: the
same layout of basic blocks at half the channels, 32/64/128, trained from scratch), giving a grid of
G_h x G_w = H_d/16 x W_d/16 cells (8 x 8 = C = 64 cells in the paper). A 1x1 head predicts 5 numbers per
cell: 2 centre offsets, 2 scales, 1 logit.

Outputs (:class:`Proposals`), cells flattened row-major (index = row * G_w + col):
- ``logits`` (B, C): -inf on the ``border`` rings of cells, so their probability is exactly 0.
- ``probs`` (B, C): softmax of the logits.
- ``boxes`` (B, C, 4): (cx, cy, w, h) as fractions of the image (see models/crop.py). The centre is the
  cell centre plus ``tanh(o) * offset_range`` cell sizes; w, h = s_min + (s_max - s_min) * sigmoid(s).
- ``scale_logits`` (B, C, 2): the pre-activations of w, h (for the optional penalty on saturation).
The head is initialised small (weights x 0.01, bias 0): at the start boxes sit on their cell centres with
mid-range sizes and the probabilities are uniform over the inner cells.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from inpaintseg.models.backbones import Normalize, resnet

BACKBONES = ("resnet18", "small")


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Two ResNet basic blocks, the first with ``stride`` (a 1x1 projection where the shape changes)."""
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(BasicBlock(cin, cout, stride, down), BasicBlock(cout, cout))


def _backbone(name: str, pretrained: str) -> tuple[nn.Sequential, int]:
    """(B,3,H,W) -> (B,C,H/16,W/16): ResNet-18 up to layer3 (C = 256), or ``small`` at half width (C = 128;
    a quarter of the multiply-adds, no pretrained weights)."""
    if name == "resnet18":
        net = resnet("resnet18", pretrained)
        return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3), 256
    if name == "small":
        if pretrained != "none":
            warnings.warn(f"detector.backbone=small has no pretrained weights; pretrained={pretrained!r} applies to "
                          "the other networks only, the detector starts from random weights", stacklevel=3)
        w = 32
        stem = [nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        return nn.Sequential(*stem, _stage(w, w, 1), _stage(w, 2 * w, 2), _stage(2 * w, 4 * w, 2)), 4 * w
    raise ValueError(f"unknown detector backbone {name!r}; choose one of {', '.join(BACKBONES)}")


@dataclass
class Proposals:
    logits: torch.Tensor
    probs: torch.Tensor
    boxes: torch.Tensor
    scale_logits: torch.Tensor
    grid: tuple[int, int]


class Detector(nn.Module):
    def __init__(
        self,
        input_size: tuple[int, int] = (128, 128),
        scale_range: tuple[float, float] = (0.2, 0.8),
        offset_range: float = 1.5,
        border: int = 1,
        pretrained: str = "none",
        backbone: str = "resnet18",
    ) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.grid = (self.input_size[1] // 16, self.input_size[0] // 16)  # (G_h, G_w)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.offset_range = float(offset_range)
        self.border = int(border)
        gh, gw = self.grid
        if gh - 2 * self.border < 1 or gw - 2 * self.border < 1:
            raise ValueError(f"grid {gh}x{gw} has no inner cells with border={border}")
        self.normalize = Normalize()
        self.backbone, channels = _backbone(backbone, pretrained)
        self.head = nn.Sequential(nn.Conv2d(channels, 128, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(128, 5, 1))
        with torch.no_grad():
            self.head[-1].weight.mul_(0.01)
            self.head[-1].bias.zero_()
        ys, xs = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        self.register_buffer("cell_cx", ((xs + 0.5) / gw).flatten().float(), persistent=False)
        self.register_buffer("cell_cy", ((ys + 0.5) / gh).flatten().float(), persistent=False)
        inner = torch.zeros(gh, gw, dtype=torch.bool)
        inner[self.border : gh - self.border, self.border : gw - self.border] = True
        self.register_buffer("inner", inner.flatten(), persistent=False)

    def forward(self, image: torch.Tensor) -> Proposals:
        """(B,3,H,W) in [0,1] -> Proposals over the C = G_h * G_w cells."""
        w_in, h_in = self.input_size
        x = image
        if x.shape[-2:] != (h_in, w_in):
            x = F.interpolate(x, size=(h_in, w_in), mode="bilinear", align_corners=False, antialias=True)
        out = self.head(self.backbone(self.normalize(x))).float()  # (B, 5, G_h, G_w), float32 under autocast
        out = out.flatten(2).transpose(1, 2)  # (B, C, 5)
        gh, gw = self.grid
        offset = torch.tanh(out[..., 0:2]) * self.offset_range
        cx = self.cell_cx + offset[..., 0] / gw
        cy = self.cell_cy + offset[..., 1] / gh
        s_min, s_max = self.scale_range
        scale_logits = out[..., 2:4]
        wh = s_min + (s_max - s_min) * torch.sigmoid(scale_logits)
        boxes = torch.stack([cx, cy, wh[..., 0], wh[..., 1]], dim=-1)
        logits = out[..., 4].masked_fill(~self.inner, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return Proposals(logits=logits, probs=probs, boxes=boxes, scale_logits=scale_logits, grid=self.grid)
