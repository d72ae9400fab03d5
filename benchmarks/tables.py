"""Generate the tables of BENCHMARKS.md from benchmarks/results.jsonl.

    python benchmarks/tables.py            # rewrite the tables in BENCHMARKS.md
    python benchmarks/tables.py --check    # exit 1, naming the stale tables, if BENCHMARKS.md is out of date
    python benchmarks/tables.py --doc OTHER.md --results OTHER.jsonl [--check]

Every benchmark run appends one JSON object to ``benchmarks/results.jsonl`` (see ``benchmarks/accuracy.py``):
its figures, its command or overrides, the commit it ran at, the machine and the date. ``TABLES`` below lists,
for every table of BENCHMARKS.md, the results.jsonl line numbers (1-based) of its rows, a label for each row and
the figure columns to show. Each table is rendered as markdown with the line number, the label, the figures,
the exact command, the commit, the machine and the date of every row, and replaces the text between the
markers ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in the document.

To add a result: run the benchmark (it appends a line), add a ``Row(line, label)`` to the right table here
(or a new ``Table`` and its two markers in BENCHMARKS.md), then run this script. Lines are never edited.

This script reads JSON and writes markdown only: it must not import torch or the package, because
``tests/test_benchmarks_doc.py`` runs its check in every test run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "BENCHMARKS.md"
RESULTS = HERE / "results.jsonl"

# accuracy.py's default --data, written out in the commands of the DAVIS lines that do not record it
DAVIS_DATA = "../shared/data/davis2016-train-240p"

# the scores of reward_choice.py's lines, in its order
CHOICE_SCORES = ("temporal", "inpainter", "flow", "flow_zero", "inpainter_flow", "detector", "best")


@dataclass(frozen=True)
class Row:
    """One table row: the line number of its result in results.jsonl (1-based) and what the run was."""

    line: int
    label: str


@dataclass(frozen=True)
class Table:
    """One generated table: its marker name in BENCHMARKS.md, its figure columns (keys of ``COLUMNS``)
    and its rows."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


# ---------------------------------------------------------------------------------------------------------
# The tables. Line numbers are results.jsonl's (1-based); labels say what differs between the rows.
# ---------------------------------------------------------------------------------------------------------

