"""What the learning tests measure: how well a saved model finds and segments the figures of a synthetic
benchmark, and how well an inpainter fills held-out holes. Ground truth is read here, for the assertions only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inpaintseg.boxes import box_from_mask, box_iou
from inpaintseg.data.image_io import read_mask, resize_image
from inpaintseg.data.sources import open_source
from inpaintseg.engine.train_inpainter import load_inpainter, random_holes
from inpaintseg.models.crop import box_to_xyxy, uncrop
from inpaintseg.predict import Predictor

LEARN = [
    "data.size=[96,64]", "detector.input_size=[96,96]", "segmenter.crop_size=32", "segmenter.width=8",
    "segmenter.latent=32", "segmenter.global_latent=8", "segmenter.decoder_channels=[32,16,16,8]",
    "inpainter.channels=[8,8,16,16,16,16]", "inpainter.batch=8", "inpainter.minutes=0", "train.batch=8",
    "train.minutes=0", "train.log_every=10", "train.checkpoint_every=1000", "train.image_every=1000",
    "data.flow=false", "data.background=known", "train.init=none",
]
"""The cpu preset at sizes that learn within seconds: a 6x6 grid (16 inner cells), 32-px crops."""


def frames_and_masks(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every frame of a synthetic benchmark (RGB uint8) with its figure mask (bool), in the same order."""
    images, masks = [], []
    for seq in open_source(root).sequences:
        for frame in seq:
            images.append(frame.image)
            masks.append(read_mask(root / "Annotations" / seq.name / f"{frame.name}.png") > 0)
    return images, masks


def _box_of(mask: np.ndarray) -> np.ndarray:
    """The figure's tight box as fractions of the frame, x0 y0 x1 y1."""
    h, w = mask.shape
    return box_from_mask(mask.astype(np.float32), None) / np.array([w, h, w, h])


@torch.no_grad()
def detection_score(model_path: Path, images: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """The detector's expected box IoU with the figure, sum_c p_c IoU(box_c, figure's box), averaged over the
    frames that show a figure: near 0 for a detector that spreads p over the grid or prefers the background,
    near 1 for one that puts p on a tight box around the figure."""
    predictor = Predictor.load(model_path, refine="none")
    scores = []
    for image, mask in zip(images, masks, strict=True):
        if not mask.any():
            continue
        x = torch.from_numpy(resize_image(image, predictor.size).copy()).permute(2, 0, 1)[None].float() / 255
        props = predictor.model(x)
        boxes = box_to_xyxy(props.boxes[0]).numpy()
        scores.append(float((props.probs[0].numpy() * box_iou(boxes, _box_of(mask)[None])[:, 0]).sum()))
    return float(np.mean(scores))


@torch.no_grad()
def mask_contrast(model_path: Path, images: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """S's mask for the figure's own box (enlarged by 20%): its mean on the figure minus its mean on the rest
    of the box, averaged over the frames that show a figure. What S learnt apart from where D looks, and
    whatever the mask's overall level: about 0 for a mask that ignores the figure, up to 1."""
    predictor = Predictor.load(model_path, refine="none")
    contrasts = []
    for image, mask in zip(images, masks, strict=True):
        if not mask.any():
            continue
        x0, y0, x1, y1 = _box_of(mask)
        box = torch.tensor([[(x0 + x1) / 2, (y0 + y1) / 2, 1.2 * (x1 - x0), 1.2 * (y1 - y0)]], dtype=torch.float32)
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
        _, m = predictor.model.segment(x, box)
        full = uncrop(m, box, *mask.shape)[0, 0].numpy()
        inside = uncrop(torch.ones_like(m), box, *mask.shape)[0, 0].numpy() > 0.5
        contrasts.append(full[mask & inside].mean() - full[~mask & inside].mean())
    return float(np.mean(contrasts))


@torch.no_grad()
def inpainting_error(inpainter_path: Path, images: list[np.ndarray], size: tuple[int, int]) -> float:
    """Mean squared error inside fixed random holes (seeded) of the inpainter's fill, at ``size`` (W, H)."""
    net = load_inpainter(inpainter_path)
    x = torch.from_numpy(np.stack([resize_image(im, size) for im in images])).permute(0, 3, 1, 2).float() / 255
    holes = random_holes(len(x), size[1], size[0], 0.2, 0.5, torch.Generator().manual_seed(0))
    err = (net.inpaint(x, holes) - x).pow(2).mean(1, keepdim=True)
    return float((err * holes).sum() / holes.sum())
