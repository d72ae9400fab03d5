"""Every command of README's table through ``cli.main`` on small data, checking what it writes and prints
(commands tested the same way elsewhere: predict, report, export, flow, diagnose, train)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from inpaintseg import demo
from inpaintseg.cli import main
from inpaintseg.data.image_io import read_mask, write_png
from inpaintseg.data.synth import generate
from tests.helpers import TINY

DAVIS_MINI = Path(__file__).parent / "data" / "davis_mini"


def test_synth_writes_a_davis_layout_benchmark(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", str(out), "--camera", "handheld", "--sequences", "2", "--frames", "3", "--size", "64x48",
                 "--seed", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["camera"] == "handheld" and meta["size"] == [64, 48]
    assert sorted(meta["sequences"]) == ["seq000", "seq001"]
    for seq in ("seq000", "seq001"):
        frames = sorted((out / "JPEGImages" / seq).glob("*.jpg"))
        masks = [read_mask(p) for p in sorted((out / "Annotations" / seq).glob("*.png"))]
        assert len(frames) == len(masks) == 3
        assert all(m.shape == (48, 64) and 0 < (m > 0).mean() < 0.5 for m in masks)  # one figure in each frame


def test_evaluate_scores_perfect_and_empty_predictions(tmp_path, capsys):
    perfect, empty = tmp_path / "perfect", tmp_path / "empty"
    for seq in ("bear", "hike"):
        (perfect / seq).mkdir(parents=True)
        (empty / seq).mkdir(parents=True)
        for gt in sorted((DAVIS_MINI / "Annotations" / seq).glob("*.png")):
            mask = read_mask(gt)
            write_png(perfect / seq / gt.name, np.where(mask > 0, 255, 0).astype(np.uint8))
            write_png(empty / seq / gt.name, np.zeros_like(mask, dtype=np.uint8))
    assert main(["evaluate", str(perfect), str(DAVIS_MINI), "--json", str(tmp_path / "p.json")]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\nmean\s+1\.000\s+1\.000\n", printed), printed  # J and F
    assert json.loads((tmp_path / "p.json").read_text())["J_mean"] == pytest.approx(1.0)
    assert main(["evaluate", str(empty), str(DAVIS_MINI), "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["J_mean"] == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["center", "bgsub"])
def test_baseline_writes_a_mask_per_frame(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["baseline", name, str(DAVIS_MINI), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    for seq in ("bear", "hike"):
        masks = [read_mask(p) for p in sorted((out / seq).glob("*.png"))]
        assert len(masks) == 3
        assert all(m.shape == (240, 427) and 0 < m.max() for m in masks)
    assert main(["evaluate", str(out), str(DAVIS_MINI), "--json", str(tmp_path / "eval.json")]) == 0
    assert 0.0 < json.loads((tmp_path / "eval.json").read_text())["J_mean"] < 1.0


def test_demo_through_the_cli_prints_and_reports_its_figures(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "TRAIN_SPLIT", (2, 6))
    monkeypatch.setattr(demo, "TEST_SPLIT", (1, 6))
    over = [o for o in TINY if not o.startswith(("data.background", "sampling.method"))]
    assert main(["demo", "--out", str(tmp_path / "demo"), *over, "train.steps=2", "data.temporal_offsets=[-2,2]"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "demo" / "eval.json").read_text())
    for key in ("J_mean", "F_mean", "mAP50"):
        assert 0.0 <= result[key] <= 1.0, key
    assert re.search(rf"\nmean\s+{result['J_mean']:.3f}\s+{result['F_mean']:.3f}\n", printed), printed
    html = (tmp_path / "demo" / "report.html").read_text()
    assert f"{result['J_mean']:.3f}" in html and f"{result['F_mean']:.3f}" in html


def test_config_prints_the_resolved_configuration(capsys):
    assert main(["config", "train.minutes=7", "train.init=default"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"minutes: 7\.0", printed) and "init: default" in printed


@pytest.fixture(scope="module")
def video_like(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("ptz"), camera="ptz", sequences=1, frames=6, size=(96, 64), seed=9)


def test_train_inpainter_trains_stage_1_only(video_like, tmp_path):
    """On video with the cpu preset: no backgrounds, flows or mask targets are computed and no flow inpainter is
    trained (stage 2 would use neither); with data.background=inpainter the flow inpainter is trained too."""
    over = [o for o in TINY if not o.startswith(("data.background", "data.flow", "sampling.method"))]
    run = tmp_path / "auto"
    assert main(["train-inpainter", str(video_like), "--out", str(run), *over, "inpainter.steps=2"]) == 0
    assert (run / "inpainter.pt").is_file() and not (run / "flow_inpainter.pt").exists()
    assert not (run / "cache").exists() and not (run / "model.pt").exists()
    run = tmp_path / "inpainter"
    assert main(["train-inpainter", str(video_like), "--out", str(run), *over, "inpainter.steps=2",
                 "data.background=inpainter", "data.temporal_offsets=[-2,2]"]) == 0
    assert (run / "inpainter.pt").is_file() and (run / "flow_inpainter.pt").is_file()


@pytest.mark.parametrize("override, message", [
    ("train.minutes=-3", "train.minutes=-3.0: must be 0 (no time limit) or more"),
    ("train.steps=0", "train.steps=0: must be at least 1"),
    ("inpainter.steps=-1", "inpainter.steps=-1: must be at least 1"),
])
def test_values_that_make_no_sense_are_one_line_errors(video_like, tmp_path, capsys, override, message):
    assert main(["train", str(video_like), "--out", str(tmp_path / "run"), override]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"inpaintseg: error: {message}"
    assert not (tmp_path / "run").exists()


def test_predict_into_an_existing_file_is_a_one_line_error(tmp_path, capsys):
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    assert main(["predict", "some/model.pt", str(DAVIS_MINI), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"inpaintseg: error: {target}: the output folder exists and is not a folder (choose another --out)"
    assert target.read_text() == "keep me"