TABLES: tuple[Table, ...] = (
    Table("synthetic", ("refined", "raw"), (
        Row(48, "PTZ, no flow, seed 0, 18 minutes"),
        Row(61, "PTZ, no flow, seed 1, 1,950 steps"),
        Row(60, "PTZ, flow, seed 0, 1,950 steps"),
        Row(63, "PTZ, flow, seed 1, 1,950 steps"),
        Row(68, "PTZ, flow in the mask target only, seed 0, 1,950 steps"),
        Row(67, "PTZ, flow in the mask target only, seed 1, 1,950 steps"),
        Row(52, "hand-held, no flow, seed 0, 1,950 steps"),
        Row(65, "hand-held, no flow, seed 1, 1,950 steps"),
        Row(59, "hand-held, flow, seed 0, 1,950 steps"),
        Row(64, "hand-held, flow, seed 1, 1,950 steps"),
        Row(66, "hand-held, flow in the mask target only, seed 0, 1,950 steps"),
        Row(69, "hand-held, flow in the mask target only, seed 1, 1,950 steps"),
    )),
    Table("davis", ("refined", "raw"), (
        Row(161, "the cpu preset as it is (from `default`, which was pretrained on 18 of these 27 sequences), flow, "
                 "seed 0, 60 minutes"),
        Row(162, "the same, seed 1"),
        Row(75, "flow, seed 0, 4,500 steps"),
        Row(74, "no flow, seed 0, 4,500 steps"),
        Row(77, "flow, seed 1, 3,000 steps"),
        Row(76, "no flow, seed 1, 3,000 steps"),
        Row(62, "flow, seed 0, 2,000 steps"),
        Row(73, "flow in the mask target only, seed 0, 2,000 steps"),
        Row(55, "no flow, seed 0, 2,000 steps"),
        Row(71, "flow, seed 1, 2,000 steps"),
        Row(57, "no flow, seed 1, 2,000 steps"),
        Row(51, "no flow, seed 1, 60 minutes"),
        Row(49, "no flow, seed 0, 60 minutes"),
    )),
    Table("demo", ("refined", "wall_s"), (
        Row(114, "`inpaintseg demo`: synthetic PTZ, data generation to report, 12 minutes of stage 2, no flow, from "
                 "the shipped weights (the cpu preset's `train.init=default`)"),
        Row(89, "`inpaintseg demo`: synthetic PTZ, data generation to report, 12 minutes of stage 2, no flow, from "
                "random weights (the cpu preset's `train.init` then)"),
        Row(90, "the demo at 789 steps (the steps of line 89's 12 minutes), from random weights, one torch thread"),
        Row(112, "the same 789 steps from the shipped weights (`train.init=default`, the cpu preset's now)"),
    )),
    Table("shipped", ("refined", "raw", "train_s"), (
        Row(92, "`default` with no training (`runs/zs9583.pt`: the same D and S tensors), one image at a time"),
        Row(150, "the same (`--model default`), `--temporal` (video mode's defaults: cell weight 0.8, mask weight "
                 "0.5)"),
        Row(147, "the same, `--temporal --cell-weight 1 --mask-weight 0.7`"),
        Row(106, "20 minutes of training from `default` (`train.init`; 1,422 steps), seed 0"),
        Row(108, "for comparison: 60 minutes of training from random weights (4,608 steps), seed 0"),
        Row(169, "line 106 again, on an AMD EPYC, beside line 167 (973 steps)"),
        Row(167, "line 169 at a tenth of the learning rates (`train.lr=1e-4 train.decoder_lr=1e-4`; 962 steps): "
                 "not kept for the temporal background"),
        Row(173, "the learning curve from `default`, seed 0, AMD EPYC: 100 steps (raw masks only)"),
        Row(175, "the same, 300 steps"),
        Row(174, "line 147 again (`--model default --temporal --cell-weight 1 --mask-weight 0.7`), on the AMD EPYC"),
        Row(111, "20 minutes of training from `default` (1,432 steps), seed 1"),
        Row(113, "for comparison: 60 minutes of training from random weights (4,220 steps), seed 1"),
        Row(130, "20 minutes from `default` with `data.background=both` (per pixel the better of the temporal and "
                 "the inpainted background), seed 0"),
        Row(131, "the same, seed 1"),
        Row(85, "for comparison: homography background subtraction (no network; uses the neighbouring frames)"),
    )),
    Table("video_mode", ("refined", "raw", "predict_s"), (
        Row(92, "zero-shot pretraining weights (`runs/zs9583.pt`: `pretrain.py model` at stage-2 step 9,583), nine "
                "held-out sequences, one image at a time"),
        Row(147, "the same weights (`default`), `--temporal --cell-weight 1 --mask-weight 0.7`, the mask's motion cue "
                 "with the stabilised flow"),
        Row(150, "the same, `--temporal` (the defaults), with the flow"),
        Row(93, "before the flow joined the motion cue: `--temporal --cell-weight 1 --mask-weight 0.7`"),
        Row(105, "before the flow: `--temporal` (the defaults: cell weight 0.8, mask weight 0.5)"),
        Row(85, "for comparison: homography background subtraction on the same frames, refined"),
        Row(95, "the same weights on the 18 DAVIS sequences they were pretrained on, one image at a time"),
        Row(152, "the same (`--model default`), `--temporal --cell-weight 1 --mask-weight 0.7`, with the flow"),
        Row(94, "before the flow joined the motion cue: the same"),
        Row(161, "DAVIS 27 sequences, trained on their frames by the cpu preset as it is (60 minutes from "
                 "`default`), seed 0, one image at a time"),
        Row(163, "the same model, `--temporal` (the defaults)"),
        Row(162, "the same, seed 1, one image at a time"),
        Row(164, "the same model, `--temporal` (the defaults)"),
        Row(98, "DAVIS 27 sequences, trained on their frames, seed 0, 4,500 steps with flow, one image at a time"),
        Row(148, "the same model, `--temporal` (the defaults: cell weight 0.8, mask weight 0.5), with the flow"),
        Row(104, "before the flow: the same model, `--temporal` (the defaults)"),
        Row(100, "the same model, `--temporal --cell-weight 1 --mask-weight 0.7`"),
        Row(102, "the same model, `--temporal --cell-weight 1 --mask-weight 0.5`"),
        Row(97, "DAVIS 27 sequences, trained on their frames, seed 1, 3,000 steps with flow, one image at a time"),
        Row(149, "the same model, `--temporal` (the defaults: cell weight 0.8, mask weight 0.5), with the flow"),
        Row(103, "before the flow: the same model, `--temporal` (the defaults)"),
        Row(99, "the same model, `--temporal --cell-weight 1 --mask-weight 0.7`"),
        Row(101, "the same model, `--temporal --cell-weight 1 --mask-weight 0.5`"),
    )),
    Table("video_memory", ("rss", "video_fps"), (
        Row(151, "`predict_source` in video mode (with the flow), cpu preset, random weights, batch 8, masks, one "
                 "torch thread, idle machine (before the flow, run right after on the same machine: 17.8 frames/s, "
                 "ratio 0.992)"),
        Row(96, "before the flow, the same beside two training runs"),
    )),
    Table("flat_folder", ("refined", "raw"), (
        Row(107, "`auto` (it chose `collection`), 20 minutes from `default` (1,720 steps)"),
        Row(121, "`inpainter` (the paper's single-image background; I fine-tuned 5 minutes), importance sampling, "
                 "no flow, 20 minutes from `default` (1,225 steps)"),
        Row(172, "line 121 again, on an AMD EPYC, beside line 171 (`train.inpainter_lr_scale=1`: the full rates)"),
        Row(171, "line 121's command from commit 02b245d on: a tenth of the learning rates"),
        Row(86, "`collection` (the most similar frames as neighbours), 800 steps from interim weights"),
        Row(83, "`inpainted` (the fine-tuned inpainter's fills), inpainter fine-tuned 300 steps, 800 steps from "
                "interim weights"),
    )),
    Table("single_image", ("refined", "raw", "train_s"), (
        Row(34, "`inpainter` (the paper's U-Net, stage 1 in the run), importance sampling, 6 minutes of stage 2, "
                "synthetic PTZ"),
        Row(70, "`inpainter` (stage 1 in the run), importance sampling, 1,000 steps, synthetic hand-held"),
        Row(72, "the same with flow (the flow inpainter I_f), synthetic hand-held"),
        Row(78, "`inpainted` (9 tiling holes per frame) from a pretraining inpainter at 2,600 steps; stopped, "
                "step 400 of 800 evaluated; synthetic PTZ"),
        Row(109, "`inpainter`, every network from `default` (I fine-tuned 5 minutes, then 18 minutes of stage 2), "
                 "importance sampling, no flow, synthetic PTZ"),
        Row(116, "the same with the level of the box fit and mask target from a same-size hole elsewhere in the "
                 "image (`objective.control_level`)"),
        Row(122, "line 117 (seed 1) with 15 minutes of stage 1 instead of 5"),
        Row(120, "line 119 with 15 minutes of stage 1 instead of 5"),
        Row(117, "line 116, seed 1"),
        Row(118, "line 116 with `loss.cell_baseline=true`"),
        Row(119, "line 116 with the `excess` reward's level also from the same-size hole (a variant not kept)"),
        Row(132, "line 116 with the flow branch (`data.flow=true`: L_bg also on the stabilised optical flow, its "
                 "background the flow inpainter I_f's fill, I_f fine-tuned 5 minutes from `default`): the paper's "
                 "whole path"),
        Row(133, "line 132, seed 1"),
        Row(134, "line 132 with 6 minutes of stage 2 instead of 18 (the 2 cores were shared with a third process for "
                 "part of it, so it made fewer steps than 6 minutes allow)"),
        Row(136, "line 132 with 45 minutes of stage 2"),
        Row(135, "the same, seed 1"),
        Row(146, "line 132 with zero flow as the flow's background instead of I_f's fill "
                 "(`data.flow_background=zero`, an option since removed; its code is in commit 3c9379d)"),
        Row(145, "the same, seed 1"),
        Row(154, "line 132 from a candidate bundle: `default`'s D and S with I trained on to 14,365 steps and I_f to "
                 "10,295 (from 8,194 and 4,000; at `inpainter.lr=1e-4` from 12,361 and 8,221 on; not shipped)"),
        Row(153, "the same, seed 1"),
        Row(159, "line 132 without the mask target (`loss.w_mask_bg=0`: no ramp of the inpainter's error for S's "
                 "mask; S trained by the paper's terms)"),
        Row(160, "the same, seed 1"),
        Row(129, "line 116 with `loss.reward=relative`: each hole's error density over that of a same-size hole "
                 "elsewhere in the image (a variant not kept; its code is in commit be8e3e2)"),
        Row(128, "the same, seed 1"),
        Row(115, "line 109 with the paper's stage-2 terms only (`loss.w_mask_bg=0 loss.w_box_fit=0`)"),
        Row(110, "for comparison: `default` with no training, synthetic PTZ"),
        Row(165, "line 132 again, on an AMD EPYC, beside line 166 (631 steps of stage 2)"),
        Row(166, "line 165 at a tenth of the learning rates (1e-4 for D, S and S's decoder; 626 steps): what line "
                 "132's command does from commit 02b245d on (`train.inpainter_lr_scale=0.1`)"),
        Row(170, "line 165, seed 1 (`train.inpainter_lr_scale=1`: the full learning rates; 587 steps), beside "
                 "line 168"),
        Row(168, "line 166, seed 1 (570 steps)"),
    )),
    Table("reward_rank", ("rank_temporal", "rank_inpainter", "rank_product", "rank_sum"), (
        Row(123, "the 9 held-out DAVIS sequences, the `default` inpainter"),
        Row(127, "the same, the inpainter fine-tuned 5 minutes on their frames shuffled (line 121's)"),
        Row(157, "the same, I trained on to 12,361 steps (from `default`'s 8,194; not shipped)"),
        Row(155, "the same, I trained on to 14,365 steps (at `inpainter.lr=1e-4` from 12,361 on; not shipped)"),
        Row(124, "the 18 DAVIS sequences of pretraining, the `default` inpainter"),
        Row(125, "synthetic PTZ, 16 test sequences, the `default` inpainter"),
        Row(126, "the same, the inpainter fine-tuned 5 minutes on the training sequences (line 116's)"),
        Row(158, "the same, I trained on to 12,361 steps (not shipped)"),
        Row(156, "the same, I trained on to 14,365 steps (not shipped)"),
    )),
    Table("reward_choice", tuple(f"choice_{name}" for name in CHOICE_SCORES), (
        Row(142, "synthetic PTZ, 16 test sequences: `default`'s D, I and I_f fine-tuned 5 minutes on the training "
                 "sequences (line 132's, where its stage 2 starts)"),
        Row(143, "the same, D after line 132's 18 minutes of stage 2"),
        Row(144, "the same, everything from line 136 (45 minutes of stage 2)"),
        Row(141, "the 9 held-out DAVIS sequences, `default` (D, I and I_f)"),
    )),
    Table("ablation", ("raw", "train_s"), (
        Row(24, "defaults"),
        Row(25, "importance (fig. 11f)"),
        Row(26, "uniform (fig. 11a)"),
        Row(27, "gumbel (fig. 11e)"),
        Row(28, "joint: no disentangled gradients (fig. 11b)"),
        Row(29, "bg_only: L_bg only (fig. 11c)"),
        Row(30, "regression: one directly regressed box (fig. 11d)"),
        Row(31, "prior_none: no mask prior (table 3)"),
        Row(39, "prior_l1 (table 3)"),
        Row(40, "prior_l2 (table 3)"),
        Row(32, "scale_0.2_0.8: box sizes (table 4)"),
        Row(33, "scale_0.1_0.6: box sizes (table 4)"),
        Row(35, "ramp_target: the error ramp as S's target"),
        Row(34, "paper_inpainter: the U-Net inpainter as the background"),
    )),
    Table("baselines", ("refined", "raw"), (
        Row(84, "`bgsub`, the 27 DAVIS 2016 training sequences"),
        Row(80, "`bgsub`, the nine held-out DAVIS sequences"),
        Row(85, "`bgsub`, the nine held-out DAVIS sequences, with the GrabCut refinement"),
    )),
    Table("wall_times", ("raw", "train_s", "predict_s"), (
        Row(46, "synthetic PTZ, 18 minutes, ResNet-18 detector (the default at that commit)"),
        Row(50, "synthetic PTZ, 18 minutes, ResNet-18 detector (`detector.backbone=resnet18`)"),
        Row(48, "synthetic PTZ, 18 minutes, half-width detector (the cpu default)"),
        Row(61, "synthetic PTZ, 1,950 steps, seven runs sharing the 2 cores"),
        Row(51, "DAVIS, 60 minutes"),
        Row(76, "DAVIS, 3,000 steps, two runs sharing the 2 cores"),
        Row(79, "DAVIS held-out, prediction only (no training)"),
    )),
)


