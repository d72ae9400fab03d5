"""``benchmarks/reward_rank.py``: the scores it compares backgrounds by."""

import sys
from pathlib import Path

import numpy as np
import torch

from inpaintseg.models.unet import InpaintingUNet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
try:
    import reward_rank
finally:
    sys.path.pop(0)


def test_object_box_is_the_annotation_bounding_box_in_fractions():
    mask = np.zeros((40, 80), bool)
    mask[10:30, 20:40] = True
    assert np.allclose(reward_rank.object_box(mask), [0.375, 0.5, 0.25, 0.5])
    assert reward_rank.object_box(np.zeros((40, 80), bool)) is None


def test_the_box_on_the_temporal_error_wins_and_the_product_needs_both_backgrounds():
    """A frame whose temporal error sits on a square: the square's box scores highest under ``temporal`` and every
    other score is finite, one per box; where the temporal error is zero, the product is zero whatever the
    inpainter does."""
    torch.manual_seed(0)
    h, w = 48, 80
    image = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    error = np.zeros((h, w), np.float32)
    error[12:36, 30:50] = 1.0
    boxes = torch.tensor([[0.5, 0.5, 0.25, 0.5], [0.15, 0.3, 0.25, 0.5], [0.85, 0.7, 0.25, 0.5]])
    scores = reward_rank.hole_scores(image, error, InpaintingUNet([4, 8]).eval(), boxes, hole_expand=0.0)
    assert set(scores) == set(reward_rank.SCORES)
    assert all(s.shape == (3,) and np.isfinite(s).all() for s in scores.values())
    assert scores["temporal"][0] > scores["temporal"][1:].max()
    assert scores["product"][1:].max() == 0.0 and scores["product"][0] > 0
