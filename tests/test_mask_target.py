"""GrabCut mask targets from the background error (data/mask_target.py) and their use in stage 2."""

import numpy as np
import pytest
import torch

from inpaintseg.config import resolve
from inpaintseg.data.mask_target import grabcut_target
from inpaintseg.data.synth import generate
from inpaintseg.engine.pipeline import prepare_data, run_training
from inpaintseg.losses import background_mask_target, error_map
from inpaintseg.models.model import build_model
from inpaintseg.objective import RunningStats, stage2_losses
from tests.helpers import TINY
from tests.test_method import tiny_cfg


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _textured_background(rng: np.random.Generator, h: int = 96, w: int = 160) -> np.ndarray:
    """A textured green background (H, W, 3) uint8."""
    bg = np.zeros((h, w, 3), np.uint8)
    bg[..., 1] = 120 + rng.integers(-25, 25, (h, w))
    bg[..., 0] = 60 + rng.integers(-15, 15, (h, w))
    return bg


def _scene_with_a_ghost(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured green background, a red figure with a blue shirt, and a background estimate that keeps the
    figure's middle (the ghost a slow object leaves in a temporal median): the error is low there."""
    rng = np.random.default_rng(seed)
    h, w = 96, 160
    bg = _textured_background(rng, h, w)
    image = bg.copy()
    figure = np.zeros((h, w), bool)
    figure[20:80, 70:92] = True
    image[figure] = (200, 40, 40)
    image[35:55, 70:92] = (40, 40, 210)  # the shirt
    estimate = bg.copy()
    estimate[30:70, 74:88] = image[30:70, 74:88]  # ghost: the estimate shows the figure's middle
    return image, estimate, figure


def test_grabcut_target_fills_the_ghost_hole():
    image, estimate, figure = _scene_with_a_ghost()
    err = ((image.astype(float) - estimate) / 255) ** 2
    ratio = err.mean(-1) / err.mean()
    thresholded = ratio >= 3  # the ramp target's >= 0.5 level
    target = grabcut_target(image, estimate)
    assert target.dtype == np.uint8 and target.shape == figure.shape and set(np.unique(target)) <= {0, 1}
    assert _iou(thresholded, figure) < 0.65  # the error leaves the ghost hole...
    assert _iou(target.astype(bool), figure) > 0.9  # ...GrabCut's colour model fills it


def test_grabcut_target_is_deterministic():
    # random colours: GrabCut's k-means start (OpenCV's global RNG) changes the result unless it is seeded
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    estimate = image.copy()
    estimate[10:38, 20:44] = rng.integers(0, 256, (28, 24, 3))
    first = grabcut_target(image, estimate)
    other_image, other_estimate, _ = _scene_with_a_ghost(seed=5)
    grabcut_target(other_image, other_estimate)  # advances OpenCV's global RNG in between
    assert np.array_equal(grabcut_target(image, estimate), first)
    assert np.array_equal(grabcut_target(image, estimate), first)


def test_grabcut_targets_on_threads_equal_the_serial_ones():
    """attach_mask_targets runs GrabCut on one thread per core: same targets, same order as one at a time."""
    from inpaintseg.engine.data import parallel_map

    rng = np.random.default_rng(3)
    pairs = []
    for seed in range(8):
        image, estimate, _ = _scene_with_a_ghost(seed)
        estimate[5:15, 5:25] = rng.integers(0, 256, (10, 20, 3))  # random colours: the k-means start matters
        pairs.append((image, estimate))
    serial = [grabcut_target(*pair) for pair in pairs]
    threaded = parallel_map(lambda pair: grabcut_target(*pair), pairs, "targets", "frame", False)
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded, strict=True))
    assert len({t.tobytes() for t in serial}) > 1


def test_grabcut_target_is_empty_without_a_foreground():
    image, _, _ = _scene_with_a_ghost()
    noisy = np.clip(image.astype(int) + np.random.default_rng(1).integers(-2, 3, image.shape), 0, 255)
    assert grabcut_target(image, noisy.astype(np.uint8)).mean() < 0.01
    assert grabcut_target(image, image).sum() == 0  # zero error everywhere: no crash, empty target


def test_stage2_mask_term_follows_the_given_targets():
    cfg = tiny_cfg()
    cfg.sampling.method = "exhaustive"
    cfg.loss.reward = "excess"
    cfg.loss.w_mask_bg = 1.0
    model = build_model(cfg)
    images = torch.rand(2, 3, 64, 64)
    backgrounds = images.clone()
    backgrounds[:, :, 16:48, 24:40] = 0.5

    def mask_term(targets):
        torch.manual_seed(0)  # same dropout in S on every call
        _, terms, _ = stage2_losses(model, None, None, images, backgrounds, cfg, RunningStats(),
                                    torch.Generator().manual_seed(0), targets=targets)
        return terms["loss/mask_bg"]

    # BCE is linear in the target, so the term at a 0.5 target is the mean of those at 0 and 1
    zeros, ones, half = (mask_term(torch.full((2, 1, 64, 64), v)) for v in (0.0, 1.0, 0.5))
    assert abs(zeros - ones) > 1e-3
    assert half == pytest.approx((zeros + ones) / 2, rel=1e-4)
    # giving the ramp target explicitly reproduces the default (no targets) path
    level = error_map(backgrounds, images).mean(dim=(1, 2))
    ramp = background_mask_target(error_map(backgrounds, images)[:, None], level)
    assert mask_term(ramp) == pytest.approx(mask_term(None), rel=1e-5)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth"), camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)


