"""Tests of video mode (inpaintseg.temporal, ``predict --temporal``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from inpaintseg import predict as predict_module
from inpaintseg.cli import main
from inpaintseg.config import TemporalOptions
from inpaintseg.data.image_io import write_png
from inpaintseg.data.sources import Frame
from inpaintseg.predict import Predictor
from inpaintseg.temporal import cell_rewards, fuse_cells, fuse_mask, with_context
from tests.test_background import SQUARE, H, W, panning_sequence
from tests.test_predict import data  # noqa: F401  (the module fixture: a tiny model and data)

OFFSETS = (-4, 4, 8)


def frames_of(name: str, images: list[np.ndarray]) -> list[Frame]:
    return [Frame(name, f"{k:05d}", k, im) for k, im in enumerate(images)]


def test_contexts_stream_in_order_with_a_bounded_window():
    """Each frame leaves as soon as its furthest neighbour (8 frames on) has been read; sequences do not mix."""
    a, _, _ = panning_sequence(n=20)
    b, _, _ = panning_sequence(n=12, seed=5)
    stream = frames_of("a", a) + frames_of("b", b)
    read = []

    def source():
        for frame in stream:
            read.append(frame)
            yield frame

    out = []
    for frame, context in with_context(source(), OFFSETS, (W, H)):
        out.append((frame.sequence, frame.index))
        assert context is not None and context.background.shape == (H, W, 3)
        ahead = sum(f.sequence == frame.sequence for f in read) - 1 - frame.index
        assert ahead <= 8 or read[-1].sequence != frame.sequence, (frame.index, ahead)
        if read[-1].sequence == frame.sequence and frame.index + 8 < (20 if frame.sequence == "a" else 12):
            assert ahead == 8  # not read further ahead than it needs
    assert out == [(f.sequence, f.index) for f in stream]


def test_a_frame_without_aligned_neighbours_has_no_context():
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(3)]  # nothing to match
    single = [panning_sequence(n=1)[0][0]]
    contexts = [c for _, c in with_context(frames_of("noise", noise) + frames_of("one", single), OFFSETS, (W, H))]
    assert contexts == [None, None, None, None]


def test_the_moving_square_has_the_highest_reward():
    frames, _, xs = panning_sequence(n=25)
    contexts = dict((f.index, c) for f, c in with_context(frames_of("a", frames), OFFSETS, (W, H)))
    t = 12
    x0, y0 = xs[t], 22
    on = np.array([[x0 / W, y0 / H, (x0 + SQUARE) / W, (y0 + SQUARE) / H]])
    off = np.array([[0.0, 0.0, 0.3, 0.3], [0.7, 0.6, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    rewards = cell_rewards(contexts[t].error(), np.concatenate([on, off]))
    assert rewards[0] > 5 and rewards[1:3].max() < 1 and rewards[3] == pytest.approx(1.0), rewards
    probs = np.array([0.2, 0.5, 0.3, 0.0], np.float32)  # the network prefers a box on still background
    fused = fuse_cells(probs, np.concatenate([on, off]), contexts[t], 0.5)
    assert fused.argmax() == 0 and fused.sum() == pytest.approx(1.0) and fused[3] == 0
    confident = np.array([0.0001, 0.9998, 0.0001, 0.0], np.float32)  # a small weight keeps a confident D
    assert fuse_cells(confident, np.concatenate([on, off]), contexts[t], 0.1).argmax() == 1
    assert fuse_cells(confident, np.concatenate([on, off]), contexts[t], 1.0).argmax() == 0
    assert fuse_cells(probs, np.concatenate([on, off]), contexts[t], 0.0) is probs
    fg = contexts[t].foreground(W, H)
    assert fg[y0 + 5 : y0 + SQUARE - 5, x0 + 5 : x0 + SQUARE - 5].mean() > 0.8 and np.median(fg) < 0.2


def test_the_moving_square_stands_out_in_the_stabilised_flow():
    """The camera pans, the square moves on its own: after stabilisation only the square moves. Offsets nearer
    than the flow's pairs still give every frame its flow."""
    frames, _, xs = panning_sequence(n=12)
    assert all(c.motion is None for _, c in with_context(frames_of("a", frames), (-1, 1), (W, H)))  # not asked for
    contexts = dict((f.index, c) for f, c in with_context(frames_of("a", frames), (-1, 1), (W, H), motion=True))
    assert all(c is not None and c.motion is not None and c.motion.shape == (H, W) for c in contexts.values())
    t = 6
    x0, y0 = xs[t], 22
    motion = contexts[t].motion
    assert motion[y0 + 5 : y0 + SQUARE - 5, x0 + 5 : x0 + SQUARE - 5].mean() > 1.0 > np.median(motion)
    still = dataclasses.replace(contexts[t], motion=None)
    both, alone = contexts[t].foreground(W, H), still.foreground(W, H)
    inside = (slice(y0 + 5, y0 + SQUARE - 5), slice(x0 + 5, x0 + SQUARE - 5))
    # neighbours one frame away overlap the square, so background subtraction misses its inside; the flow does not
    assert both[inside].mean() > alone[inside].mean() + 0.3 and np.median(both) < 0.2


