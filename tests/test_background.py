"""Tests of the homography-aligned temporal background (inpaintseg.data.background)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inpaintseg.data import background as bg
from inpaintseg.data.background import (
    BackgroundCache,
    FeatureCache,
    aligned_share,
    background_subtraction_mask,
    chosen_neighbours,
    estimate_homography,
    neighbour_indices,
    sequence_backgrounds,
    similar_neighbours,
    temporal_background,
)
from tests.helpers import texture

W, H = 96, 64
SQUARE = 20  # side of the moving square, px: neighbours 4 frames away still overlap it by 8 px
SQUARE_RGB = (235, 20, 20)


def panning_sequence(n: int = 25, pan: int = 2, speed: int = 3, x0: int = 20, y0: int = 22, seed: int = 1):
    """A camera panning right by ``pan`` px/frame over a texture panorama; a solid square moves right by
    ``speed`` px/frame in the scene. Returns (frames, clean backgrounds, square top-left x in frame coords)."""
    panorama = texture(W + pan * (n - 1), H, seed=seed)
    frames, clean, xs = [], [], []
    for t in range(n):
        view = panorama[:, pan * t : pan * t + W].copy()
        clean.append(view.copy())
        x = x0 + (speed - pan) * t
        view[y0 : y0 + SQUARE, x : x + SQUARE] = SQUARE_RGB
        frames.append(view)
        xs.append(x)
    return frames, clean, xs


def project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    homog = np.c_[points, np.ones(len(points))] @ h.T
    return homog[:, :2] / homog[:, 2:3]


def test_estimate_homography_recovers_known_warp():
    src = texture(W, H, seed=3)
    h_true = np.array([[1.03, 0.04, 2.5], [-0.03, 0.98, -1.5], [2e-4, -1e-4, 1.0]])
    dst = cv2.warpPerspective(src, h_true, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    h = estimate_homography(src, dst)
    assert h is not None and h.shape == (3, 3) and h.dtype == np.float64
    assert h[2, 2] == pytest.approx(1.0)
    corners = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float64)
    err = np.linalg.norm(project(h, corners) - project(h_true, corners), axis=1)
    assert err.max() < 1.0, err


def test_estimate_homography_with_precomputed_features_is_the_same():
    src = texture(W, H, seed=3)
    dst = np.roll(src, 3, axis=1)
    h1 = estimate_homography(src, dst)
    h2 = estimate_homography(src, dst, src_features=bg.compute_features(src), dst_features=bg.compute_features(dst))
    assert h1 is not None and h2 is not None
    np.testing.assert_allclose(h1, h2)
    assert h1[0, 2] == pytest.approx(3.0, abs=0.5)  # content moved 3 px right


def test_estimate_homography_fails_on_flat_or_unrelated_images():
    grey = np.full((H, W, 3), 128, np.uint8)
    assert estimate_homography(grey, grey) is None
    assert estimate_homography(texture(W, H, seed=4), texture(W, H, seed=5)) is None


def test_implausible_homographies_are_rejected():
    assert bg._plausible(np.eye(3), W, H)
    mirror = np.array([[-1.0, 0, W], [0, 1, 0], [0, 0, 1]])
    assert not bg._plausible(mirror, W, H)
    assert not bg._plausible(np.diag([3.0, 3.0, 1.0]), W, H)  # area x9


def test_ransac_threshold_scales_with_size():
    assert bg.ransac_threshold(640, 360) == pytest.approx(3.0)
    assert bg.ransac_threshold(1280, 720) == pytest.approx(6.0)
    assert bg.ransac_threshold(96, 64) == 1.0


def test_neighbour_indices_clip_and_deduplicate():
    offsets = (-12, -8, -4, 4, 8, 12)
    assert neighbour_indices(12, 30, offsets) == [0, 4, 8, 16, 20, 24]
    assert neighbour_indices(0, 30, offsets) == [4, 8, 12]
    assert neighbour_indices(2, 5, offsets) == [0, 4]
    assert neighbour_indices(0, 1, offsets) == []


def test_masked_median_uses_valid_entries_only():
    stack = np.array([10, 20, 30, 200], np.uint8).reshape(4, 1, 1, 1).repeat(3, axis=3)
    fallback = np.full((1, 1, 3), 7, np.uint8)
    valid = np.array([True, True, True, False]).reshape(4, 1, 1)
    assert bg._masked_median(stack, valid, fallback)[0, 0, 0] == 20
    valid = np.array([True, False, True, True]).reshape(4, 1, 1)
    assert bg._masked_median(stack, valid, fallback)[0, 0, 0] == 30
    valid = np.array([True, True, False, False]).reshape(4, 1, 1)
    assert bg._masked_median(stack, valid, fallback)[0, 0, 0] == 15
    valid = np.zeros((4, 1, 1), bool)
    assert bg._masked_median(stack, valid, fallback)[0, 0, 0] == 7


def test_temporal_background_removes_moving_square_under_panning():
    frames, clean, xs = panning_sequence()
    t = 12
    background, coverage = temporal_background(frames, t)
    assert background.shape == (H, W, 3) and background.dtype == np.uint8
    assert coverage.shape == (H, W) and coverage.dtype == np.uint8
    region = (slice(22, 22 + SQUARE), slice(xs[t], xs[t] + SQUARE))
    assert np.all(coverage[region] == 6)  # all six neighbours cover the square
    truth = clean[t][region].astype(np.float32)
    contrast = np.abs(frames[t][region].astype(np.float32) - truth).mean()
    error = np.abs(background[region].astype(np.float32) - truth).mean(axis=2)  # (SQUARE, SQUARE)
    assert contrast > 60
    # The neighbours 4 frames away still show the square over 8 of its 20 columns: a median ignores
    # them, a mean would be off by contrast / 6 (~19 levels) there.
    assert error.mean() < 0.02 * contrast, (error.mean(), contrast)
    assert error.max() < 0.05 * contrast, (error.max(), contrast)
    # Right border: the camera pans right, so only later frames see it; earlier ones do not cover it.
    assert coverage[:, -1].max() <= 3


def test_similar_neighbours_are_frames_of_the_same_scene_beyond_the_nearest():
    a, _, _ = panning_sequence(n=25)
    other = [texture(W, H, seed=7 + k) for k in range(10)]  # unrelated images
    frames = [*a, *other]
    chosen = similar_neighbours(frames, offsets=(-2, 2, 3))  # ranks 3, 4 and 6
    assert len(chosen) == len(frames) and all(len(c) == 3 and len(set(c)) == 3 for c in chosen)
    for i in range(25):  # not the frame itself, and spread over time like the temporal offsets
        assert i not in chosen[i] and max(abs(j - i) for j in chosen[i] if j < 25) >= 3, (i, chosen[i])
    # the same scene, except at the ends of the pan, where the far frames can rank below an unrelated image (its
    # homography then fails and it is dropped)
    assert all(j < 25 for i in range(3, 22) for j in chosen[i])
    assert [len(c) for c in similar_neighbours(frames[:3])] == [1, 1, 1]  # short: what there is


def test_aligned_share_counts_the_neighbours_actually_tried():
    """The share divides the aligned neighbours (coverage's maximum) by the neighbours chosen for that frame,
    which near the ends of a sequence and in short collections are fewer than the offsets."""
    coverage = np.zeros((3, 4, 4), np.uint8)
    coverage[0, 0, 0], coverage[1, 1, 1], coverage[2] = 1, 2, 0
    share = aligned_share(coverage, [[1], [0, 2, 3, 4], []])
    assert share.tolist() == [1.0, 0.5, 0.0]
    frames = [texture(W, H, seed=k) for k in range(3)]
    assert [len(c) for c in chosen_neighbours(frames, (-4, 4, 8), similar=False)] == [1, 2, 1]
    # far ranks clip to the least similar frame, so a 3-frame collection gives each frame one neighbour, not two
    assert [len(c) for c in chosen_neighbours(frames, (-4, 4, 8), similar=True)] == [1, 1, 1]


def test_collection_background_needs_no_order():
    """Two panning shots shuffled into one folder: the folder's order gives neighbours from the other shot, which
    do not align; the most similar frames are of the same shot, and their median removes the square."""
    shots = [panning_sequence(seed=1), panning_sequence(seed=5, x0=50)]
    items = [(s, t) for s in range(2) for t in range(4, 21)]
    order = np.random.default_rng(0).permutation(len(items))
    items = [items[k] for k in order]
    shuffled = [shots[s][0][t] for s, t in items]
    covered = {}
    for similar in (False, True):
        backgrounds, coverage = sequence_backgrounds(shuffled, similar=similar)
        covered[similar] = coverage.reshape(len(coverage), -1).max(axis=1)  # aligned neighbours per frame
    # 17 frames a shot: of the ranks 7, 8, 15, 16, 23 and 24, those up to 16 may be of the same shot
    assert covered[True].min() >= 2 and covered[True].mean() > 1.2 * covered[False].mean(), covered
    errors = []
    for i, (s, t) in enumerate(items):
        _, clean, xs = shots[s]
        x0 = xs[t]
        region = (slice(22, 22 + SQUARE), slice(x0, x0 + SQUARE))
        errors.append(np.abs(backgrounds[i][region].astype(np.float32) - clean[t][region]).mean())
    assert np.median(errors) < 10, errors  # the square is gone from most frames' backgrounds


def test_temporal_background_single_frame_and_failed_neighbours():
    frame = texture(W, H, seed=7)
    background, coverage = temporal_background([frame], 0)
    np.testing.assert_array_equal(background, frame)
    assert coverage.max() == 0
    grey = np.full((H, W, 3), 90, np.uint8)  # no features: every homography fails and is dropped
    background, coverage = temporal_background([grey, grey, grey], 1, offsets=(-1, 1))
    np.testing.assert_array_equal(background, grey)
    assert coverage.max() == 0


def test_feature_cache_computes_features_once_and_inverts_homographies(monkeypatch):
    frames, _, _ = panning_sequence(n=5)
    calls = {"features": 0, "fit": 0}
    real_features, real_fit = bg.compute_features, bg.homography_from_features

    def count_features(image):
        calls["features"] += 1
        return real_features(image)

    def count_fit(*args, **kwargs):
        calls["fit"] += 1
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(bg, "compute_features", count_features)
    monkeypatch.setattr(bg, "homography_from_features", count_fit)
    cache = FeatureCache(frames)
    h01 = cache.homography(0, 1)
    h10 = cache.homography(1, 0)
    cache.homography(0, 2)
    assert calls == {"features": 3, "fit": 2}
    assert h01 is not None and h10 is not None
    product = h01 @ h10
    np.testing.assert_allclose(product / product[2, 2], np.eye(3), atol=1e-9)
    assert h01[0, 2] == pytest.approx(-2.0, abs=0.5)  # frame 1 sees the scene shifted 2 px left


def _counting_fit(monkeypatch) -> dict:
    calls = {"n": 0}
    real = bg.homography_from_features

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(bg, "homography_from_features", counted)
    return calls


def test_background_cache_reuses_file_and_recomputes_corrupt_one(tmp_path, monkeypatch):
    frames, _, _ = panning_sequence(n=7)
    big = [cv2.resize(f, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC) for f in frames]
    calls = _counting_fit(monkeypatch)
    cache = BackgroundCache(tmp_path / "bg", size=(W, H), offsets=(-2, 2))
    first = cache.sequence_backgrounds("pan", big)
    assert first.shape == (7, H, W, 3) and first.dtype == np.uint8
    assert calls["n"] > 0
    files = list((tmp_path / "bg").glob("pan_96x64_*.npz"))
    assert len(files) == 1
    calls["n"] = 0
    second = cache.sequence_backgrounds("pan", big)
    assert calls["n"] == 0
    np.testing.assert_array_equal(first, second)

    files[0].write_bytes(b"not an npz file")
    third = cache.sequence_backgrounds("pan", big)
    assert calls["n"] > 0
    np.testing.assert_array_equal(first, third)
    with np.load(files[0]) as data:  # the corrupt file was replaced
        assert data["backgrounds"].shape == (7, H, W, 3)

    # Other offsets -> another file; changed frames -> recomputed.
    assert BackgroundCache(tmp_path / "bg", size=(W, H), offsets=(-1, 1)).path("pan", (W, H)) != files[0]
    calls["n"] = 0
    cache.sequence_backgrounds("pan", big[::-1])
    assert calls["n"] > 0


def test_background_cache_native_size(tmp_path):
    frames, _, _ = panning_sequence(n=3)
    backgrounds, coverage = BackgroundCache(tmp_path, size=None, offsets=(-1, 1)).sequence("s", frames)
    assert backgrounds.shape == (3, H, W, 3) and coverage.shape == (3, H, W)
    assert len(list(tmp_path.glob(f"s_{W}x{H}_*.npz"))) == 1


def test_background_subtraction_mask_high_on_square_low_elsewhere():
    background = texture(W, H, seed=2)
    frame = background.copy()
    frame[20:36, 40:56] = SQUARE_RGB
    prob = background_subtraction_mask(frame, background)
    assert prob.shape == (H, W) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    assert prob[23:33, 43:53].mean() > 0.8
    far = np.ones((H, W), bool)
    far[14:42, 34:62] = False  # square plus a margin for the blur
    assert prob[far].max() < 0.05

    coverage = np.full((H, W), 4, np.uint8)
    coverage[:, :48] = 0
    prob = background_subtraction_mask(frame, background, coverage)
    assert prob[:, :48].max() == 0.0
    assert prob[23:33, 50:53].mean() > 0.5


def test_background_subtraction_mask_does_not_amplify_noise():
    rng = np.random.default_rng(0)
    background = texture(W, H, seed=2)
    frame = np.clip(background + rng.normal(0, 2, background.shape), 0, 255).astype(np.uint8)
    assert background_subtraction_mask(frame, background).max() < 0.5
    assert background_subtraction_mask(background, background).max() == 0.0