def test_training_attaches_grabcut_targets_with_a_temporal_background(tiny_video, tmp_path):
    cfg = resolve("cpu", overrides=[*TINY, "data.background=temporal", "sampling.method=exhaustive"])
    assert cfg.loss.mask_target == "grabcut" and cfg.loss.w_mask_bg > 0
    bank = prepare_data(cfg, tiny_video, tmp_path, progress=False)
    assert bank.targets is not None and bank.targets.shape == (len(bank), 1, 64, 64)
    assert bank.targets.dtype == torch.uint8 and 0 < bank.targets.float().mean() < 0.5
    idx = torch.tensor([0, 3])
    assert torch.equal(bank.target_batch(idx), bank.targets[idx].float())


def test_grabcut_target_falls_back_to_the_ramp_with_the_inpainter(tiny_video, tmp_path, capsys):
    cfg = resolve("cpu", overrides=[*TINY, "inpainter.steps=1", "train.steps=2"])
    run_training(cfg, tiny_video, tmp_path, progress=False)
    assert "uses the ramp target" in capsys.readouterr().out
    assert cfg.loss.mask_target == "ramp"  # as resolved, and saved so in config.yaml
    assert "mask_target: ramp" in (tmp_path / "config.yaml").read_text()


def _scene_with_a_still_change(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A walking figure and, apart from it, a patch whose colour differs from the background estimate but does
    not move (a lighting change or a ghost): both have a large error; only the figure has flow."""
    rng = np.random.default_rng(seed)
    h, w = 96, 160
    bg = _textured_background(rng, h, w)
    image = bg.copy()
    figure = np.zeros((h, w), bool)
    figure[20:80, 30:52] = True
    image[figure] = (200, 40, 40)
    image[30:60, 110:135] = (190, 50, 60)  # the still change, coloured like the figure
    flow = rng.normal(0.0, 0.1, (h, w, 2)).astype(np.float32)  # DIS's noise on the stabilised background
    flow[figure] += (2.0, 0.0)  # the figure walks 2 px per frame
    return image, bg, flow, figure


def test_the_flow_drops_a_still_change_from_the_target():
    image, estimate, flow, figure = _scene_with_a_still_change()
    without = grabcut_target(image, estimate).astype(bool)
    with_flow = grabcut_target(image, estimate, flow).astype(bool)
    assert without[30:60, 110:135].mean() > 0.8  # the error alone takes the still patch for foreground
    assert with_flow[30:60, 110:135].mean() < 0.05  # with the flow it is left out...
    assert _iou(with_flow, figure) > 0.9  # ...and the figure stays


def test_a_flow_that_does_not_single_out_the_error_is_ignored():
    from inpaintseg.data.mask_target import combine_with_flow, error_ratio

    image, estimate, flow, _ = _scene_with_a_still_change()
    still = np.random.default_rng(1).normal(0.0, 0.1, flow.shape).astype(np.float32)  # the figure stands still
    ratio = error_ratio(image, estimate)
    assert combine_with_flow(ratio, still) is ratio
    assert np.array_equal(grabcut_target(image, estimate, still), grabcut_target(image, estimate))
    assert not np.array_equal(combine_with_flow(ratio, flow), ratio)


@pytest.mark.parametrize("w_bg_flow", ["1", "0"])  # at 0 the seeds are the flow's only use, and it is kept
def test_training_with_flow_seeds_the_targets_with_it(tiny_video, tmp_path, monkeypatch, w_bg_flow):
    from inpaintseg.data import mask_target

    seen = []
    real = mask_target.grabcut_target

    def spy(image, background, flow=None):
        seen.append(flow)
        return real(image, background, flow)

    monkeypatch.setattr(mask_target, "grabcut_target", spy)
    cfg = resolve("cpu", overrides=[*TINY, "data.background=temporal", "sampling.method=exhaustive",
                                    "data.flow=true", f"loss.w_bg_flow={w_bg_flow}"])
    bank = prepare_data(cfg, tiny_video, tmp_path, progress=False)
    assert cfg.data.flow
    assert bank.targets is not None and len(seen) == len(bank)
    valid = bank.flow_valid.tolist()
    assert any(valid)
    for flow, ok in zip(seen, valid, strict=True):
        assert (flow is not None) == ok
        if ok:
            assert flow.shape == (*bank.frames.shape[-2:], 2) and flow.dtype == np.float32