def test_fuse_mask_adds_the_foreground_inside_the_box_only():
    mask = np.zeros((10, 10), np.float32)
    mask[2:6, 2:6] = 1.0
    fg = np.ones((10, 10), np.float32)
    fused = fuse_mask(mask, np.array([1.0, 1.0, 7.0, 7.0]), fg, 0.5)
    assert fused[3, 3] == 1.0 and fused[1, 6] == 0.5 and fused[8, 8] == 0.0 and fused[0, 0] == 0.0
    assert fuse_mask(mask, np.array([1.0, 1.0, 7.0, 7.0]), fg, 0.0) is mask


def test_predictor_in_video_mode_changes_predictions_only_where_neighbours_align(data):  # noqa: F811
    frames = data["frames"]
    plain = Predictor.load(data["model"], refine="none")
    video = Predictor.load(data["model"], refine="none", temporal=TemporalOptions(cell_weight=1.0, mask_weight=0.5))
    stream = frames_of("seq000", frames)
    a = [p for _, p in plain.predict_frames(stream, batch=4)]
    b = [p for _, p in video.predict_frames(stream, batch=4)]
    assert len(a) == len(b) == len(frames)
    assert video.context_counts["seq000"][0] > 0  # some frames had aligned neighbours
    assert any(not np.allclose(x.masks, y.masks) for x, y in zip(a, b, strict=True))
    alone = [p for _, p in video.predict_frames(frames_of("one", frames[:1]))]  # no neighbours: as without
    np.testing.assert_allclose(alone[0].masks, a[0].masks, atol=1e-6)  # batch of 1 against 4: rounding
    assert video.context_counts["one"] == [0, 1]


def test_the_predictor_asks_for_the_flow_only_when_the_mask_uses_it(data, monkeypatch):  # noqa: F811
    asked = []

    def recording(*args, motion=False):
        asked.append(motion)
        return with_context(*args, motion=motion)

    monkeypatch.setattr(predict_module, "with_context", recording)
    stream = frames_of("seq000", data["frames"][:3])
    for weight in (0.5, 0.0):
        video = Predictor.load(data["model"], refine="none", temporal=TemporalOptions(cell_weight=1.0,
                                                                                      mask_weight=weight))
        list(video.predict_frames(stream))
    assert asked == [True, False]


def test_cli_temporal_on_a_single_image_says_it_has_no_neighbours(data, tmp_path, capsys):  # noqa: F811
    image = tmp_path / "one.png"
    write_png(image, data["frames"][0])
    assert main(["predict", str(data["model"]), str(image), "--out", str(tmp_path / "p"), "--temporal",
                 "--cell-weight", "1", "--mask-weight", "0.7", "--refine", "none"]) == 0
    out = capsys.readouterr().out
    assert "no neighbours to use" in out
    assert len(list((tmp_path / "p").rglob("*.png"))) == 1


def test_weights_outside_0_1_are_a_clear_error_before_anything_runs(data, tmp_path, capsys):  # noqa: F811
    for flag, value in (("--cell-weight", "1.5"), ("--mask-weight", "-0.1")):
        assert main(["predict", str(data["model"]), str(data["davis"]), "--out", str(tmp_path / "p"), "--temporal",
                     flag, value]) != 0
        assert "must be in [0, 1]" in capsys.readouterr().err
        assert not (tmp_path / "p").exists()  # nothing written
