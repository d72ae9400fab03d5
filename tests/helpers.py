"""Helpers shared by tests."""

import cv2
import numpy as np

TINY = [
    "data.background=inpainter", "sampling.method=importance",
    "data.size=[64,64]", "detector.input_size=[64,64]", "segmenter.crop_size=32", "segmenter.width=8",
    "segmenter.latent=16", "segmenter.global_latent=8", "segmenter.decoder_channels=[16,8,8,8]",
    "inpainter.channels=[4,8,8,8,8,8]", "inpainter.batch=4", "train.batch=4", "train.log_every=1",
    "train.checkpoint_every=2", "train.image_every=2", "inpainter.minutes=0", "train.minutes=0", "data.flow=false",
    "train.init=none",
]
"""Config overrides for a model that trains in seconds (tiny sizes, step budgets); later overrides win."""


def texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth multi-scale random texture, RGB uint8 (height, width, 3): plenty of SIFT keypoints."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((16, 1.0), (8, 0.8), (4, 0.6), (2, 0.4)):
        coarse = rng.random((height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        up = cv2.resize(coarse, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)
        acc += weight * up[cell : cell + height, cell : cell + width]
    acc -= acc.min()
    return np.round(255 * acc / acc.max()).astype(np.uint8)