# ---------------------------------------------------------------------------------------------------------
# Reading results.jsonl and turning a line into table cells
# ---------------------------------------------------------------------------------------------------------


def load_results(path: Path = RESULTS) -> dict[int, dict]:
    """{line number (1-based): the JSON object on that line} for every non-blank line of ``path``."""
    records = {}
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if text.strip():
                records[number] = json.loads(text)
    return records


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _triple(figures: dict) -> str:
    """'J / F / mAP@0.5' with three decimals; '-' for a figure the line does not have."""
    return " / ".join(_number(figures.get(key)) for key in ("J", "F", "mAP50"))


def refinement(record: dict) -> str:
    """How the headline masks of a line were post-processed: ``grabcut``, ``crf`` or ``none``. Lines written
    before accuracy.py had ``--refine`` have no ``refine`` key: their masks are the network's own."""
    if record.get("refine"):
        return record["refine"]
    return "crf" if record.get("crf") else "none"


def refined_cell(record: dict) -> str:
    """J / F / mAP@0.5 of the refined masks, or '-' when the run did not refine them."""
    return "-" if refinement(record) == "none" else _triple(record)


def raw_cell(record: dict) -> str:
    """J / F / mAP@0.5 of the unrefined masks (``raw`` when the headline figures are refined)."""
    if record.get("raw"):
        return _triple(record["raw"])
    return _triple(record) if refinement(record) == "none" else "-"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def predict_cell(record: dict) -> str:
    """Wall time of the headline prediction, with its refinement."""
    return f"{_seconds(record.get('predict_s'))} ({refinement(record)})"


