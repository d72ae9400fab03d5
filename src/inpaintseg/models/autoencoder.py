"""Segmentation/synthesis network S (section 3.6, "Synthesis Network"): a true bottleneck auto-encoder.

Input: ``patch`` (B, 3, S, S) float in [0, 1], the crop T(I, b) of the chosen box (S = 128 in the paper).
Encoder: a ResNet-50 (paper), ResNet-18 or a small 4-stage conv net, giving a (B, C_e, S/16 or S/32, ...)
feature map. Bottleneck: a fully connected latent of ``latent`` dims (600 in the paper) plus a spatially
invariant ``global_latent`` (256) from global average pooling, with dropout. There are NO skip connections
from encoder to decoder: S must redraw the object from the latent alone, which it can do for a person but
not for background detail; that is what makes the mask select the object (docs/method.md, "Failure modes").
Decoder: the second half of a U-Net, starting from an (S/16 x S/16) map with the global latent replicated
over it, 4 stages of (upsample x2, conv-BN-ReLU x2) with ``decoder_channels`` (512, 256, 128, 64).

Outputs: ``foreground`` (B, 3, S, S) in [0, 1] (the image I_hat) and ``mask`` (B, 1, S, S) in [1e-4, 1].

``mask_skips`` (beyond the paper; off in the ``paper`` preset): a small head refines the mask logit from
the decoder's last features, the encoder's stride-2 and stride-4 features and the crop itself. Only the
mask sees these skips; the foreground image still comes from the bottleneck alone, so S still cannot copy
the background into I_hat, and L_fg still tells the mask where I_hat beats the background. The skips let the
mask follow image edges that a 4x4 bottleneck map cannot place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintseg.models.backbones import Normalize, resnet


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _encoder(name: str, width: int, pretrained: str) -> tuple[nn.Sequential, int, int, dict[int, tuple[int, int]]]:
    """Returns (module, output channels, stride, taps): ``taps`` maps the index of a layer of the Sequential
    whose output is at stride 2 or 4 to (stride, channels)."""
    if name == "small":
        chans = [width, 2 * width, 4 * width, 8 * width]
        layers, cin = [], 3
        for c in chans:
            layers += [_conv_bn_relu(cin, c, 2), _conv_bn_relu(c, c)]
            cin = c
        return nn.Sequential(*layers), cin, 16, {1: (2, width), 3: (4, 2 * width)}
    net = resnet(name, pretrained)
    body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    layer1_channels = net.layer1[-1].conv1.in_channels if name == "resnet50" else 64
    return body, net.fc.in_features, 32, {2: (2, 64), 4: (4, layer1_channels)}


class SegmentationAutoencoder(nn.Module):
    def __init__(
        self,
        crop_size: int = 128,
        encoder: str = "resnet50",
        width: int = 64,
        latent: int = 600,
        global_latent: int = 256,
        decoder_channels: list[int] | tuple[int, ...] = (512, 256, 128, 64),
        dropout: float = 0.3,
        pretrained: str = "none",
        mask_skips: bool = False,
    ) -> None:
        super().__init__()
        if crop_size % 16:
            raise ValueError("crop_size must be a multiple of 16")
        self.crop_size = crop_size
        self.normalize = Normalize()
        self.encoder, enc_channels, stride, self.taps = _encoder(encoder, width, pretrained)
        enc_side = max(1, crop_size // stride)
        self.to_latent = nn.Linear(enc_channels * enc_side * enc_side, latent)
        self.to_global = nn.Linear(enc_channels, global_latent)
        self.dropout = nn.Dropout(dropout)
        self.map_side = crop_size // 16
        c0 = decoder_channels[0]
        self.from_latent = nn.Linear(latent, c0 * self.map_side * self.map_side)
        self.c0 = c0
        stages, cin = [], c0 + global_latent
        for c in decoder_channels:
            stages.append(nn.Sequential(_conv_bn_relu(cin, c), _conv_bn_relu(c, c)))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.out = nn.Conv2d(cin, 4, 1)
        self.mask_head = None
        if mask_skips:
            skip_channels = sum(c for _, c in self.taps.values())
            self.mask_head = nn.Sequential(_conv_bn_relu(cin + skip_channels + 3, 32), _conv_bn_relu(32, 32),
                                           nn.Conv2d(32, 1, 1))
            nn.init.zeros_(self.mask_head[-1].weight)  # starts as the bottleneck's mask
            nn.init.zeros_(self.mask_head[-1].bias)

    def decoder_parameters(self) -> list[nn.Parameter]:
        head = [] if self.mask_head is None else [*self.mask_head.parameters()]
        return [*self.from_latent.parameters(), *self.stages.parameters(), *self.out.parameters(), *head]

    def forward(self, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,S,S) in [0,1] -> (foreground (B,3,S,S) in [0,1], mask (B,1,S,S) in [1e-4,1])."""
        feats, skips = self.normalize(patch), []
        for i, layer in enumerate(self.encoder):
            feats = layer(feats)
            if self.mask_head is not None and i in self.taps:
                skips.append(feats)
        z = self.dropout(torch.relu(self.to_latent(feats.flatten(1))))
        g = self.dropout(torch.relu(self.to_global(feats.mean(dim=(2, 3)))))
        b, m = patch.shape[0], self.map_side
        x = self.from_latent(z).view(b, self.c0, m, m)
        x = torch.cat([x, g[:, :, None, None].expand(-1, -1, m, m)], dim=1)
        for stage in self.stages:
            x = stage(x)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.out(x).float()  # float32 heads also under bf16 autocast
        foreground = torch.sigmoid(out[:, :3])
        mask_logit = out[:, 3:4]
        if self.mask_head is not None:
            side = x.shape[-2:]
            ups = [F.interpolate(f, size=side, mode="bilinear", align_corners=False) for f in skips]
            mask_logit = mask_logit + self.mask_head(torch.cat([x, *ups, patch.to(x.dtype)], dim=1)).float()
        mask = torch.sigmoid(mask_logit).clamp(1e-4, 1.0)
        return foreground, mask
