"""The optical-flow branch of training (section 3.5): flow bank, flip, flow L_bg, both flow backgrounds."""

import json

import numpy as np
import pytest
import torch

from inpaintseg.cli import main
from inpaintseg.config import resolve
from inpaintseg.data.flow import ZERO_FLOW_RGB, decode_flow, encode_flow
from inpaintseg.data.synth import generate
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.data import flip_horizontal
from inpaintseg.engine.pipeline import run_training
from inpaintseg.models.crop import box_mask, expand_box
from inpaintseg.objective import FlowInputs, RunningStats, flow_background_loss
from tests.helpers import TINY


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate(root, camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)


def _logged_keys(run) -> set[str]:
    keys = set()
    for line in (run / "train_metrics.jsonl").read_text().splitlines():
        keys |= set(json.loads(line))
    return keys


def test_flip_mirrors_the_horizontal_flow_component():
    rng = np.random.default_rng(0)
    flow = rng.uniform(-10, 10, (8, 12, 2)).astype(np.float32)
    image = torch.from_numpy(encode_flow(flow, 16.0)).permute(2, 0, 1)[None].float() / 255.0
    flipped = flip_horizontal(image, flow=True)
    back = decode_flow((flipped[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), 16.0)
    expected = flow[:, ::-1] * np.array([-1.0, 1.0], np.float32)
    assert np.abs(back - expected).max() < 0.2  # quantisation: 16/127 px per level
    plain = flip_horizontal(image)  # RGB images are only mirrored
    assert torch.equal(plain, image.flip(-1))


def _zero_flow_with_a_mover(b: int, h: int, w: int) -> torch.Tensor:
    flows = torch.tensor(ZERO_FLOW_RGB, dtype=torch.float32).view(1, 3, 1, 1).repeat(b, 1, h, w) / 255.0
    flows[:, :, 10:20, 30:40] = torch.tensor([1.0, 0.5, 1.0]).view(1, 3, 1, 1)  # moving right, fast
    return flows


def test_flow_reward_prefers_the_moving_region_and_skips_invalid_frames():
    b, k, h, w = 2, 2, 32, 64
    cfg = resolve("cpu")  # excess reward, normalised, with a baseline
    flows = _zero_flow_with_a_mover(b, h, w)
    # cell 0 covers the mover, cell 1 a static region; (cx, cy, w, h) normalised
    boxes = torch.tensor([[35 / w, 15 / h, 10 / w, 10 / h], [10 / w, 15 / h, 10 / w, 10 / h]]).repeat(b, 1)
    holes = box_mask(expand_box(boxes, cfg.loss.hole_expand), h, w).view(b, k, h, w)
    logits = torch.zeros(b, k, requires_grad=True)
    weights = logits.softmax(1)
    flow = FlowInputs(flows, torch.tensor([True, False]), None, RunningStats())
    cells = torch.arange(k).repeat(b, 1)
    loss, hole_error = flow_background_loss(flow, boxes, holes, weights, cfg, True, cells, k)
    loss.backward()
    # minimising -p * reward raises the mover's cell in the valid frame, leaves the invalid frame untouched
    assert logits.grad[0, 0] < 0 < logits.grad[0, 1]
    assert torch.equal(logits.grad[1], torch.zeros(k))
    assert hole_error > 0


def test_training_with_flow_and_a_zero_flow_background(tiny_video, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(tiny_video), "--out", str(run), "--flow", *TINY, "data.background=temporal",
                 "sampling.method=exhaustive", "train.steps=3"]) == 0
    assert "loss/bg_flow" in _logged_keys(run)
    assert not (run / "flow_inpainter.pt").exists()  # zero flow needs no I_f
    assert list((run / "cache").glob("*_flow_*.npz"))  # the flows are cached next to the run
    assert load_checkpoint(run / "model.pt")["config"]["data"]["flow"] is True


def test_training_with_flow_and_the_flow_inpainter(tiny_video, tmp_path):
    run = tmp_path / "run"
    cfg = resolve("cpu", overrides=[*TINY, "data.flow=true", "inpainter.steps=2", "train.steps=3"])
    run_training(cfg, tiny_video, run, progress=False)
    for name in ("inpainter.pt", "flow_inpainter.pt", "flow_inpainter_metrics.jsonl", "model.pt"):
        assert (run / name).exists(), name
    payload = load_checkpoint(run / "flow_inpainter.pt", "inpainter")
    assert payload["step"] == 2
    assert "loss/bg_flow" in _logged_keys(run)


def test_zero_flow_weight_drops_the_flow_loss_and_the_flow_inpainter(tiny_video, tmp_path):
    run = tmp_path / "run"
    cfg = resolve("cpu", overrides=[*TINY, "data.flow=true", "loss.w_bg_flow=0", "inpainter.steps=2",
                                    "train.steps=3"])
    run_training(cfg, tiny_video, run, progress=False)
    assert (run / "inpainter.pt").exists() and (run / "model.pt").exists()
    assert not (run / "flow_inpainter.pt").exists()  # nothing would use I_f
    assert "loss/bg_flow" not in _logged_keys(run)
    assert "loss/bg" in _logged_keys(run)
    # with the inpainter there is no GrabCut target either, so the flow is not even computed
    assert not list((run / "cache").glob("*flow*"))
    assert resolve("cpu", config_file=run / "config.yaml").data.flow is False


def test_flow_weight_scales_the_flow_term_of_the_total(monkeypatch):
    from inpaintseg import objective as train_module
    from inpaintseg.models.model import build_model

    # a fixed flow L_bg of 2.0, so that only the weighting is tested (the loss itself is tested above)
    monkeypatch.setattr(train_module, "flow_background_loss", lambda *args, **kwargs: (torch.tensor(2.0), 0.5))
    torch.manual_seed(0)
    cfg = resolve("cpu", overrides=[*TINY, "loss.w_mask_bg=0"])
    model = build_model(cfg).eval()  # no dropout: the other terms are the same in every call
    images = torch.rand(2, 3, 64, 96)
    backgrounds = images.clone()
    backgrounds[:, :, 20:40, 30:50] = 0.0  # a region the background does not explain
    flow = FlowInputs(_zero_flow_with_a_mover(2, 64, 96), torch.tensor([True, True]), None, RunningStats())
    totals = {}
    for weight in (0.0, 1.0, 3.0):
        cfg.loss.w_bg_flow = weight
        total, terms, _ = train_module.stage2_losses(model, None, None, images, backgrounds, cfg, RunningStats(),
                                                     torch.Generator().manual_seed(1), flow=flow)
        totals[weight] = total.item()
    for weight in (1.0, 3.0):  # total(w) - total(0) = w_bg * w * L_bg(flow)
        assert totals[weight] - totals[0.0] == pytest.approx(cfg.loss.w_bg * weight * 2.0, rel=1e-4)
