"""``benchmarks/reward_choice.py``: the scores it compares the detector's proposals by."""

import sys
from pathlib import Path

import numpy as np
import torch

from inpaintseg.models.unet import InpaintingUNet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
try:
    import reward_choice
finally:
    sys.path.pop(0)


def test_object_overlaps_of_centre_boxes():
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.6, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]])
    assert np.allclose(reward_choice.object_overlaps(boxes, [0.5, 0.5, 0.2, 0.2]), [1.0, 1 / 3, 0.0])


def test_standardised_has_zero_mean_and_unit_mean_deviation():
    x = reward_choice.standardised(np.array([1.0, 2.0, 6.0]))
    assert abs(x.mean()) < 1e-12 and np.isclose(np.abs(x).mean(), 1.0)
    assert (reward_choice.standardised(np.ones(4)) == 0).all()


def test_each_proposal_gets_every_score_and_the_temporal_error_picks_its_box():
    """A frame whose temporal error sits on a square: the square's box scores highest under ``temporal``; every
    score has one finite value per proposal; ``detector`` is D's probability as given."""
    torch.manual_seed(0)
    h, w = 48, 80
    rng = np.random.default_rng(0)
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    flow = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    error = np.zeros((h, w), np.float32)
    error[12:36, 30:50] = 1.0
    boxes = torch.tensor([[0.5, 0.5, 0.25, 0.5], [0.15, 0.3, 0.25, 0.5], [0.85, 0.7, 0.4, 0.3]])
    probs = np.array([0.2, 0.5, 0.3])
    net = InpaintingUNet([4, 8]).eval()
    scores = reward_choice.proposal_scores(image, flow, error, probs, boxes, net, net, hole_expand=0.0)
    assert set(scores) == set(reward_choice.SCORES) - {"best"}
    assert all(s.shape == (3,) and np.isfinite(s).all() for s in scores.values())
    assert scores["temporal"].argmax() == 0
    assert (scores["detector"] == probs).all()
    both = reward_choice.standardised(scores["inpainter"]) + reward_choice.standardised(scores["flow"])
    assert np.allclose(scores["inpainter_flow"], both)


def test_zero_flow_background_scores_the_moving_square_highest():
    """``flow_zero``: a flow image that is zero flow except on a square scores the square's box highest."""
    from inpaintseg.data.flow import ZERO_FLOW_RGB

    h, w = 48, 80
    flow = np.empty((h, w, 3), np.uint8)
    flow[:] = ZERO_FLOW_RGB
    flow[12:36, 50:70] = (200, 90, 120)
    boxes = torch.tensor([[0.5, 0.5, 0.25, 0.5], [0.75, 0.5, 0.25, 0.5], [0.15, 0.3, 0.25, 0.5]])
    net = InpaintingUNet([4, 8]).eval()
    image = np.zeros((h, w, 3), np.uint8)
    scores = reward_choice.proposal_scores(image, flow, np.ones((h, w), np.float32), np.ones(3) / 3, boxes, net,
                                           net, hole_expand=0.0)
    assert scores["flow_zero"].argmax() == 1 and scores["flow_zero"][2] == 0.0
