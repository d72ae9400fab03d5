"""One self-contained HTML report of a training run and its predictions (``inpaintseg report``).

The page loads nothing from elsewhere: pictures are embedded as base64 JPEG data URIs and charts are
inline SVG drawn here (no plotting library). Sections:

1. metrics: the evaluation JSON written by :func:`inpaintseg.evaluate.run` (``J_mean``, ``F_mean``,
   ``JF_mean``, ``J_recall``, ``mAP50``, ``threshold``, ``sequences`` ``{seq: {"J", "F"}}``, ...), read
   from ``eval_json`` or ``PRED/../eval.json``, or computed when absent and ground truth is given;
2. a per-sequence J / F bar chart;
3. learning curves vs step from ``RUN/train_metrics.jsonl`` (``loss/*`` and ``vital/*``) and
   ``RUN/inpainter_metrics.jsonl`` (``inpainter/*``) when present;
4. overlays of the best and worst frames by per-frame J at the evaluation threshold (needs ground truth):
   the predicted soft mask tints the frame red, the ground-truth outline is drawn in green;
5. the run's ``config.yaml``.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from inpaintseg.data.image_io import IMAGE_SUFFIXES, read_image, read_mask, resize_image
from inpaintseg.engine.logger import read_metrics
from inpaintseg.errors import DataError
from inpaintseg.evaluate import find_annotations, read_soft_mask
from inpaintseg.io import atomic_write_text
from inpaintseg.metrics import jaccard_at_thresholds

log = logging.getLogger(__name__)

CHARTED_FIRST = ("vital/p_max", "vital/box_w", "vital/box_h", "vital/mask_mean", "vital/hole_error")
"""The vital signs charted first (docs/method.md, "Failure modes"); other ``vital/*`` keys follow."""
FRAMES_PER_SIDE = 6
"""Best and worst frames shown (fewer when there are fewer than 12 frames: no frame is shown twice)."""
OVERLAY_MAX_SIDE = 256
"""Overlays are downscaled so that their longest side is at most this many pixels."""
MAX_POINTS = 600
"""Curves with more points are averaged over runs of consecutive points (keeps the file small)."""

PRED_COLOR = (255, 40, 40)
GT_COLOR = (0, 255, 0)
J_COLOR = "#1f77b4"
F_COLOR = "#ff7f0e"


# -- inputs -----------------------------------------------------------------------------------------------


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def read_eval_json(path: str | Path) -> dict:
    """Read an evaluation JSON (see :func:`inpaintseg.evaluate.evaluate`); DataError naming the file if it is
    unreadable or lacks ``sequences`` ``{name: {"J": number, "F": number}}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"cannot read evaluation JSON ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sequences"), dict):
        raise DataError(path, "not an evaluation result: expected an object with 'sequences'")
    for name, v in data["sequences"].items():
        if not isinstance(v, dict) or not _is_number(v.get("J")) or not _is_number(v.get("F")):
            raise DataError(path, f"sequence {name!r}: expected {{'J': number, 'F': number}}")
    return data


def curve(records: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) float64 (N,) of ``key`` over the records holding a finite number for it.

    The step is the record's ``step`` (its index when absent).
    """
    steps, values = [], []
    for i, rec in enumerate(records):
        v = rec.get(key)
        if _is_number(v):
            s = rec.get("step", i)
            steps.append(float(s) if _is_number(s) else float(i))
            values.append(float(v))
    return np.asarray(steps, np.float64), np.asarray(values, np.float64)


def chart_keys(records: Sequence[dict], prefixes: Sequence[str], first: Sequence[str] = ()) -> list[str]:
    """Keys to chart: those of ``first`` present, then the other keys starting with one of ``prefixes``
    (in prefix order, sorted within a prefix); only keys with at least one finite value."""
    present = {k for rec in records for k, v in rec.items() if _is_number(v)}
    keys = [k for k in first if k in present]
    for prefix in prefixes:
        keys += sorted(k for k in present if k.startswith(prefix) and k not in keys)
    return keys


def _bucket_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``x`` (N,) over ``n`` runs of consecutive elements of near-equal length."""
    edges = np.linspace(0, len(x), n + 1).round().astype(int)
    return np.array([x[a:b].mean() for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a])


# -- SVG charts ---------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def svg_line_chart(steps: np.ndarray, values: np.ndarray, title: str, width: int = 300,
                   height: int = 170) -> str:
    """An inline ``<svg>`` line chart of ``values`` (N,) against ``steps`` (N,), N >= 1, with the min and
    max of both axes labelled. More than ``MAX_POINTS`` points are averaged in runs of consecutive points."""
    steps = np.asarray(steps, np.float64)
    values = np.asarray(values, np.float64)
    if len(steps) > MAX_POINTS:
        steps, values = _bucket_mean(steps, MAX_POINTS), _bucket_mean(values, MAX_POINTS)
    left, right, top, bottom = 52, 10, 22, 24
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = float(steps.min()), float(steps.max())
    y0, y1 = float(values.min()), float(values.max())
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    px = left + (steps - x0) / (x1 - x0) * pw
    py = top + (1 - (values - y0) / (y1 - y0)) * ph
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{_esc(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>',
        f'<text x="{left}" y="15" font-size="12" font-weight="bold">{_esc(title)}</text>',
        f'<text x="{left - 4}" y="{top + 9}" font-size="10" text-anchor="end">{_fmt(y1)}</text>',
        f'<text x="{left - 4}" y="{top + ph}" font-size="10" text-anchor="end">{_fmt(y0)}</text>',
        f'<text x="{left}" y="{height - 8}" font-size="10">{_fmt(x0)}</text>',
        f'<text x="{left + pw}" y="{height - 8}" font-size="10" text-anchor="end">{_fmt(x1)}</text>',
        f'<text x="{left + pw / 2:.0f}" y="{height - 8}" font-size="10" text-anchor="middle">step</text>',
    ]
    if len(px) == 1:
        parts.append(f'<circle cx="{px[0]:.1f}" cy="{py[0]:.1f}" r="2.5" fill="{J_COLOR}"/>')
    else:
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{J_COLOR}" stroke-width="1.3"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_bar_chart(sequences: dict[str, dict], height: int = 220) -> str:
    """An inline ``<svg>`` chart of per-sequence J and F (``{seq: {"J", "F"}}``, values in [0, 1]) as pairs of
    bars, with the sequence names rotated below and a legend."""
    names = list(sequences)
    slot = 26
    label = 5.5 * max([len(n) for n in names] + [4])  # rough width in px of the longest name at 10 px
    left, right, top = max(36, int(0.71 * label) - 5), 10, 24  # names are rotated by 45 degrees
    bottom = 16 + int(0.71 * label)
    ph = height - top
    width = left + right + slot * max(len(names), 1)
    total_h = height + bottom
    parts = [
        f'<svg class="chart" width="{width}" height="{total_h}" viewBox="0 0 {width} {total_h}" role="img">',
        "<title>J and F per sequence</title>",
        f'<rect x="{left + 2}" y="4" width="10" height="10" fill="{J_COLOR}"/>'
        f'<text x="{left + 16}" y="13" font-size="11">J</text>'
        f'<rect x="{left + 32}" y="4" width="10" height="10" fill="{F_COLOR}"/>'
        f'<text x="{left + 46}" y="13" font-size="11">F</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + (1 - tick) * ph
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{tick:g}</text>')
    for i, name in enumerate(names):
        x = left + i * slot + 3
        for k, (key, color) in enumerate((("J", J_COLOR), ("F", F_COLOR))):
            v = min(max(float(sequences[name][key]), 0.0), 1.0)
            bh = v * ph
            parts.append(f'<rect x="{x + k * 10}" y="{top + ph - bh:.1f}" width="9" height="{bh:.1f}" '
                         f'fill="{color}"><title>{_esc(name)} {key} = {v:.3f}</title></rect>')
        tx, ty = x + 10, height + 10
        parts.append(f'<text x="{tx}" y="{ty}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-45 {tx} {ty})">{_esc(name)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{width - right}" y2="{top + ph}" stroke="#555"/></svg>')
    return "".join(parts)


# -- frames ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameScore:
    """Per-frame J of one annotated frame at the evaluation threshold."""

    sequence: str
    name: str
    j: float
    gt_path: Path
    pred_path: Path


def frame_scores(pred_dir: str | Path, gt_root: str | Path, threshold: float,
                 sequences: Sequence[str] | None = None) -> list[FrameScore]:
    """J of ``soft / 255 >= threshold`` against ``GT > 0`` for every GT frame (of ``sequences`` only, if
    given); a missing prediction counts as an empty mask, as in :func:`inpaintseg.evaluate.evaluate`."""
    ann = find_annotations(gt_root)
    pred_dir = Path(pred_dir)
    seq_dirs = sorted(p for p in ann.iterdir() if p.is_dir() and not p.name.startswith("."))
    if sequences is not None:
        wanted = set(sequences)
        seq_dirs = [p for p in seq_dirs if p.name in wanted]
    scores = []
    for seq_dir in seq_dirs:
        for gt_path in sorted(p for p in seq_dir.glob("*.png") if not p.name.startswith(".")):
            labels = read_mask(gt_path)
            gt = (labels[..., 0] if labels.ndim == 3 else labels) > 0
            pred_path = pred_dir / seq_dir.name / gt_path.name
            soft = read_soft_mask(pred_path, gt.shape)[0] if pred_path.is_file() else np.zeros(gt.shape, np.uint8)
            j = float(jaccard_at_thresholds(soft, gt, [threshold])[0])
            scores.append(FrameScore(seq_dir.name, gt_path.stem, j, gt_path, pred_path))
    return scores


def best_and_worst(scores: Sequence[FrameScore], k: int = FRAMES_PER_SIDE) -> tuple[list[FrameScore],
                                                                                      list[FrameScore]]:
    """The ``k`` highest-J frames (best first) and the ``k`` lowest (worst first), never the same frame
    twice: with N < 2k frames, ceil(N/2) best and the rest worst. Ties are broken by (sequence, frame)."""
    by_j = sorted(scores, key=lambda s: (-s.j, s.sequence, s.name))
    n_best = min(k, (len(by_j) + 1) // 2)
    n_worst = min(k, len(by_j) - n_best)
    best = by_j[:n_best]
    worst = by_j[len(by_j) - n_worst:][::-1]
    return best, worst


def overlay_frame(image: np.ndarray, soft: np.ndarray, gt: np.ndarray,
                  max_side: int = OVERLAY_MAX_SIDE) -> np.ndarray:
    """RGB uint8 (H', W', 3) frame, uint8 (H, W) soft mask (0..255) and bool (H, W) GT -> RGB uint8 (h, w, 3).

    The frame is resized to (H, W), then everything is downscaled so that max(h, w) <= ``max_side``. Each
    pixel is tinted towards ``PRED_COLOR`` with weight 0.6 * soft / 255; the GT's outer contour is drawn
    1 px wide in ``GT_COLOR`` on top.
    """
    h, w = gt.shape
    image = resize_image(image, (w, h), cv2.INTER_AREA)
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image, soft = resize_image(image, size, cv2.INTER_AREA), resize_image(soft, size, cv2.INTER_AREA)
        gt = cv2.resize(gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    a = 0.6 * soft.astype(np.float32)[..., None] / 255.0
    out = image.astype(np.float32) * (1 - a) + np.array(PRED_COLOR, np.float32) * a
    out = np.clip(out, 0, 255).round().astype(np.uint8)
    contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, GT_COLOR, 1)
    return out


def _frame_image(ann: Path, sequence: str, name: str, shape: tuple[int, int]) -> np.ndarray:
    """The RGB frame from ``JPEGImages/<seq>/<name>.*`` next to the ``Annotations`` folder ``ann``; mid-gray
    (H, W, 3) of ``shape`` if there is none."""
    images = ann.parent / "JPEGImages" / sequence
    for suffix in IMAGE_SUFFIXES:
        path = images / f"{name}{suffix}"
        if path.is_file():
            return read_image(path)
    return np.full((*shape, 3), 128, np.uint8)


def _data_uri_jpeg(rgb: np.ndarray, quality: int = 85) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(ann: Path, score: FrameScore) -> str:
    labels = read_mask(score.gt_path)
    gt = (labels[..., 0] if labels.ndim == 3 else labels) > 0
    if score.pred_path.is_file():
        soft = read_soft_mask(score.pred_path, gt.shape)[0]
    else:
        soft = np.zeros(gt.shape, np.uint8)
    image = _frame_image(ann, score.sequence, score.name, gt.shape)
    uri = _data_uri_jpeg(overlay_frame(image, soft, gt))
    caption = f"{score.sequence} / {score.name} — J = {score.j:.3f}"
    return (f'<figure><img src="{uri}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption>'
            "</figure>")


# -- page ------------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 1.5em 0.5em 0; display: inline-table; vertical-align: top; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.mean td { font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; } figure img { width: 256px; image-rendering: auto; }
figcaption { font-size: 0.8em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #777; font-style: italic; }
"""


def _value(result: dict, key: str) -> str:
    v = result.get(key)
    if key == "mAP50" and v is None and "mAP50" in result:
        return "n/a (no detections)"
    if isinstance(v, bool) or v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3f}" if _is_number(v) else _esc(v)


def _metrics_section(result: dict | None, source: str) -> str:
    if result is None:
        return f'<p class="note">{_esc(source)}</p>'
    rows = [("J mean", "J_mean"), ("F mean", "F_mean"), ("J&amp;F mean", "JF_mean"),
            ("J recall (J &gt; 0.5)", "J_recall"), ("mAP@0.5", "mAP50"), ("threshold", "threshold"),
            ("frames evaluated", "frames"), ("missing predictions", "missing"), ("resized predictions", "resized")]
    summary = "".join(f"<tr><td>{label}</td><td>{_value(result, key)}</td></tr>" for label, key in rows)
    per_seq = "".join(
        f"<tr><td>{_esc(name)}</td><td>{v['J']:.3f}</td><td>{v['F']:.3f}</td></tr>"
        for name, v in result["sequences"].items()
    )
    mean = ""
    if _is_number(result.get("J_mean")) and _is_number(result.get("F_mean")):
        mean = f'<tr class="mean"><td>mean</td><td>{result["J_mean"]:.3f}</td><td>{result["F_mean"]:.3f}</td></tr>'
    return (f'<p class="note">{_esc(source)}</p>'
            f'<table class="summary"><tr><th>metric</th><th>value</th></tr>{summary}</table>'
            f'<table class="sequences"><tr><th>sequence</th><th>J</th><th>F</th></tr>{per_seq}{mean}</table>')


def _curves_section(path: Path, prefixes: Sequence[str], first: Sequence[str] = ()) -> str:
    if not path.is_file():
        return f'<p class="note">no {_esc(path.name)} in the run folder</p>'
    records, bad = read_metrics(path, lenient=True)
    keys = chart_keys(records, prefixes, first)
    notes = f"{len(records)} logged steps"
    if bad:
        notes += f", {bad} unreadable line(s) skipped"
    elapsed = [r["time/elapsed_s"] for r in records if _is_number(r.get("time/elapsed_s"))]
    if elapsed:
        notes += f", {elapsed[-1] / 60:.1f} min of training"
    charts = "".join(svg_line_chart(*curve(records, k), title=k) for k in keys)
    if not keys:
        return f'<p class="note">{_esc(path.name)}: {notes}, nothing to chart</p>'
    return f'<p class="note">{_esc(path.name)}: {notes}</p><div class="charts">{charts}</div>'


def _frames_section(pred_dir: Path, gt_root: Path | None, result: dict | None) -> str:
    if gt_root is None or result is None:
        return '<p class="note">frame overlays need the ground truth (--gt) and an evaluation</p>'
    threshold = float(result["threshold"]) if _is_number(result.get("threshold")) else 0.5
    scores = frame_scores(pred_dir, gt_root, threshold, list(result["sequences"]))
    if not scores:
        return '<p class="note">no annotated frame of the evaluated sequences under the ground truth</p>'
    best, worst = best_and_worst(scores)
    ann = find_annotations(gt_root)
    legend = (f'<p class="note">per-frame J at threshold {threshold:.2f}; red tint: predicted mask (opacity '
              f"= probability), green: ground-truth outline</p>")
    return (legend
            + f"<h3>best {len(best)}</h3><div class=\"grid\">{''.join(_figure(ann, s) for s in best)}</div>"
            + f"<h3>worst {len(worst)}</h3><div class=\"grid\">{''.join(_figure(ann, s) for s in worst)}"
            + "</div>")


def _load_result(pred_dir: Path, gt_root: Path | None, eval_json: Path | None) -> tuple[dict | None, str]:
    """(evaluation result or None, a sentence saying where it came from)."""
    candidates = [eval_json] if eval_json is not None else [pred_dir.parent / "eval.json"]
    for path in candidates:
        if path.is_file():
            return read_eval_json(path), f"metrics from {path}"
    if gt_root is not None:
        from inpaintseg.evaluate import run as run_evaluate

        return run_evaluate(pred_dir, gt_root, eval_json), f"metrics computed against {gt_root}"
    return None, f"no evaluation: {candidates[0]} does not exist and no ground truth (--gt) was given"


def build_html(run_dir: str | Path, pred_dir: str | Path, gt_root: str | Path | None = None,
               eval_json: str | Path | None = None) -> str:
    """The report page as a string (see the module docstring); :func:`write_report` writes it."""
    run_dir, pred_dir = Path(run_dir), Path(pred_dir)
    gt = Path(gt_root) if gt_root is not None else None
    if not run_dir.is_dir():
        raise DataError(run_dir, "run folder does not exist")
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "prediction folder does not exist")
    result, source = _load_result(pred_dir, gt, Path(eval_json) if eval_json is not None else None)
    bars = svg_bar_chart(result["sequences"]) if result and result["sequences"] else ""
    config_path = run_dir / "config.yaml"
    if config_path.is_file():
        config = f"<pre>{_esc(config_path.read_text(encoding='utf-8', errors='replace'))}</pre>"
    else:
        config = '<p class="note">no config.yaml in the run folder</p>'
    stage1 = ""
    if (run_dir / "inpainter_metrics.jsonl").is_file():
        stage1 = "<h3>stage 1: inpainter</h3>" + _curves_section(run_dir / "inpainter_metrics.jsonl",
                                                                 ("inpainter/",))
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>inpaintseg report: {_esc(run_dir.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>inpaintseg report</h1>",
        f'<p class="note">run {_esc(run_dir)} — predictions {_esc(pred_dir)}'
        f"{' — ground truth ' + _esc(gt) if gt is not None else ''} — made {when}</p>",
        "<h2>Metrics</h2>", _metrics_section(result, source),
        "<h2>J and F per sequence</h2>", bars or '<p class="note">no evaluation</p>',
        "<h2>Learning curves</h2>",
        "<h3>stage 2: detector + segmenter</h3>",
        _curves_section(run_dir / "train_metrics.jsonl", ("loss/", "vital/"), ("loss/total", *CHARTED_FIRST)),
        stage1,
        "<h2>Best and worst frames</h2>", _frames_section(pred_dir, gt, result),
        "<h2>Configuration</h2>", config,
        "</body></html>",
        "",
    ])


def write_report(run_dir: str | Path, pred_dir: str | Path, out: str | Path, gt_root: str | Path | None = None,
                 eval_json: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of ``run_dir`` (config.yaml, *_metrics.jsonl) and ``pred_dir``
    (``<seq>/<frame>.png`` soft masks) to ``out``, atomically; returns ``out``.

    Metrics come from ``eval_json`` (default ``pred_dir/../eval.json``); when that file does not exist and
    ``gt_root`` (a DAVIS root) is given, they are computed with :func:`inpaintseg.evaluate.run` (and written
    to ``eval_json`` if it was given). Frame overlays need ``gt_root``. DataError for missing folders or a
    malformed evaluation JSON.
    """
    out = Path(out)
    atomic_write_text(out, build_html(run_dir, pred_dir, gt_root, eval_json))
    return out