def memory_cell(record: dict) -> str:
    """Peak RSS of the longest video over the shortest's (``predict_speed.py``), with both frame counts."""
    if "rss_ratio" not in record:
        return "-"
    short, long = sorted(record["frames"], key=int)
    return f"{record['rss_ratio']:.3f} ({int(long):,} / {int(short):,} frames)"


def video_fps_cell(record: dict) -> str:
    """Frames per second of ``predict_source`` on the longest video (``predict_speed.py``)."""
    if "frames_per_s" not in record:
        return "-"
    return f"{record['frames_per_s'][max(record['frames_per_s'], key=int)]:.1f}"


def rank_cell(name: str) -> Callable[[dict], str]:
    """``reward_rank.py``'s mean rank of the object's box and its share of frames beating every other box."""
    def cell(record: dict) -> str:
        if f"{name}_mean_rank" not in record:
            return "-"
        return f"{record[f'{name}_mean_rank']:.3f} / {record[f'{name}_beats_all']:.2f}"
    return cell


def choice_cell(name: str) -> Callable[[dict], str]:
    """``reward_choice.py``'s share of frames whose best-scoring proposal overlaps the object (IoU > 0.5), and the
    mean IoU of that proposal."""
    def cell(record: dict) -> str:
        if f"{name}_share" not in record:
            return "-"
        return f"{record[f'{name}_share']:.2f} / {record[f'{name}_mean_iou']:.3f}"
    return cell


