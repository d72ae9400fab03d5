"""End-to-end evaluation on tiny DAVIS-layout trees built in tmp_path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintseg.data.image_io import write_png
from inpaintseg.errors import DataError
from inpaintseg.evaluate import evaluate, format_table, read_detections, run

H, W = 20, 30
DAVIS_MINI = Path(__file__).parent / "data" / "davis_mini"
KEYS = {
    "threshold",
    "J_mean",
    "F_mean",
    "JF_mean",
    "J_recall",
    "mAP50",
    "sequences",
    "frames",
    "missing",
    "resized",
}


def square(r0: int, c0: int, size: int = 6, value: int = 255) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[r0 : r0 + size, c0 : c0 + size] = value
    return m


# two sequences x two frames; objects move 2 px per frame
GT = {
    "seqA": {"00000": square(2, 2), "00001": square(2, 4)},
    "seqB": {"00000": square(10, 20), "00001": square(12, 20)},
}


def make_tree(root: Path, masks: dict[str, dict[str, np.ndarray]]) -> Path:
    for seq, frames in masks.items():
        (root / seq).mkdir(parents=True, exist_ok=True)
        for name, mask in frames.items():
            write_png(root / seq / f"{name}.png", mask)
    return root


@pytest.fixture
def gt_root(tmp_path: Path) -> Path:
    root = tmp_path / "davis"
    (root / "JPEGImages").mkdir(parents=True)
    make_tree(root / "Annotations", GT)
    return root


def test_perfect_predictions(gt_root: Path, tmp_path: Path):
    pred = make_tree(tmp_path / "pred", GT)
    res = evaluate(pred, gt_root)
    assert set(res) == KEYS
    assert res["J_mean"] == 1.0 and res["F_mean"] == 1.0 and res["JF_mean"] == 1.0
    assert res["J_recall"] == 1.0
    assert res["threshold"] == 0.05  # every threshold gives J = 1; ties go to the lowest
    assert res["sequences"] == {"seqA": {"J": 1.0, "F": 1.0}, "seqB": {"J": 1.0, "F": 1.0}}
    assert (res["frames"], res["missing"], res["resized"]) == (4, 0, 0)
    assert res["mAP50"] is None
    # the Annotations folder itself is accepted as the GT root
    assert evaluate(pred, gt_root / "Annotations")["J_mean"] == 1.0


def test_empty_prediction_folder(gt_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    pred = tmp_path / "pred"
    pred.mkdir()
    with caplog.at_level(logging.WARNING, logger="inpaintseg.evaluate"):
        res = evaluate(pred, gt_root)
    assert res["sequences"] == {"seqA": {"J": 0.0, "F": 0.0}, "seqB": {"J": 0.0, "F": 0.0}}
    assert res["J_mean"] == 0.0 and res["J_recall"] == 0.0
    assert res["missing"] == 4 and res["frames"] == 4
    assert "4 of 4 prediction files are missing" in caplog.text


def test_soft_prediction_needs_threshold_at_least_half(gt_root: Path, tmp_path: Path):
    soft = {}
    for seq, frames in GT.items():
        soft[seq] = {}
        for name, gt in frames.items():
            s = np.where(gt > 0, 200, 0).astype(np.uint8)  # object at probability 0.784
            s[H - 2 :, :] = 120  # distractor band (rows 18-19) at probability 0.471 (never in the GT)
            soft[seq][name] = s
    res = evaluate(make_tree(tmp_path / "pred", soft), gt_root)
    # t <= 0.45 keeps the band (J = 36 / 96); 0.5 <= t <= 0.75 gives the GT exactly; t >= 0.8 gives nothing
    assert 0.5 <= res["threshold"] <= 0.75
    assert res["threshold"] == 0.5  # lowest of the tied thresholds
    assert res["J_mean"] == 1.0 and res["F_mean"] == 1.0
    low = evaluate(tmp_path / "pred", gt_root, thresholds=[0.3])
    assert low["J_mean"] == pytest.approx(36 / (36 + 2 * W))


def test_missing_files_and_mean_over_sequences(gt_root: Path, tmp_path: Path):
    pred = make_tree(tmp_path / "pred", {"seqA": GT["seqA"], "seqB": {"00000": GT["seqB"]["00000"]}})
    res = evaluate(pred, gt_root)
    assert res["missing"] == 1
    assert res["sequences"]["seqA"] == {"J": 1.0, "F": 1.0}
    assert res["sequences"]["seqB"] == {"J": 0.5, "F": 0.5}  # frames J = 1 and 0 (empty)
    assert res["J_mean"] == 0.75  # mean over sequences of the sequence means
    assert res["J_recall"] == 0.75  # seqA 2/2, seqB 1/2 frames with J > 0.5


def test_sequences_weighted_equally(tmp_path: Path):
    gt = {"one": {"00000": square(2, 2)}, "three": {f"{i:05d}": square(2, 2) for i in range(3)}}
    gt_root = make_tree(tmp_path / "gt", gt)
    pred = make_tree(tmp_path / "pred", {"one": gt["one"]})  # sequence "three" entirely missing
    res = evaluate(pred, gt_root)
    assert res["J_mean"] == 0.5  # not pooled over frames (that would be 1/4)
    assert (res["frames"], res["missing"]) == (4, 3)


def test_size_mismatch_is_resized(gt_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # predictions at twice the resolution (pixel-replicated): bilinear 2x downscaling recovers them exactly
    big = {s: {n: np.kron(m, np.ones((2, 2), np.uint8)) for n, m in f.items()} for s, f in GT.items()}
    with caplog.at_level(logging.WARNING, logger="inpaintseg.evaluate"):
        res = evaluate(make_tree(tmp_path / "pred", big), gt_root)
    assert res["resized"] == 4 and res["missing"] == 0
    assert res["J_mean"] == 1.0 and res["F_mean"] == 1.0
    assert "resized" in caplog.text


def test_prediction_formats_rgb_and_16bit(gt_root: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    for seq, frames in GT.items():
        (pred / seq).mkdir(parents=True)
        for name, m in frames.items():
            if seq == "seqA":
                Image.fromarray(np.stack([m] * 3, axis=2)).save(pred / seq / f"{name}.png")  # RGB gray
            else:
                Image.fromarray(m.astype(np.uint16) * 257).save(pred / seq / f"{name}.png")  # 16-bit
    res = evaluate(pred, gt_root)
    assert res["J_mean"] == 1.0 and res["missing"] == 0


def test_sparse_annotations_and_extra_sequence(
    gt_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    preds = {seq: dict(frames) for seq, frames in GT.items()}
    preds["seqA"]["00002"] = square(0, 0)  # frame without GT: not evaluated
    preds["other"] = {"00000": square(0, 0)}  # sequence without GT: ignored and reported
    with caplog.at_level(logging.WARNING, logger="inpaintseg.evaluate"):
        res = evaluate(make_tree(tmp_path / "pred", preds), gt_root)
    assert res["frames"] == 4 and res["J_mean"] == 1.0
    assert set(res["sequences"]) == {"seqA", "seqB"}
    assert "other" in caplog.text


def test_multi_label_gt(tmp_path: Path):
    labels = np.zeros((H, W), np.uint8)
    labels[2:6, 2:6] = 1
    labels[10:14, 20:24] = 2
    gt_root = make_tree(tmp_path / "gt", {"s": {"00000": labels}})
    pred = make_tree(tmp_path / "pred", {"s": {"00000": np.where(labels > 0, 255, 0).astype(np.uint8)}})
    dets = [
        {"sequence": "s", "frame": "00000", "bbox": [2, 2, 4, 4], "score": 0.9},
        {"sequence": "s", "frame": "00000.png", "bbox": [20, 10, 4, 4], "score": 0.8},
    ]
    (pred / "detections.json").write_text(json.dumps(dets))
    res = evaluate(pred, gt_root)
    assert res["J_mean"] == 1.0  # both labels merged into one foreground
    assert res["mAP50"] == pytest.approx(1.0)  # one box per label, both found


def test_detections_map50(gt_root: Path, tmp_path: Path):
    pred = make_tree(tmp_path / "pred", GT)
    # GT boxes: seqA [2,2,6,6], [4,2,6,6]; seqB [20,10,6,6], [20,12,6,6]
    dets = [
        {"sequence": "seqA", "frame": "00000", "bbox": [2, 2, 6, 6], "score": 0.9},
        {"sequence": "seqA", "frame": "00001", "bbox": [5, 2, 6, 6], "score": 0.8},  # IoU 30/42
        {"sequence": "seqB", "frame": "00000", "bbox": [20, 10, 6, 6], "score": 0.7},
        {"sequence": "nope", "frame": "00000", "bbox": [0, 0, 5, 5], "score": 0.99},  # not evaluated
    ]
    (pred / "detections.json").write_text(json.dumps(dets))
    res = evaluate(pred, gt_root)
    # 3 of 4 GT boxes found, all at precision 1: recall points 0..0.75 (76 of 101) -> AP = 76/101
    assert res["mAP50"] == pytest.approx(76 / 101)


def test_bad_detections_file(tmp_path: Path):
    path = tmp_path / "detections.json"
    path.write_text('[{"sequence": "a", "frame": "0", "bbox": [1, 2, 3], "score": 0.5}]')
    with pytest.raises(DataError, match="detections.json.*bbox"):
        read_detections(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="detections.json"):
        read_detections(path)
    path.write_text('[{"sequence": "a", "frame": "0", "bbox": [1, 2, 3, 4], "score": 0.5}]')
    assert read_detections(path) == [(("a", "0"), [1.0, 2.0, 3.0, 4.0], 0.5)]


def test_davis_root_without_annotations(tmp_path: Path):
    root = tmp_path / "davis"
    (root / "JPEGImages" / "seq").mkdir(parents=True)
    pred = tmp_path / "pred"
    pred.mkdir()
    with pytest.raises(DataError, match="no ground-truth masks") as exc:
        evaluate(pred, root)
    assert exc.value.path == str(root)
    with pytest.raises(DataError, match="no ground-truth masks"):
        evaluate(pred, pred)  # a folder without <seq>/<frame>.png
    with pytest.raises(DataError, match="does not exist"):
        evaluate(tmp_path / "absent", root)


def test_run_writes_json_and_prints_table(gt_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    pred = make_tree(tmp_path / "pred", GT)
    out = tmp_path / "out" / "eval.json"
    res = run(pred, gt_root, json_out=out)
    printed = capsys.readouterr().out
    assert "seqA" in printed and "threshold" in printed and "mAP@0.5" in printed
    assert json.loads(out.read_text()) == res
    assert format_table(res) in printed


@pytest.mark.skipif(not DAVIS_MINI.is_dir(), reason="tests/data/davis_mini not present")
def test_davis_mini_annotations_as_predictions(tmp_path: Path):
    n_frames = len(list((DAVIS_MINI / "Annotations").glob("*/*.png")))
    seqs = {p.name for p in (DAVIS_MINI / "Annotations").iterdir() if p.is_dir()}
    res = evaluate(DAVIS_MINI / "Annotations", DAVIS_MINI)
    assert res["J_mean"] == 1.0 and res["F_mean"] == 1.0
    assert (res["frames"], res["missing"], res["resized"]) == (n_frames, 0, 0)
    assert set(res["sequences"]) == seqs
    empty = tmp_path / "empty"
    empty.mkdir()
    res = evaluate(empty, DAVIS_MINI)
    assert all(v["J"] == 0.0 for v in res["sequences"].values())
    assert res["missing"] == n_frames
