"""``data.background=inpainted``: per-frame backgrounds from the inpainter's fills of tiling holes."""

import torch

from inpaintseg.config import resolve
from inpaintseg.data.inpainted import _weight, hole_windows, inpainted_background
from inpaintseg.data.synth import generate
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.pipeline import run_training
from tests.helpers import TINY


def test_holes_tile_the_frame():
    windows = hole_windows(96, 160, hole=0.4, stride=0.3)
    covered = torch.zeros(96, 160, dtype=torch.bool)
    for y0, x0, hh, hw in windows:
        assert 0 <= y0 and y0 + hh <= 96 and 0 <= x0 and x0 + hw <= 160
        covered[y0 : y0 + hh, x0 : x0 + hw] = True
    assert covered.all() and len(windows) == 9


def test_the_weight_ignores_edges_on_the_frame_border():
    w = _weight(10, 10, (0, 0, 5, 5))  # a hole in the top-left corner: only its right and bottom edges count
    assert w[0, 0] == 5 and w[0, 3] == 2 and w[4, 4] == 1 and w[5, 5] == 0  # 1 + pixels to an inner edge


class _Fill(torch.nn.Module):
    """An inpainter that fills every hole with a fixed image."""

    def __init__(self, fill: torch.Tensor) -> None:
        super().__init__()
        self.fill = fill

    def inpaint(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return hole * self.fill + (1 - hole) * image


def test_the_background_is_made_of_fills_only():
    fill = torch.rand(1, 3, 48, 64)
    images = torch.rand(2, 3, 48, 64)
    assert torch.allclose(inpainted_background(_Fill(fill), images), fill.expand(2, -1, -1, -1), atol=1e-6)


def test_training_with_inpainted_backgrounds(tmp_path):
    data = generate(tmp_path / "data", camera="ptz", sequences=2, frames=4, size=(96, 64), seed=2)
    over = [*TINY, "data.background=inpainted", "sampling.method=exhaustive", "inpainter.steps=2", "train.steps=2",
            "loss.w_mask_bg=1", "loss.mask_target=grabcut", "data.flow=true"]
    run_training(resolve("cpu", overrides=over), data, tmp_path / "run", progress=False)
    saved = resolve("cpu", config_file=tmp_path / "run" / "config.yaml")
    assert saved.data.background == "inpainted" and saved.data.flow is False and saved.loss.mask_target == "grabcut"
    assert load_checkpoint(tmp_path / "run" / "model.pt")["step"] == 2
    assert "loss/mask_bg" in (tmp_path / "run" / "train_metrics.jsonl").read_text()


def test_both_backgrounds_keep_per_pixel_the_better_one(tmp_path):
    from inpaintseg.engine.data import better_background

    frames = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
    a = torch.tensor([[100, 0], [50, 90]], dtype=torch.uint8).expand(1, 3, 2, 2)
    b = torch.tensor([[0, 100], [60, 10]], dtype=torch.uint8).expand(1, 3, 2, 2)
    assert better_background(frames, a, b)[0, 0].tolist() == [[100, 100], [60, 90]]
    data = generate(tmp_path / "data", camera="ptz", sequences=1, frames=5, size=(96, 64), seed=2)
    over = [*TINY, "data.background=both", "sampling.method=exhaustive", "inpainter.steps=2", "train.steps=2",
            "loss.w_mask_bg=1", "loss.mask_target=grabcut", "data.temporal_offsets=[-2,2]"]
    run_training(resolve("cpu", overrides=over), data, tmp_path / "run", progress=False)
    saved = resolve("cpu", config_file=tmp_path / "run" / "config.yaml")
    assert saved.data.background == "both" and saved.loss.mask_target == "grabcut"
    assert "loss/mask_bg" in (tmp_path / "run" / "train_metrics.jsonl").read_text()
