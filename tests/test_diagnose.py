"""``inpaintseg diagnose``: vital-sign warnings, background contrast, probability mass, the whole report."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from inpaintseg.cli import main
from inpaintseg.config import resolve
from inpaintseg.data.synth import generate
from inpaintseg.diagnose import (
    OBJECT_KEYS,
    VITAL_KEYS,
    _aggregate,
    background_contrast,
    background_holes,
    diagnose,
    format_report,
    inpainter_contrast,
    probability_mass,
    vital_summary,
    vital_warnings,
)
from inpaintseg.engine.pipeline import run_training
from inpaintseg.errors import InpaintsegError
from tests.helpers import TINY as BASE_TINY

TINY = [*BASE_TINY, "data.background=known", "train.steps=3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("diag")
    data = generate(root / "data", camera="ptz", sequences=2, frames=6, size=(96, 64), seed=3)
    run_training(resolve("cpu", overrides=TINY), data, root / "run", progress=False)
    return {"root": root, "data": data, "run": root / "run"}


def _row(step, box_w=0.4, box_h=0.5, p_max=0.8, ring=0.1):
    return {"step": step, "vital/box_w": box_w, "vital/box_h": box_h, "vital/p_entropy": 0.3, "vital/p_max": p_max,
            "vital/argmax_on_ring": ring, "vital/mask_mean": 0.2, "vital/hole_error": 0.01, "loss/total": 1.0}


# -- vital signs --------------------------------------------------------------------------------------------


GRID = (6, 6)  # inner cells: uniform p = 1/36, near uniform below 1.5/36 = 0.0417; 20 of 36 on the ring


def test_healthy_run_has_no_warnings():
    assert vital_warnings([_row(s) for s in range(8)], (0.1, 0.9), GRID) == []


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"box_w": 0.89}, "box_w=0.890 sits at the upper scale bound"),  # within 5% of the range (0.04) of 0.9
    ({"box_h": 0.13}, "box_h=0.130 sits at the lower scale bound"),
    ({"p_max": 0.04}, "stays near uniform (1/36 = 0.028)"),
    ({"ring": 0.75}, "the ring holds 56% of the inner cells): the detector prefers the border ring"),
])
def test_each_failure_sign_warns(kwargs, needle):
    warnings = vital_warnings([_row(s, **kwargs) for s in range(8)], (0.1, 0.9), GRID)
    assert len(warnings) == 1 and needle in warnings[0]


def test_just_inside_the_limits_does_not_warn():
    rows = [_row(s, box_w=0.85, box_h=0.15, p_max=0.042, ring=0.5) for s in range(4)]
    assert vital_warnings(rows, (0.1, 0.9), GRID) == []


def test_no_ring_warning_when_every_inner_cell_is_on_the_ring():
    rows = [_row(s, ring=1.0) for s in range(4)]
    assert vital_warnings(rows, (0.1, 0.9), (2, 2)) == []
    assert len(vital_warnings(rows, (0.1, 0.9), (3, 2))) == 0 and len(vital_warnings(rows, (0.1, 0.9), (3, 3))) == 1


def test_warnings_use_the_last_quarter():
    early_bad = [_row(s, box_w=0.9, p_max=0.03, ring=1.0) for s in range(6)] + [_row(s) for s in range(6, 8)]
    assert vital_warnings(early_bad, (0.1, 0.9), GRID) == []
    late_bad = [_row(s) for s in range(6)] + [_row(s, box_w=0.9) for s in range(6, 8)]
    assert len(vital_warnings(late_bad, (0.1, 0.9), GRID)) == 1


def test_checkpoints_at_quarters():
    summary = vital_summary([_row(s) for s in range(1, 10)], (0.1, 0.9), GRID)
    assert [c["step"] for c in summary["checkpoints"]] == [1, 3, 5, 7, 9]
    assert [c["at"] for c in summary["checkpoints"]] == ["0%", "25%", "50%", "75%", "100%"]
    assert summary["uniform_p"] == pytest.approx(1 / 36) and summary["ring_share"] == pytest.approx(20 / 36)
    assert set(VITAL_KEYS) <= set(summary["checkpoints"][0])
    short = vital_summary([_row(s) for s in range(1, 4)], (0.1, 0.9), GRID)["checkpoints"]
    assert [(c["at"], c["step"]) for c in short] == [("0%", 1), ("50%", 2), ("100%", 3)]


# -- background contrast and probability mass ---------------------------------------------------------------


def test_background_contrast_known_numbers():
    image = np.zeros((6, 8, 3))
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    background = np.full((6, 8, 3), 0.1)
    background[mask] = 0.5
    obj, bg = background_contrast(image, background, mask)
    assert obj == pytest.approx(0.25) and bg == pytest.approx(0.01)
    row = _aggregate([{"object_error": obj, "background_error": bg}])
    assert row["contrast_ratio"] == pytest.approx(25.0) and row["frames"] == 1


def test_inpainter_contrast_with_a_constant_inpainter():
    class Constant:  # fills every hole with 0.1
        def inpaint(self, images, holes):
            return holes * 0.1 + (1 - holes) * images

    image = np.full((40, 40, 3), 0.2, np.float32)
    mask = np.zeros((40, 40), bool)
    mask[2:8, 2:8] = True
    image[mask] = 1.0
    obj, bg = inpainter_contrast(Constant(), image, mask, hole_expand=0.5)
    assert obj == pytest.approx(0.81) and bg == pytest.approx(0.01)  # (1 - 0.1)^2 and (0.2 - 0.1)^2


def test_background_holes_avoid_the_object():
    # object box 6x6 px at (2..8) in a 40x40 frame, enlarged by 50% -> a 9x9 hole at columns/rows 0..8
    hole, others = background_holes(np.array([5 / 40, 5 / 40, 0.15, 0.15]), 0.5, 40, 40)
    assert hole.sum() == 81 and hole[0, 0, :9, :9].all()
    assert others.shape == (8, 1, 40, 40)  # 3x3 positions minus the top-left corner, which overlaps
    assert torch.all(others.flatten(1).sum(1) == 81) and (others * hole).sum() == 0


def test_probability_mass_on_a_hand_made_grid():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    boxes = np.array([
        [0.25, 0.25, 0.5, 0.5],  # = the GT box: IoU 1, centre inside
        [0.25, 0.25, 0.2, 0.2],  # IoU 0.04 / 0.25 = 0.16, centre inside
        [0.75, 0.75, 0.5, 0.5],  # disjoint
        [0.5, 0.3, 0.5, 0.5],  # IoU 0.1125 / 0.3875 = 0.29; centre on the GT box's exclusive right edge
    ])
    mass_iou, mass_centre = probability_mass(probs, boxes, np.array([0.0, 0.0, 0.5, 0.5]))
    assert mass_iou == pytest.approx(0.1) and mass_centre == pytest.approx(0.3)
    assert probability_mass(probs, boxes, np.array([0.0, 0.0, 0.5, 0.5]), iou=0.25)[0] == pytest.approx(0.5)


# -- the whole report ---------------------------------------------------------------------------------------


def test_diagnose_on_a_trained_run(trained, tmp_path):
    result = diagnose(trained["run"], trained["data"], frames_per_sequence=3)
    assert result["background"] == "known"
    vitals = result["vitals"]
    assert vitals["logged_rows"] == 3 and [c["step"] for c in vitals["checkpoints"]] == [1, 2, 3]
    assert vitals["ring_share"] == 1.0 and not any("ring" in w for w in vitals["warnings"])  # 2x2 inner cells
    assert vitals["inner_cells"] == 4 and vitals["scale_range"] == [0.1, 0.9]
    logged = {row["step"]: row for row in map(json.loads, (trained["run"] / "train_metrics.jsonl").open())}
    for c in vitals["checkpoints"]:  # the values of the logged rows they stand for
        for key in ("vital/p_max", "vital/box_w"):
            assert c[key] == logged[c["step"]][key], key
    objects = result["objects"]
    assert objects["skipped"] is None
    assert [s["name"] for s in objects["sequences"]] == ["seq000", "seq001"]
    for row in [*objects["sequences"], objects["mean"]]:
        assert set(OBJECT_KEYS) <= set(row)
        for key in ("p_mass_iou", "p_mass_centre", "argmax_iou", "refined_iou", "mask_j", "mask_in", "mask_out"):
            assert 0.0 <= row[key] <= 1.0, key
        assert row["object_error"] > 0 and row["background_error"] > 0
        assert row["contrast_ratio"] > 1  # with the known background the figure's error exceeds the rest's
    assert [s["frames"] for s in objects["sequences"]] == [3, 3] and objects["mean"]["frames"] == 6
    assert {s["split"] for s in objects["sequences"]} == {"train"}
    assert result["warnings"] == [*vitals["warnings"], *objects["warnings"]]
    text = format_report(result)
    assert "1. vital signs" in text and "seq001" in text and "mean" in text

    out = tmp_path / "diag.json"
    assert main(["diagnose", str(trained["run"]), str(trained["data"]), "--frames", "2", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["objects"]["mean"]["frames"] == 4 and saved["vitals"]["checkpoints"][-1]["step"] == 3
    assert all(v is None or math.isfinite(v) for v in saved["objects"]["mean"].values())


def test_data_without_annotations_skips_part_two(trained, tmp_path):
    images = tmp_path / "frames"
    shutil.copytree(trained["data"] / "JPEGImages" / "seq000", images)
    result = diagnose(trained["run"], images, frames_per_sequence=2)
    assert "no annotations" in result["objects"]["skipped"] and result["objects"]["sequences"] == []
    assert result["vitals"]["logged_rows"] == 3
    assert "part 2 skipped" in format_report(result)


@pytest.mark.parametrize("missing", ["model.pt", "train_metrics.jsonl"])
def test_missing_run_files_name_the_file(trained, tmp_path, missing):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.pt", "train_metrics.jsonl", "config.yaml"):
        if name != missing:
            shutil.copy(trained["run"] / name, run / name)
    with pytest.raises(InpaintsegError, match=missing.replace(".", r"\.")):
        diagnose(run, trained["data"])
    assert main(["diagnose", str(run), str(trained["data"])]) == 2
