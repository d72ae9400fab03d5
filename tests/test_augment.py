"""Tests of stage 2's training-time augmentation (``train.zoom``, ``train.jitter``)."""

import pytest
import torch
import torch.nn.functional as F

from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.data import jitter_colours, zoom_grids, zoom_rows
from inpaintseg.engine.pipeline import prepare_data
from inpaintseg.engine.train import stage2_batch
from inpaintseg.objective import RunningStats
from tests.helpers import TINY


def test_zoom_one_is_the_identity_and_zoom_two_shows_the_chosen_quarter():
    x = torch.rand(2, 3, 12, 20, generator=torch.Generator().manual_seed(0))
    same = zoom_rows(x, zoom_grids(torch.tensor([1.0, 1.0]), torch.tensor([[0.3, 0.7], [1.0, 0.0]]), 12, 20))
    assert torch.allclose(same, x, atol=1e-5)
    top_right = zoom_rows(x, zoom_grids(torch.tensor([2.0, 2.0]), torch.tensor([[1.0, 0.0], [1.0, 0.0]]), 12, 20))
    expected = F.interpolate(x[:, :, :6, 10:], size=(12, 20), mode="bilinear", align_corners=False)
    assert torch.allclose(top_right[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-5)  # borders: neighbours
    bottom_left = zoom_rows(x[:1], zoom_grids(torch.tensor([2.0]), torch.tensor([[0.0, 1.0]]), 12, 20))
    assert not torch.allclose(bottom_left[0], top_right[0], atol=1e-2)


def test_jitter_keeps_an_image_and_its_background_equal_where_they_were():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(4, 3, 8, 8, generator=g)
    background = image.clone()
    background[:, :, 2:5, 2:5] = torch.rand(4, 3, 3, 3, generator=g)  # the "object"
    factors = 1.0 + 0.4 * (2.0 * torch.rand(4, 3, generator=g) - 1.0)
    a, b = jitter_colours(image, factors), jitter_colours(background, factors)
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[2:5, 2:5] = False
    assert torch.equal(a[..., outside], b[..., outside])
    assert not torch.allclose(a, image, atol=1e-3)  # it does change the colours
    assert torch.allclose(jitter_colours(image, torch.ones(4, 3)), image, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)


def test_stage2_batch_zooms_image_background_and_target_alike(tiny_video, tmp_path):
    cfg = resolve("cpu", overrides=[*TINY, "data.background=temporal", "data.temporal_offsets=[-2,2]"])
    bank = prepare_data(cfg, tiny_video, tmp_path, progress=False)
    plain = stage2_batch(bank, cfg, 5, torch.device("cpu"), None, RunningStats())
    cfg.train.zoom, cfg.train.jitter = 2.0, 0.0
    zoomed = stage2_batch(bank, cfg, 5, torch.device("cpu"), None, RunningStats())
    for a, b in zip(plain[:3], zoomed[:3], strict=True):
        assert a.shape == b.shape and not torch.allclose(a, b)
    # the same window everywhere: where the plain image equals its background, the error stays small when zoomed
    err = lambda batch: (batch[0] - batch[1]).pow(2).mean().item()  # noqa: E731
    assert err(zoomed) < 4 * err(plain) + 1e-4
    cfg.train.zoom, cfg.train.jitter = 1.0, 0.3
    jittered = stage2_batch(bank, cfg, 5, torch.device("cpu"), None, RunningStats())
    assert torch.equal(jittered[2], plain[2]) and not torch.allclose(jittered[0], plain[0])