# figure column key -> (header, cell function)
COLUMNS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "refined": ("refined J / F / mAP@0.5", refined_cell),
    "raw": ("raw J / F / mAP@0.5", raw_cell),
    "train_s": ("train s", lambda record: _seconds(record.get("train_s"))),
    "predict_s": ("predict s (refinement)", predict_cell),
    "wall_s": ("total s", lambda record: _seconds(record.get("wall_s"))),
    "rss": ("peak RSS ratio", memory_cell),
    "video_fps": ("frames/s, long video", video_fps_cell),
    **{f"rank_{name}": (f"{name}: rank / beats all", rank_cell(name))
       for name in ("temporal", "inpainter", "product", "sum")},
    **{f"choice_{name}": (f"{name}: IoU > 0.5 / mean IoU", choice_cell(name)) for name in CHOICE_SCORES},
}


def command(record: dict) -> str:
    """The command that wrote the line: its ``command`` field, else the accuracy.py call rebuilt from the
    line's settings (``DIR`` is the output folder, which the line does not record)."""
    if record.get("command"):
        return record["command"]
    words = ["python", "benchmarks/accuracy.py", record["dataset"]]
    if record["dataset"] == "synthetic" and record.get("camera", "ptz") != "ptz":
        words += ["--camera", record["camera"]]
    if record["dataset"] == "davis":
        words += ["--data", record.get("data") or DAVIS_DATA]
    words += ["--out", "DIR"]
    if record.get("preset", "cpu") != "cpu":
        words += ["--preset", record["preset"]]
    if record.get("model"):
        words += ["--model", record["model"]]
    if record.get("shuffle"):
        words.append("--shuffle")
    if record.get("crf"):
        words.append("--crf")
    if record.get("refine") and record["refine"] != "grabcut":
        words += ["--refine", record["refine"]]
    return " ".join([*words, *(shlex.quote(o) for o in record.get("overrides", []))])


