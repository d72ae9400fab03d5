"""Tests of the camera-stabilised optical flow module (inpaintseg.data.flow)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from inpaintseg.cli import main
from inpaintseg.data import flow as fl
from inpaintseg.data.flow import (
    FLOW_SCALE,
    ZERO_FLOW_RGB,
    FlowCache,
    decode_flow,
    encode_flow,
    resize_flow,
    sequence_flows,
    stabilized_flow,
)
from inpaintseg.data.image_io import read_image, write_jpeg, write_png
from inpaintseg.errors import InpaintsegError
from tests.helpers import texture

W, H = 160, 120
FIGURE = (60, 45, 40, 35)  # x, y, w, h of the figure in prev
MOTION = (6.0, -4.0)  # the figure's own motion between the frames, px in cur's grid


def scene(seed: int) -> np.ndarray:
    """Smooth random texture with random solid rectangles: plenty of SIFT corners. RGB uint8 (H, W, 3)."""
    image = texture(W, H, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(25):
        x, y = int(rng.integers(0, W - 10)), int(rng.integers(0, H - 10))
        w, h = (int(v) for v in rng.integers(4, 16, 2))
        image[y : y + h, x : x + w] = rng.integers(0, 256, 3)
    return image


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]])


def composite(background: np.ndarray, figure: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """background where mask == 0, figure where mask == 1 (mask float (H, W) in [0, 1])."""
    out = background.astype(np.float32) * (1 - mask[..., None]) + figure.astype(np.float32) * mask[..., None]
    return np.round(out).astype(np.uint8)


def warp(image: np.ndarray, h: np.ndarray) -> np.ndarray:
    return cv2.warpPerspective(image, h, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def moving_pair():
    """prev = background + figure; cur = the same seen by a camera that rotated 2 deg, zoomed 2 % and moved
    (+4, -3) px, with the figure additionally moved by MOTION. Returns (prev, cur, figure mask in cur)."""
    background, figure = scene(1), texture(W, H, seed=7)
    x, y, w, h = FIGURE
    mask = np.zeros((H, W), np.float32)
    mask[y : y + h, x : x + w] = 1.0
    prev = composite(background, figure, mask)
    camera = similarity(2.0, 1.02, 4.0, -3.0)
    move = np.array([[1.0, 0.0, MOTION[0]], [0.0, 1.0, MOTION[1]], [0.0, 0.0, 1.0]])
    cur_mask = cv2.warpPerspective(mask, move @ camera, (W, H), flags=cv2.INTER_LINEAR)
    cur = composite(warp(background, camera), warp(figure, move @ camera), cur_mask)
    return prev, cur, cur_mask


def test_stabilized_flow_cancels_camera_and_keeps_figure_motion(moving_pair):
    prev, cur, cur_mask = moving_pair
    flow, ok = stabilized_flow(prev, cur)
    assert ok
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    inside = cv2.erode((cur_mask > 0.99).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    away = cv2.dilate((cur_mask > 0).astype(np.uint8), np.ones((21, 21), np.uint8)) == 0
    away[:12], away[-12:], away[:, :12], away[:, -12:] = False, False, False, False
    assert inside.sum() > 500 and away.sum() > 5000
    # Without stabilisation the camera alone moves the background by several px.
    assert np.median(magnitude[away]) < 0.5, np.median(magnitude[away])
    assert np.median(magnitude[inside]) > 3.0, np.median(magnitude[inside])
    u, v = np.median(flow[inside], axis=0)
    assert u == pytest.approx(MOTION[0], abs=1.0) and v == pytest.approx(MOTION[1], abs=1.0), (u, v)


def test_unstabilised_background_would_move(moving_pair):
    """Sanity check of the scene: plain DIS flow on the raw pair sees the camera motion on the background."""
    prev, cur, cur_mask = moving_pair
    raw = -fl.dis_flow(cur, prev)
    away = cv2.dilate((cur_mask > 0).astype(np.uint8), np.ones((21, 21), np.uint8)) == 0
    away[:12], away[-12:], away[:, :12], away[:, -12:] = False, False, False, False
    assert np.median(np.hypot(raw[..., 0], raw[..., 1])[away]) > 3.0


def test_uncovered_pixels_get_zero_flow():
    """Camera moved 10 px right: the 10 left columns of cur were not visible in prev."""
    panorama = scene(2)
    prev = np.ascontiguousarray(panorama[:, :140])
    cur = np.ascontiguousarray(panorama[:, 10:150])
    # Scene point x of cur is x + 10 in prev, so columns >= 130 of cur are not covered by the warped prev.
    flow, ok = stabilized_flow(prev, cur)
    assert ok
    assert np.all(flow[:, 131:] == 0.0)
    assert np.abs(flow[10:-10, 10:120]).max() < 1.0


def test_homography_failure_gives_zeros_and_invalid():
    blank = np.full((H, W, 3), 90, np.uint8)
    flow, ok = stabilized_flow(scene(3), blank)
    assert not ok
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32 and not flow.any()
    encoded, valid = sequence_flows([blank, blank, blank])
    assert valid.tolist() == [False, False, False]
    assert np.all(encoded == np.array(ZERO_FLOW_RGB, np.uint8))


def test_encode_decode_round_trip():
    m = 8.0
    rng = np.random.default_rng(0)
    flow = rng.uniform(-m, m, (7, 9, 2)).astype(np.float32)
    encoded = encode_flow(flow, m)
    assert encoded.shape == (7, 9, 3) and encoded.dtype == np.uint8
    back = decode_flow(encoded, m)
    assert np.abs(back - flow).max() <= m / 254 + 1e-5  # half a quantisation step of m / 127


def test_encode_hand_computed_values():
    m = 10.0
    flow = np.array([[[0.0, 0.0], [5.0, 0.0], [-10.0, 0.0], [30.0, -30.0], [3.0, 4.0]]], np.float32)
    encoded = encode_flow(flow, m)
    assert tuple(encoded[0, 0]) == ZERO_FLOW_RGB == (128, 128, 0)
    assert tuple(encoded[0, 1]) == (192, 128, 128)  # 128 + 63.5 -> 192 (half to even: 191.5 -> 192)
    assert tuple(encoded[0, 2]) == (1, 128, 255)
    assert tuple(encoded[0, 3]) == (255, 1, 255)  # clipped
    assert tuple(encoded[0, 4]) == (166, 179, 128)  # 128 + 38.1, 128 + 50.8, 255 * 0.5 = 127.5 -> 128
    assert decode_flow(encoded, m)[0, 3].tolist() == [10.0, -10.0]


def test_default_scale_is_a_fraction_of_the_width():
    flow = np.zeros((10, 200, 2), np.float32)
    flow[..., 0] = 200 * FLOW_SCALE  # exactly M = 10 px
    assert np.all(encode_flow(flow)[..., 0] == 255)
    assert decode_flow(encode_flow(flow))[0, 0, 0] == pytest.approx(10.0)


def test_resize_flow_scales_vectors():
    flow = np.zeros((120, 160, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, 2.0
    small = resize_flow(flow, (80, 30))
    assert small.shape == (30, 80, 2)
    assert np.allclose(small[..., 0], 2.0) and np.allclose(small[..., 1], 0.5)
    big = resize_flow(flow, (320, 240))
    assert np.allclose(big[..., 0], 8.0) and np.allclose(big[..., 1], 4.0)


def moving_square_sequence(n: int = 3, speed: int = 6) -> list[np.ndarray]:
    """Static camera over a textured background; a textured square moves right by ``speed`` px/frame."""
    background, figure = scene(4), texture(W, H, seed=9)
    frames = []
    for t in range(n):
        frame = background.copy()
        x = 40 + speed * t
        frame[40:80, x : x + 40] = figure[40:80, 40:80]
        frames.append(frame)
    return frames


def test_sequence_flows_direction_and_pairs():
    """Frame t pairs with t - 2 and t + 2 (clamped into the sequence); both give the forward motion over their
    gap and the smaller vector is kept."""
    speed = 3
    frames = moving_square_sequence(5, speed)
    encoded, valid = sequence_flows(frames)
    assert encoded.shape == (5, H, W, 3) and encoded.dtype == np.uint8
    assert valid.tolist() == [True] * 5
    m = FLOW_SCALE * W  # 8 px
    flows = [decode_flow(e, m) for e in encoded]
    u = [float(np.median(flows[t][50:70, 48 + speed * t : 72 + speed * t, 0])) for t in range(5)]  # inside the square
    # partners: 0 -> {2}, 1 -> {0, 3} (gaps 1 and 2: the smaller motion), 2 -> {0, 4}, 3 -> {1, 4}, 4 -> {2};
    # always forward in time (+x), even where the only partner is a later frame
    assert u == pytest.approx([2 * speed, speed, 2 * speed, speed, 2 * speed], abs=0.5)
    assert np.median(np.abs(flows[2][5:30, 5:150])) < 0.2  # static background: zero flow


def test_two_pairs_keep_the_figure_and_drop_what_one_pair_smears_around_it():
    speed, x = 3, 46  # frame 2's square spans x = 46..86
    frames = moving_square_sequence(5, speed)
    m = FLOW_SCALE * W
    combined = decode_flow(sequence_flows(frames)[0][2], m)
    behind, ahead = (slice(45, 75), slice(x - 10, x - 1)), (slice(45, 75), slice(x + 41, x + 50))
    from_prev, _ = stabilized_flow(frames[0], frames[2])
    from_next, _ = stabilized_flow(frames[4], frames[2])
    # each pair alone smears the motion over the ground the square uncovers (prev) or will cover (next)
    assert np.abs(from_prev[behind]).max() > 3.0 and np.abs(from_next[ahead]).max() > 3.0
    assert np.abs(combined[behind]).max() < 1.6 and np.abs(combined[ahead]).max() < 1.6
    assert np.median(combined[50:70, x + 8 : x + 32, 0]) == pytest.approx(2 * speed, abs=0.5)


def test_pair_partners_and_combine_pairs():
    assert fl.pair_partners(0, 5) == [2] and fl.pair_partners(2, 5) == [0, 4] and fl.pair_partners(4, 5) == [2]
    assert fl.pair_partners(1, 5) == [0, 3] and fl.pair_partners(0, 2) == [1] and fl.pair_partners(0, 1) == []
    a = np.array([[[3.0, 4.0], [0.0, 1.0]]], np.float32)  # magnitudes 5, 1
    b = np.array([[[0.0, -2.0], [-6.0, 0.0]]], np.float32)  # magnitudes 2, 6
    assert fl.combine_pairs([a, b]).tolist() == [[[0.0, -2.0], [0.0, 1.0]]]


def test_sequence_flows_output_size_and_one_frame():
    frames = moving_square_sequence()
    encoded, _ = sequence_flows(frames, size=(80, 60))
    assert encoded.shape == (3, 60, 80, 3)
    # Vectors are halved with the grid, and M is 5 % of the output width (4 px): u = 3 px -> 128 + 95 = 223.
    u = decode_flow(encoded[1], FLOW_SCALE * 80)[25:35, 28:38, 0]  # frame 1: partners 0 and 2, one frame each
    assert np.median(u) == pytest.approx(3.0, abs=0.5)
    single, valid = sequence_flows(frames[:1])
    assert valid.tolist() == [False] and np.all(single == np.array(ZERO_FLOW_RGB, np.uint8))


def test_flow_cache_computes_once_and_invalidates(tmp_path, monkeypatch):
    frames = moving_square_sequence()
    cache = FlowCache(tmp_path / "cache", size=(80, 60))
    flows, valid = cache.sequence("square", frames, progress=False)
    assert flows.shape == (3, 60, 80, 3) and valid.tolist() == [True, True, True]
    assert len(list((tmp_path / "cache").glob("square_flow_80x60_*.npz"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(fl, "sequence_flows", boom)
    again, valid_again = FlowCache(tmp_path / "cache", size=(80, 60)).sequence("square", frames, progress=False)
    assert np.array_equal(again, flows) and np.array_equal(valid_again, valid)
    changed = [f.copy() for f in frames]
    changed[2][0, 0] ^= 1
    with pytest.raises(AssertionError, match="recomputed"):
        cache.sequence("square", changed, progress=False)
    with pytest.raises(AssertionError, match="recomputed"):  # another size is another file
        FlowCache(tmp_path / "cache", size=(40, 30)).sequence("square", frames, progress=False)


def test_flow_cache_recomputes_a_corrupt_file(tmp_path):
    frames = moving_square_sequence()
    cache = FlowCache(tmp_path, size=None)
    flows, _ = cache.sequence("square", frames, progress=False)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"not a zip")
    again, _ = cache.sequence("square", frames, progress=False)
    assert np.array_equal(again, flows) and again.shape == (3, H, W, 3)


def test_bad_method_and_missing_raft_weights(tmp_path):
    prev = scene(1)
    with pytest.raises(InpaintsegError, match="flow method"):
        stabilized_flow(prev, prev, method="farneback")
    with pytest.raises(InpaintsegError, match="needs a weights file"):
        stabilized_flow(prev, prev, method="raft")
    with pytest.raises(InpaintsegError, match="does not exist"):
        stabilized_flow(prev, prev, method="raft", raft_weights=tmp_path / "missing.pt")


def test_raft_weights_that_match_no_architecture(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(InpaintsegError, match="neither torchvision raft_large nor raft_small") as info:
        fl.load_raft(path)
    assert str(path.name) in str(info.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(InpaintsegError, match="cannot read RAFT weights"):
        fl.load_raft(junk)


def test_raft_small_weights_from_a_local_file(tmp_path):
    torch = pytest.importorskip("torch")
    optical_flow = pytest.importorskip("torchvision.models.optical_flow")
    torch.manual_seed(0)
    path = tmp_path / "raft_small.pt"
    torch.save(optical_flow.raft_small().state_dict(), path)  # random weights: only shapes can be checked
    prev = scene(5)[:60, :100]  # 100 x 60: neither a multiple of 8 nor 128 px, so padded
    flow, ok = stabilized_flow(prev, prev.copy(), method="raft", raft_weights=path)
    assert ok and flow.shape == (60, 100, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def write_davis(root, name: str, frames: list[np.ndarray]) -> None:
    for i, frame in enumerate(frames):
        write_jpeg(root / "JPEGImages" / name / f"{i:05d}.jpg", frame, quality=95)


def test_cli_writes_flow_pngs_and_valid_json(tmp_path, capsys):
    root = tmp_path / "davis"
    write_davis(root, "square", moving_square_sequence())
    blank = np.full((H, W, 3), 60, np.uint8)
    write_davis(root, "blank", [blank, blank])
    write_png(root / "Annotations" / "square" / "00000.png", np.zeros((H, W), np.uint8))
    out = tmp_path / "flow"
    assert main(["flow", str(root), "--out", str(out), "--size", "80x60"]) == 0
    assert str(out) in capsys.readouterr().out
    for name in ("00000", "00001", "00002"):
        image = read_image(out / "square" / f"{name}.png")
        assert image.shape == (60, 80, 3)
    report = json.loads((out / "square" / "valid.json").read_text())
    assert report["failed"] == [] and report["frames"] == 3 and report["size"] == [80, 60]
    assert report["max_magnitude"] == pytest.approx(4.0)
    u = decode_flow(read_image(out / "square" / "00001.png"), report["max_magnitude"])[25:35, 28:38, 0]
    assert np.median(u) == pytest.approx(3.0, abs=0.5)
    blank_report = json.loads((out / "blank" / "valid.json").read_text())
    assert blank_report["failed"] == ["00000", "00001"]
    assert np.all(read_image(out / "blank" / "00001.png") == np.array(ZERO_FLOW_RGB, np.uint8))
    assert not list(out.rglob("*.tmp"))


def test_cli_bad_input_is_a_clean_error(tmp_path, capsys):
    missing = tmp_path / "nothing_here"
    assert main(["flow", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "inpaintseg: error" in err and "nothing_here" in err
    bad = tmp_path / "bad" / "seq"
    bad.mkdir(parents=True)
    (bad / "00000.jpg").write_bytes(b"not an image")
    (bad / "00001.jpg").write_bytes(b"not an image either")
    assert main(["flow", str(tmp_path / "bad"), "--out", str(tmp_path / "out2")]) == 2
    assert "00000.jpg" in capsys.readouterr().err
