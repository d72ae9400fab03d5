"""Tests of the classical baselines (inpaintseg.baselines)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest

from inpaintseg.baselines import (
    BASELINES,
    center_prior,
    run_baseline,
    run_baseline_on_source,
    spectral_residual_saliency,
    work_size,
)
from inpaintseg.data.image_io import read_mask, write_png
from inpaintseg.errors import InpaintsegError
from tests.helpers import texture

W, H = 96, 64
SIDE = 16  # moving square
SQUARE_RGB = (240, 30, 30)


def square_sequence(n: int, pan: int) -> tuple[list[np.ndarray], list[int]]:
    """Camera panning ``pan`` px/frame over a texture; a square moving 4 px/frame in frame coordinates.
    Returns frames and the square's left x in each frame (top y = 24)."""
    panorama = texture(W + pan * (n - 1), H, seed=1)
    frames, xs = [], []
    for t in range(n):
        frame = panorama[:, pan * t : pan * t + W].copy()
        x = 8 + 4 * t
        frame[24 : 24 + SIDE, x : x + SIDE] = SQUARE_RGB
        frames.append(frame)
        xs.append(x)
    return frames, xs


@dataclass
class FakeSequence:
    """The part of inpaintseg.data.sources.Sequence the baselines use."""

    name: str
    images: list[np.ndarray]
    frame_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frame_names = self.frame_names or [f"{i:05d}" for i in range(len(self.images))]

    def __len__(self) -> int:
        return len(self.images)

    def read(self, i: int) -> np.ndarray:
        return self.images[i]


@dataclass
class FakeSource:
    sequences: list[FakeSequence]


def fake_source(pan: int = 2) -> FakeSource:
    frames, _ = square_sequence(17, pan)
    return FakeSource([FakeSequence("walk", frames), FakeSequence("single", [texture(W, H, seed=9)])])


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_writes_one_png_per_frame(tmp_path, name):
    out = run_baseline_on_source(name, fake_source(), tmp_path / name, progress=False)
    assert out == tmp_path / name
    assert sorted(p.name for p in (out / "walk").iterdir()) == [f"{i:05d}.png" for i in range(17)]
    assert [p.name for p in (out / "single").iterdir()] == ["00000.png"]
    for path in [out / "walk" / "00008.png", out / "single" / "00000.png"]:
        mask = read_mask(path)
        assert mask.shape == (H, W) and mask.dtype == np.uint8


def _square_contrast(mask: np.ndarray, x: int) -> tuple[float, float]:
    """(mean inside the square's core, mean away from it), masks in 0..255."""
    inside = mask[28 : 24 + SIDE - 4, x + 4 : x + SIDE - 4].mean()
    away = np.ones_like(mask, bool)
    away[14 : 24 + SIDE + 10, max(0, x - 10) : x + SIDE + 10] = False
    return float(inside), float(mask[away].mean())


def test_bgsub_is_high_on_the_moving_square(tmp_path):
    frames, xs = square_sequence(17, pan=2)
    out = run_baseline_on_source("bgsub", FakeSource([FakeSequence("s", frames)]), tmp_path, progress=False)
    inside, away = _square_contrast(read_mask(out / "s" / "00008.png"), xs[8])
    assert inside > 200 and away < 30, (inside, away)


def test_mog2_is_high_on_a_moving_square_with_a_static_camera(tmp_path):
    # A static camera; an 8 px square moving 8 px/frame, along row 16 then along row 40, so that every
    # pixel shows it in at most one of the 20 frames: a background model of the sequence excludes it.
    still = texture(W, H, seed=3)
    frames = []
    for t in range(20):
        frame = still.copy()
        y, x = (16, 8 * t) if t < 10 else (40, 8 * (t - 10))
        frame[y : y + 8, x : x + 8] = SQUARE_RGB
        frames.append(frame)
    out = run_baseline_on_source("mog2", FakeSource([FakeSequence("s", frames)]), tmp_path, progress=False)
    for t, (y, x) in [(0, (16, 0)), (5, (16, 40)), (14, (40, 32))]:
        mask = read_mask(out / "s" / f"{t:05d}.png")
        inside = np.zeros((H, W), bool)
        inside[y : y + 8, x : x + 8] = True
        assert mask[inside].mean() > 200 and mask[~inside].mean() < 5, (t, mask[inside].mean())


def test_outputs_are_resized_to_the_source_resolution(tmp_path):
    big = [np.zeros((200, 400, 3), np.uint8), np.zeros((200, 400, 3), np.uint8)]
    source = FakeSource([FakeSequence("big", big, ["a", "b"])])
    out = run_baseline_on_source("center", source, tmp_path, progress=False)
    mask = read_mask(out / "big" / "a.png")
    assert mask.shape == (200, 400)
    assert mask[100, 200] == 255 and mask[99, 199] == 255
    # Corner: (x, y) = 2 sigmas from the centre on each axis -> exp(-0.5 * (4 + 4)) = exp(-4).
    assert mask[0, 0] == pytest.approx(255 * np.exp(-0.5 * (1.995**2 + 1.99**2)), abs=1)
    assert work_size(400, 200) == (320, 160)
    assert work_size(96, 64) == (96, 64)
    assert work_size(400, 200, (50, 40)) == (50, 40)


def test_center_prior_values():
    prior = center_prior(8, 4)  # sigma 2 px in x, 1 px in y; pixel centres at 0.5, 1.5, ...
    assert prior.shape == (4, 8) and prior.dtype == np.float32
    assert prior[1, 3] == pytest.approx(np.exp(-0.5 * ((0.5 / 2) ** 2 + 0.5**2)), rel=1e-5)
    assert prior[0, 0] == pytest.approx(np.exp(-0.5 * ((3.5 / 2) ** 2 + 1.5**2)), rel=1e-5)
    np.testing.assert_allclose(prior, prior[::-1, ::-1])


def test_spectral_residual_saliency_finds_the_odd_blob():
    image = np.full((64, 128, 3), 100, np.uint8)
    rng = np.random.default_rng(0)
    image += rng.integers(0, 6, image.shape, dtype=np.uint8)  # faint noise
    cv2.circle(image, (96, 20), 6, (250, 250, 250), -1)
    saliency = spectral_residual_saliency(image)
    assert saliency.shape == (32, 64) and saliency.dtype == np.float32
    assert saliency.max() == pytest.approx(1.0) and saliency.min() >= 0.0
    y, x = np.unravel_index(saliency.argmax(), saliency.shape)
    assert abs(x - 48) <= 3 and abs(y - 10) <= 3, (x, y)
    assert spectral_residual_saliency(np.full((64, 128, 3), 77, np.uint8)).max() == 0.0


def test_unknown_baseline_name_raises(tmp_path):
    with pytest.raises(InpaintsegError, match="unknown baseline 'sam'"):
        run_baseline("sam", tmp_path / "does-not-exist", tmp_path / "out")
    with pytest.raises(InpaintsegError, match="unknown baseline"):
        run_baseline_on_source("", fake_source(), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_run_baseline_opens_a_folder_of_images(tmp_path):
    frames, _ = square_sequence(3, pan=0)
    for i, frame in enumerate(frames):
        write_png(tmp_path / "clip" / f"frame{i}.png", frame)
    out = run_baseline("saliency", tmp_path / "clip", tmp_path / "out", progress=False)
    assert sorted(p.name for p in (out / "clip").iterdir()) == ["frame0.png", "frame1.png", "frame2.png"]
    assert read_mask(out / "clip" / "frame1.png").shape == (H, W)
