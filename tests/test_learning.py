"""Learning tests: a few dozen to a few hundred steps of the real training loops on tiny synthetic scenes, then
assertions that hold only if the networks learnt. Each one fails when the optimisers do nothing and when they
climb the gradient instead of descending it (checked by turning every optimizer's ``step()`` into a no-op, then
into a step up the gradient, in every process; docs/testing.md says how)."""

import pytest
import torch

from inpaintseg.config import preset, resolve
from inpaintseg.data.synth import generate
from inpaintseg.engine.pipeline import run_training
from inpaintseg.models.crop import box_mask, expand_box
from inpaintseg.models.detector import Detector
from inpaintseg.objective import FlowInputs, RunningStats, flow_background_loss
from tests.learning import LEARN, detection_score, frames_and_masks, inpainting_error, mask_contrast

STAGE2 = [*LEARN, "data.background=temporal", "train.ema=0", "train.steps=150"]
"""The cpu preset's stage 2 without the flow (temporal background, exhaustive expectation, GrabCut mask target)."""
DETECTION_FLOOR = 0.27
"""Expected box IoU with the figure: an untrained detector scores about 0.20 on these scenes, 150 steps about
0.33-0.52 over three seeds, a detector trained up the gradient about 0.16."""
CONTRAST_FLOOR = 0.05
"""S's mask contrast between figure and box: about 0.01 untrained, 0.11-0.23 after 150 steps, -0.11 trained up
the gradient."""


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Training scenes (PTZ camera, 4 x 12 frames) and held-out test scenes with their figure masks."""
    root = tmp_path_factory.mktemp("learning")
    train = generate(root / "train", camera="ptz", sequences=4, frames=12, size=(96, 64), seed=11)
    test = generate(root / "test", camera="ptz", sequences=2, frames=12, size=(96, 64), seed=12)
    return train, frames_and_masks(test), root


@pytest.fixture(scope="module")
def stage2_run(scenes):
    train, _, root = scenes
    return run_training(resolve("cpu", overrides=STAGE2), train, root / "stage2", progress=False)


def test_stage2_finds_and_segments_the_figure(scenes, stage2_run):
    _, (images, masks), _ = scenes
    assert detection_score(stage2_run, images, masks) > DETECTION_FLOOR
    assert mask_contrast(stage2_run, images, masks) > CONTRAST_FLOOR


def test_training_from_given_weights_starts_there_and_keeps_learning(scenes, stage2_run, tmp_path):
    train, (images, masks), _ = scenes
    start = detection_score(stage2_run, images, masks)
    over = [*STAGE2, "train.steps=1", "train.lr=0", "train.decoder_lr=0", f"train.init={stage2_run}"]
    first = run_training(resolve("cpu", overrides=over), train, tmp_path / "a", progress=False)
    assert detection_score(first, images, masks) == pytest.approx(start, abs=0.02)  # BatchNorm's statistics move
    over = [*STAGE2, "train.steps=60", f"train.init={stage2_run}"]
    more = run_training(resolve("cpu", overrides=over), train, tmp_path / "b", progress=False)
    assert detection_score(more, images, masks) > DETECTION_FLOOR
    assert mask_contrast(more, images, masks) > CONTRAST_FLOOR


def test_stage1_fills_held_out_holes_better(scenes, tmp_path):
    """The inpainting error in fixed holes (not the random ones trained on) of the training frames."""
    train, _, _ = scenes
    images, _ = frames_and_masks(train)
    errors = []
    for steps in (1, 120):
        cfg = resolve("cpu", overrides=[*LEARN, f"inpainter.steps={steps}", "data.background=inpainter"])
        path = run_training(cfg, train, tmp_path / str(steps), inpainter_only=True, progress=False)
        errors.append(inpainting_error(path, images, tuple(cfg.data.size)))
    assert errors[1] < 0.75 * errors[0], errors


def test_the_flow_background_loss_alone_moves_p_onto_the_mover():
    """D trained by the flow's L_bg only (zero-flow background; the flow is zero but for one moving square)
    puts its probability on the cells around the square."""
    torch.manual_seed(0)
    cfg = preset("cpu")
    h, w = 64, 64
    detector = Detector(input_size=(64, 64), scale_range=(0.1, 0.5), backbone="small")  # 4x4 grid, 2x2 inner
    opt = torch.optim.Adam(detector.parameters(), lr=1e-3)
    flows = torch.full((4, 3, h, w), 0.0)
    flows[:, :2] = 128 / 255  # encoded zero flow (data/flow.py): u = v = 0 at 128
    flows[:, :, 36:52, 36:52] = torch.tensor([1.0, 0.5, 1.0])[:, None, None]  # the mover, in the lower-right cell
    images = torch.rand(4, 3, h, w)  # D sees the image; only the flow says where the mover is
    images[:, :, 36:52, 36:52] = 0.2
    stats = RunningStats()
    inner = detector.inner.nonzero()[:, 0]
    mover_cell = 2 * 4 + 2  # row 2, column 2
    for _ in range(40):
        props = detector(images)
        cells = inner[None].expand(4, -1)
        weights = props.probs[:, inner]
        holes = box_mask(expand_box(props.boxes[:, inner].flatten(0, 1), 0.15), h, w).view(4, len(inner), h, w)
        flow = FlowInputs(flows, torch.ones(4, dtype=torch.bool), None, stats)
        loss, _ = flow_background_loss(flow, props.boxes[:, inner].flatten(0, 1), holes, weights, cfg, True, cells,
                                       props.probs.shape[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert detector(images).probs[:, mover_cell].mean() > 0.6

