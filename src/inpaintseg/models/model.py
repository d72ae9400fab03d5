"""The inference graph D + T + S, and the resynthesis F used for training (eq. 1).

``InpaintSegModel.forward(image)`` takes (B, 3, H, W) images in [0, 1] and returns the proposals of D
for every cell; :meth:`InpaintSegModel.segment` crops a box with T and runs S; :func:`resynthesize`
composes F(I) = T^-1(I_hat * S) + I_bar * (1 - T^-1(S)). The inpainter I is a separate network used only
for training (models/unet.py).
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintseg.config import Config
from inpaintseg.models.autoencoder import SegmentationAutoencoder
from inpaintseg.models.crop import crop, uncrop
from inpaintseg.models.detector import Detector, Proposals


class InpaintSegModel(nn.Module):
    def __init__(self, detector: Detector, segmenter: SegmentationAutoencoder) -> None:
        super().__init__()
        self.detector = detector
        self.segmenter = segmenter

    def forward(self, image: torch.Tensor) -> Proposals:
        """(B,3,H,W) in [0,1] -> proposals of every cell."""
        return self.detector(image)

    def segment(self, image: torch.Tensor, box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop each (B,4) box to the segmenter's size and run S -> (foreground, mask), (B,3|1,S,S)."""
        return self.segmenter(crop(image, box, self.segmenter.crop_size))


def resynthesize(
    background: torch.Tensor, foreground: torch.Tensor, mask: torch.Tensor, box: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """F(I) (eq. 1): (B,3,H,W) background, (B,3,S,S) foreground, (B,1,S,S) mask, (B,4) box ->
    (resynthesised image (B,3,H,W), mask in image coordinates T^-1(S) (B,1,H,W))."""
    h, w = background.shape[-2:]
    full_mask = uncrop(mask, box, h, w)
    full_fg = uncrop(foreground * mask, box, h, w)
    return full_fg + background * (1 - full_mask), full_mask


def build_model(cfg: Config) -> InpaintSegModel:
    """Build D and S from a config (see config.py for each field)."""
    d, s = cfg.detector, cfg.segmenter
    detector = Detector(
        input_size=tuple(d.input_size),
        scale_range=tuple(d.scale_range),
        offset_range=d.offset_range,
        border=d.border,
        pretrained=cfg.train.pretrained,
        backbone=d.backbone,
    )
    segmenter = SegmentationAutoencoder(
        crop_size=s.crop_size,
        encoder=s.encoder,
        width=s.width,
        latent=s.latent,
        global_latent=s.global_latent,
        decoder_channels=s.decoder_channels,
        dropout=s.dropout,
        pretrained=cfg.train.pretrained,
        mask_skips=s.mask_skips,
    )
    return InpaintSegModel(detector, segmenter)
