"""Metrics on toy masks and boxes whose values are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from inpaintseg.metrics import (
    THRESHOLDS,
    average_precision_50,
    boundary_map,
    boundary_tolerance,
    boxes_from_labels,
    f_measure,
    jaccard,
    jaccard_at_thresholds,
    threshold_levels,
)


def rect(shape: tuple[int, int], r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Boolean mask with rows r0..r1 and columns c0..c1 (inclusive) set."""
    m = np.zeros(shape, bool)
    m[r0 : r1 + 1, c0 : c1 + 1] = True
    return m


# ---------------------------------------------------------------- J


def test_jaccard_overlapping_rectangles():
    a = rect((10, 10), 0, 3, 0, 3)  # 16 px
    b = rect((10, 10), 2, 5, 2, 5)  # 16 px; overlap rows 2..3 x cols 2..3 = 4 px; union 28
    assert jaccard(a, b) == pytest.approx(4 / 28)
    assert jaccard(b, a) == pytest.approx(4 / 28)


def test_jaccard_edge_cases():
    empty = np.zeros((5, 5), bool)
    square = rect((5, 5), 1, 2, 1, 2)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(square, empty) == 0.0
    assert jaccard(empty, square) == 0.0
    assert jaccard(square, square) == 1.0
    with pytest.raises(ValueError):
        jaccard(square, np.zeros((5, 6), bool))


def test_threshold_levels():
    # smallest v with v/255 >= t: 0.05*255 = 12.75 -> 13; 0.5*255 = 127.5 -> 128; 0.95*255 = 242.25 -> 243
    assert threshold_levels([0.0, 0.05, 0.5, 0.95, 1.0, 1.01]).tolist() == [0, 13, 128, 243, 255, 256]
    assert THRESHOLDS.tolist() == [round(0.05 * k, 2) for k in range(1, 20)]


def test_jaccard_at_thresholds_hand_values():
    gt = np.zeros((4, 4), bool)
    gt[0, :] = True  # 4 GT pixels
    soft = np.zeros((4, 4), np.uint8)
    soft[0, :2] = 200  # 2 GT pixels, prob 0.784
    soft[0, 2:] = 128  # 2 GT pixels, prob 0.502
    soft[1, 0] = 127  # 1 background pixel, prob 0.498
    j = jaccard_at_thresholds(soft, gt, [0.45, 0.5, 0.75, 0.8])
    # t=0.45: pred = 5 px, inter 4, union 5; t=0.5: pred = GT; t=0.75: only the 200s: 2/4; t=0.8: empty
    assert j.tolist() == pytest.approx([4 / 5, 1.0, 2 / 4, 0.0])


def test_jaccard_at_thresholds_matches_jaccard():
    rng = np.random.default_rng(0)
    soft = rng.integers(0, 256, (23, 31), dtype=np.uint8)
    gt = rng.random((23, 31)) < 0.4
    curve = jaccard_at_thresholds(soft, gt, THRESHOLDS)
    expected = [jaccard(soft / 255.0 >= t, gt) for t in THRESHOLDS]
    assert curve == pytest.approx(expected, abs=1e-12)
    # both empty at a high threshold -> 1
    assert jaccard_at_thresholds(np.zeros((3, 3), np.uint8), np.zeros((3, 3), bool), [0.5]).tolist() == [1.0]


# ---------------------------------------------------------------- boundaries


