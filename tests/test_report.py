"""The HTML report: a fake run folder, a tiny DAVIS-layout GT and predictions made here."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaintseg.cli import main
from inpaintseg.data.image_io import write_jpeg, write_png
from inpaintseg.errors import DataError
from inpaintseg.evaluate import run as run_evaluate
from inpaintseg.report import (
    best_and_worst,
    frame_scores,
    overlay_frame,
    svg_line_chart,
    write_report,
)

W, H = 32, 24
FRAMES = 7
SIDE = 8  # GT squares are SIDE x SIDE at rows 4..11, columns 4 + f ..
# "alpha" is predicted exactly; "beta" frame f is predicted shifted right by f px:
# J = SIDE (SIDE - f) / (2 SIDE^2 - SIDE (SIDE - f)) = (8 - f) / (8 + f)
BETA_J = [(8 - f) / (8 + f) for f in range(FRAMES)]

TRAIN_LINES = [
    '{"step": 10, "loss/total": 1.5, "loss/bg": 0.5, "vital/p_max": 0.2, "vital/box_w": 0.3, "time/elapsed_s": 60}',
    '{"step": 20, "loss/total": 1.0, "loss/bg": 0.4, "vital/p_max": 0.4, "vital/box_w": 0.25, "time/elapsed_s": 120}',
    '{"step": 25, "skipped/nonfinite_loss": 1.0}',
    '{"step": 30, "loss/total": null, "loss/bg": 0.3, "vital/p_max": 0.5, "vital/box_w": 0.2, "time/elapsed_s": 180}',
    '{"step": 40, "loss/to',  # a training killed mid-write
]
# charted: loss/total, vital/p_max, vital/box_w (the listed keys first), then loss/bg; + inpainter/l1
N_LINE_CHARTS = 5


def square(col: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[4 : 4 + SIDE, col : col + SIDE] = 255
    return m


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    gt, out = root / "davis", root / "out"
    for seq in ("alpha", "beta"):
        for f in range(FRAMES):
            name = f"{f:05d}"
            write_png(gt / "Annotations" / seq / f"{name}.png", square(4 + f))
            write_jpeg(gt / "JPEGImages" / seq / f"{name}.jpg", np.full((H, W, 3), 100, np.uint8))
            write_png(out / "pred" / seq / f"{name}.png", square(4 + f + (f if seq == "beta" else 0)))
    run_dir = out / "run"
    run_dir.mkdir()
    (run_dir / "train_metrics.jsonl").write_text("\n".join(TRAIN_LINES) + "\n")
    (run_dir / "inpainter_metrics.jsonl").write_text('{"step": 5, "inpainter/l1": 0.9}\n'
                                                     '{"step": 10, "inpainter/l1": 0.7}\n')
    (run_dir / "config.yaml").write_text("data:\n  size:\n  - 160\n  - 96\ntrain:\n  note: <b>&amp;</b>\n")
    run_evaluate(out / "pred", gt, out / "eval.json")
    return {"gt": gt, "out": out, "pred": out / "pred", "run": run_dir}


class Page(HTMLParser):
    """Collects what the tests look at: img sources, svg titles, table cells, figcaptions, pre text."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.svgs = 0
        self.svg_titles: list[str] = []
        self.cells: list[str] = []
        self.captions: list[str] = []
        self.pre = ""
        self._stack: list[str] = []
        self._in_svg = False

    def handle_starttag(self, tag, attrs):
        self._stack.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        if tag == "svg":
            self.svgs += 1
            self._in_svg = True

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg = False
        while self._stack and self._stack.pop() != tag:
            pass

    def handle_data(self, data):
        top = self._stack[-1] if self._stack else ""
        if top == "td":
            self.cells.append(data)
        elif top == "figcaption":
            self.captions.append(data)
        elif top == "pre":
            self.pre += data
        elif top == "title" and self._in_svg and len(self._stack) >= 2 and self._stack[-2] == "svg":
            self.svg_titles.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def test_report_contents(tree, tmp_path):
    out = write_report(tree["run"], tree["pred"], tmp_path / "r" / "report.html", gt_root=tree["gt"])
    assert out == tmp_path / "r" / "report.html"
    text = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 3_000_000
    assert "http://" not in text and "https://" not in text
    page = parse(out)

    # (1) metrics from out/eval.json (PRED/../eval.json): alpha J = 1, beta J = mean of (8 - f) / (8 + f)
    assert f"metrics from {tree['out'] / 'eval.json'}" in text
    beta = sum(BETA_J) / FRAMES
    assert f"{beta:.3f}" == "0.506"
    cells = page.cells
    i = cells.index("alpha")
    assert cells[i + 1] == "1.000"
    i = cells.index("beta")
    assert cells[i + 1] == "0.506"
    i = cells.index("mean")
    assert cells[i + 1] == f"{(1 + beta) / 2:.3f}" == "0.753"
    assert cells[cells.index("mAP@0.5") + 1] == "n/a (no detections)"
    assert cells[cells.index("frames evaluated") + 1] == "14"

    # (2) + (3): one bar chart and one line chart per charted key, the listed vital signs first
    assert page.svgs == 1 + N_LINE_CHARTS
    assert page.svg_titles == ["J and F per sequence", "loss/total", "vital/p_max", "vital/box_w", "loss/bg",
                               "inpainter/l1"]
    assert "3 logged steps" not in text and "4 logged steps, 1 unreadable line(s) skipped, 3.0 min" in text

    # (4) 6 best + 6 worst frames as JPEG data URIs, worst first in its row
    assert len(page.imgs) == 12
    for src in page.imgs:
        assert src.startswith("data:image/jpeg;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert im.size == (W, H)
    assert page.captions[:6] == [f"alpha / {f:05d} — J = 1.000" for f in range(6)]
    assert page.captions[6:] == [f"beta / {f:05d} — J = {BETA_J[f]:.3f}" for f in range(6, 0, -1)]
    assert page.captions[6] == "beta / 00006 — J = 0.143"

    # (5) the config, escaped
    assert "note: <b>&amp;</b>" in page.pre
    assert "<b>&amp;</b>" not in text


def test_report_computes_evaluation_without_json(tree, tmp_path):
    pred = tmp_path / "elsewhere" / "pred"
    shutil.copytree(tree["pred"], pred)
    eval_json = tmp_path / "eval_new.json"
    write_report(tree["run"], pred, tmp_path / "report.html", gt_root=tree["gt"], eval_json=eval_json)
    assert json.loads(eval_json.read_text())["sequences"]["beta"]["J"] == pytest.approx(sum(BETA_J) / FRAMES)
    page = parse(tmp_path / "report.html")
    assert page.cells[page.cells.index("beta") + 1] == "0.506"
    assert len(page.imgs) == 12


def test_report_without_evaluation_or_gt(tree, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(tree["pred"], pred)
    out = write_report(tree["run"], pred, tmp_path / "report.html")
    page = parse(out)
    text = out.read_text()
    assert "no evaluation" in text and "need the ground truth" in text
    assert page.imgs == [] and page.svgs == N_LINE_CHARTS


def test_report_bad_inputs(tree, tmp_path):
    bad = tmp_path / "eval.json"
    bad.write_text('{"sequences": {"a": {"J": "high"}}}')
    with pytest.raises(DataError, match="eval.json"):
        write_report(tree["run"], tree["pred"], tmp_path / "r.html", eval_json=bad)
    with pytest.raises(DataError, match="run folder does not exist"):
        write_report(tmp_path / "nope", tree["pred"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_cli_report(tree, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(tree["run"]), str(tree["pred"]), "--out", str(out), "--gt", str(tree["gt"])]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert len(parse(out).imgs) == 12


def test_overlay_frame_colours():
    image = np.full((H, W, 3), 100, np.uint8)
    soft = np.zeros((H, W), np.uint8)
    soft[0:3, 0:3] = 255
    gt = square(10) > 0  # rows 4..11, columns 10..17
    out = overlay_frame(image, soft, gt)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert out[1, 1].tolist() == [193, 64, 64]  # 0.4 * 100 + 0.6 * (255, 40, 40)
    assert out[4, 12].tolist() == [0, 255, 0]  # top edge of the GT square
    assert out[7, 13].tolist() == [100, 100, 100]  # inside the GT, not predicted: untouched
    assert out[20, 30].tolist() == [100, 100, 100]
    big = overlay_frame(np.zeros((480, 640, 3), np.uint8), np.zeros((480, 640), np.uint8), np.zeros((480, 640), bool))
    assert big.shape == (192, 256, 3)


def test_best_and_worst_never_repeat(tree):
    scores = frame_scores(tree["pred"], tree["gt"], 0.5)
    assert len(scores) == 14
    assert sorted(s.j for s in scores if s.sequence == "beta") == pytest.approx(sorted(BETA_J))
    best, worst = best_and_worst(scores[:5])  # 5 frames: 3 best, 2 worst
    assert (len(best), len(worst)) == (3, 2)
    assert not {(s.sequence, s.name) for s in best} & {(s.sequence, s.name) for s in worst}


def test_svg_line_chart_coordinates():
    svg = svg_line_chart(np.array([0.0, 10.0]), np.array([0.0, 1.0]), "x", width=300, height=170)
    # plot area: x 52..290, y 22..146 (margins 52, 10, 22, 24)
    assert 'points="52.0,146.0 290.0,22.0"' in svg
    one = svg_line_chart(np.array([5.0]), np.array([2.0]), "one")
    assert "<circle" in one and "<polyline" not in one


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def test_report_in_headless_browser(tree, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no headless Chromium on this machine")
    out = write_report(tree["run"], tree["pred"], tmp_path / "report.html", gt_root=tree["gt"])
    dom = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert '<table class="sequences">' in dom and "<td>beta</td>" in dom
    assert dom.count('<img src="data:image/jpeg;base64,') == 12