def machine(record: dict) -> str:
    """The line's machine field without its ``machine:`` prefix and its date (the date has its own column)."""
    text = record.get("machine") or "-"
    text = text.removeprefix("machine: ")
    return re.sub(r", date \d{4}-\d{2}-\d{2} \d{2}:\d{2}", "", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(table: Table, records: dict[int, dict]) -> str:
    """The markdown of one table (no trailing newline)."""
    headers = ["line", "run", *(COLUMNS[key][0] for key in table.columns), "command", "commit", "machine", "date"]
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for row in table.rows:
        if row.line not in records:
            raise ValueError(f"table {table.name!r}: results.jsonl has no line {row.line}")
        record = records[row.line]
        cells = [str(row.line), row.label, *(COLUMNS[key][1](record) for key in table.columns),
                 f"`{command(record)}`", record.get("commit") or "-", machine(record), record.get("date", "-")]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Markers in the document
# ---------------------------------------------------------------------------------------------------------

_BLOCK = re.compile(r"<!-- table:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /table:(?P=name) -->", re.DOTALL)


def _blocks(text: str) -> dict[str, str]:
    """{table name: the text between its two markers} of a document."""
    return {m["name"]: m["body"] for m in _BLOCK.finditer(text)}


def render_document(text: str, records: dict[int, dict], tables: tuple[Table, ...] = TABLES) -> str:
    """``text`` with every table's markers enclosing its freshly rendered markdown. Raises ValueError for a
    table without markers and for markers without a table."""
    names = {t.name for t in tables}
    found = _blocks(text)
    missing = sorted(names - found.keys())
    unknown = sorted(found.keys() - names)
    if missing or unknown:
        raise ValueError(f"tables without markers in the document: {missing}; markers without a table: {unknown}")
    bodies = {t.name: render_table(t, records) + "\n" for t in tables}
    return _BLOCK.sub(lambda m: f"<!-- table:{m['name']} -->\n{bodies[m['name']]}<!-- /table:{m['name']} -->",
                      text)


def stale_tables(doc: Path = DOC, results: Path = RESULTS, tables: tuple[Table, ...] = TABLES) -> list[str]:
    """Names of the tables whose text in ``doc`` differs from what ``results`` gives (empty: up to date)."""
    text = doc.read_text(encoding="utf-8")
    fresh = _blocks(render_document(text, load_results(results), tables))
    current = _blocks(text)
    return [t.name for t in tables if current[t.name] != fresh[t.name]]


def write_document(doc: Path = DOC, results: Path = RESULTS, tables: tuple[Table, ...] = TABLES) -> list[str]:
    """Rewrite the tables of ``doc`` from ``results`` (atomically: a temporary file, then ``os.replace``).
    Returns the names of the tables that changed."""
    changed = stale_tables(doc, results, tables)
    if changed:
        text = render_document(doc.read_text(encoding="utf-8"), load_results(results), tables)
        fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=f".{doc.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, doc)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    ap.add_argument("--doc", type=Path, default=DOC, help="the markdown document (default BENCHMARKS.md)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the results (default benchmarks/results.jsonl)")
    a = ap.parse_args(argv)
    if a.check:
        stale = stale_tables(a.doc, a.results)
        if stale:
            print(f"{a.doc}: stale tables: {', '.join(stale)} (run python benchmarks/tables.py)", file=sys.stderr)
            return 1
        print(f"{a.doc}: all {len(TABLES)} tables match {a.results}")
        return 0
    changed = write_document(a.doc, a.results)
    print(f"{a.doc}: rewrote {', '.join(changed)}" if changed else f"{a.doc}: tables already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