def test_boundary_map_small_square_pixel_by_pixel():
    mask = rect((6, 6), 1, 2, 1, 2)  # 2x2 square
    # A pixel is boundary when it differs from its E, S or SE neighbour: the ring lies outside the
    # top/left edges and inside the bottom/right edges; the interior pixel (1, 1) is not boundary.
    expected = np.array(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 0, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(boundary_map(mask), expected)


def test_boundary_map_image_edge_is_not_boundary():
    left_half = rect((6, 6), 0, 5, 0, 2)  # touches top, left and bottom edges
    expected = np.zeros((6, 6), bool)
    expected[:, 2] = True  # only the E transition between columns 2 and 3
    np.testing.assert_array_equal(boundary_map(left_half), expected)

    corner = rect((6, 6), 3, 5, 3, 5)  # bottom-right corner
    expected = np.zeros((6, 6), bool)
    expected[2, 2:] = True  # row above, from the SE-diagonal pixel (2, 2) to the right edge
    expected[2:, 2] = True  # column left of it, down to the bottom edge
    np.testing.assert_array_equal(boundary_map(corner), expected)
    assert boundary_map(np.ones((6, 6), bool)).sum() == 0


def test_boundary_map_thin_line():
    line = rect((10, 10), 5, 5, 2, 7)  # 1 px high, 6 px long
    expected = np.zeros((10, 10), bool)
    expected[4:6, 1:8] = True  # rows 4-5, cols 1-7: 14 px
    np.testing.assert_array_equal(boundary_map(line), expected)


def test_boundary_tolerance():
    assert boundary_tolerance((100, 100)) == 2  # 0.008 * 141.4 = 1.13
    assert boundary_tolerance((240, 427)) == 4  # 0.008 * 489.8 = 3.92
    assert boundary_tolerance((10, 10)) == 1  # 0.008 * 14.1 = 0.11
    assert boundary_tolerance((10, 10), bound_th=3) == 3


# ---------------------------------------------------------------- F


def test_f_measure_edge_cases():
    empty = np.zeros((20, 20), bool)
    square = rect((20, 20), 5, 9, 5, 9)
    assert f_measure(empty, empty) == 1.0  # P = R = 1
    assert f_measure(empty, square) == 0.0  # P = 1, R = 0
    assert f_measure(square, empty) == 0.0  # P = 0, R = 1
    assert f_measure(square, square) == 1.0
    # a full-frame mask has no boundary (the image edge is not one): the DAVIS definition gives F = 1
    assert f_measure(np.ones((20, 20), bool), np.ones((20, 20), bool)) == 1.0


def test_f_measure_shift_within_tolerance():
    gt = rect((100, 100), 40, 59, 40, 59)  # 20x20; tolerance on 100x100 is 2 px
    pred = rect((100, 100), 40, 59, 41, 60)  # shifted right by 1 px: every boundary pixel within 1 px
    assert f_measure(pred, gt) == 1.0
    assert jaccard(pred, gt) == pytest.approx(380 / 420)  # 20*19 overlap, 400+400-380 union


def test_f_measure_shift_beyond_tolerance():
    gt = rect((30, 30), 10, 12, 10, 12)  # 3x3: boundary ring rows 9-12, cols 9-12 (12 px)
    pred = rect((30, 30), 15, 17, 15, 17)  # shifted (+5, +5): ring rows 14-17, cols 14-17
    # closest boundary pixels (12, 12) and (14, 14) are sqrt(8) = 2.83 apart
    assert f_measure(pred, gt, bound_th=2) == 0.0
    # radius 3 (disk includes offset (2, 2) since 8 <= 9, but not (2, 3)): exactly one of 12 pixels
    # matches on each side -> P = R = 1/12 -> F = 1/12
    assert f_measure(pred, gt, bound_th=3) == pytest.approx(1 / 12)


def test_f_measure_thin_lines():
    gt = rect((10, 10), 5, 5, 2, 7)  # boundary rows 4-5, cols 1-7; tolerance on 10x10 is 1 px
    down1 = rect((10, 10), 6, 6, 2, 7)  # boundary rows 5-6: all within 1 px
    assert jaccard(down1, gt) == 0.0
    assert f_measure(down1, gt) == 1.0
    down2 = rect((10, 10), 7, 7, 2, 7)  # boundary rows 6-7: row 6 matches GT row 5, row 7 is 2 px away
    # P = 7/14 (pred row 6), R = 7/14 (GT row 5) -> F = 0.5
    assert f_measure(down2, gt) == pytest.approx(0.5)


# ---------------------------------------------------------------- boxes and AP


def test_boxes_from_labels():
    labels = np.zeros((8, 10), np.uint8)
    assert boxes_from_labels(labels) == []
    labels[2:5, 3:8] = 255  # rows 2-4, cols 3-7
    assert boxes_from_labels(labels) == [(255, [3.0, 2.0, 5.0, 3.0])]
    multi = np.zeros((8, 10), np.uint8)
    multi[0, 0] = 1
    multi[5:7, 8:10] = 2
    multi[7, 0] = 2  # same object, disconnected: one box spanning both parts
    assert boxes_from_labels(multi) == [(1, [0.0, 0.0, 1.0, 1.0]), (2, [0.0, 5.0, 10.0, 3.0])]


GT3 = {"a": [[10, 10, 20, 20]], "b": [[10, 10, 20, 20]], "c": [[10, 10, 20, 20]]}
FAR = [60, 60, 20, 20]  # IoU 0 with the GT box


def test_ap_all_correct():
    dets = [("a", [10, 10, 20, 20], 0.9), ("b", [11, 10, 20, 20], 0.8), ("c", [10, 12, 20, 20], 0.7)]
    assert average_precision_50(GT3, dets) == pytest.approx(1.0)


def test_ap_one_missed():
    dets = [("a", [10, 10, 20, 20], 0.9), ("b", [10, 10, 20, 20], 0.8)]  # image c: no detection
    # recall 1/3, 2/3 at precision 1. COCO samples precision at recall 0, 0.01, ..., 1.00:
    # the 67 points r <= 0.66 get 1, the 34 points r >= 0.67 get 0 -> AP = 67/101
    assert average_precision_50(GT3, dets) == pytest.approx(67 / 101)


def test_ap_false_positive_ranked_second():
    dets = [
        ("a", [10, 10, 20, 20], 0.9),  # TP
        ("b", FAR, 0.8),  # FP
        ("b", [10, 10, 20, 20], 0.7),  # TP
        ("c", [10, 10, 20, 20], 0.6),  # TP
    ]
    # TP FP TP TP: precision 1, 1/2, 2/3, 3/4 at recall 1/3, 1/3, 2/3, 1.
    # Interpolated (max to the right): 1, 3/4, 3/4, 3/4. Recall points 0..0.33 (34) -> 1,
    # 0.34..1.00 (67) -> 3/4. AP = (34 + 67 * 0.75) / 101 = 84.25 / 101
    assert average_precision_50(GT3, dets) == pytest.approx(84.25 / 101)


def test_ap_iou_threshold_and_image_without_gt():
    gt = {"a": [[10, 10, 20, 20]]}
    # shift 7: overlap 13*20 = 260, union 540, IoU 0.48 -> FP; shift 6: 280 / 520 = 0.54 -> TP
    assert average_precision_50(gt, [("a", [17, 10, 20, 20], 0.9)]) == pytest.approx(0.0)
    assert average_precision_50(gt, [("a", [16, 10, 20, 20], 0.9)]) == pytest.approx(1.0)
    gt2 = {"a": [[10, 10, 20, 20]], "b": [[10, 10, 20, 20]], "c": []}
    dets = [("c", [10, 10, 20, 20], 0.95), ("a", [10, 10, 20, 20], 0.9), ("b", [10, 10, 20, 20], 0.8)]
    # FP TP TP: precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> interpolated 2/3 everywhere -> AP = 2/3
    assert average_precision_50(gt2, dets) == pytest.approx(2 / 3)
    # a detection on an image that is not evaluated is ignored
    assert average_precision_50(gt, [("a", [10, 10, 20, 20], 0.5), ("zz", FAR, 0.99)]) == pytest.approx(1.0)


def test_ap_no_detections_is_none():
    assert average_precision_50(GT3, []) is None
    assert average_precision_50({"a": []}, [("a", FAR, 0.5)]) is None  # no GT box: undefined
