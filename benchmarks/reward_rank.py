"""How well each background singles out the annotated object, before any training: one results.jsonl line.

    python benchmarks/reward_rank.py --data runs/pretrain/data/heldout --inpainter default --out runs/rank_heldout
    python benchmarks/reward_rank.py --data runs/syn/data/test --inpainter runs/syn/run/inpainter.pt --out DIR

D learns to put its probability on the box whose background explains it worst (L_bg, eq. 11, with the density of
eq. 3). So a background is only as useful as the margin by which the object's own box wins that comparison. For
every ``--every``-th annotated frame of a DAVIS-layout folder, at the ``cpu`` preset's working size, this takes the
object's box (the bounding box of the annotation) and ``--boxes`` boxes of the same size at uniformly random
places, makes each box's hole (enlarged by ``loss.hole_expand``) and scores the hole by the mean error of:

- ``temporal``: the median of the homography-aligned neighbouring frames (``data.background=temporal``; needs
  ordered sequences), the error divided by its mean over the frame;
- ``inpainter``: the inpainter's fill of the hole (``data.background=inpainter``), the error divided by the median
  error of the random boxes (the same-size level ``objective.control_level`` draws one sample of);
- ``product``: the geometric mean of those two normalised errors, pixel by pixel (the inpainter's error counts
  where the temporal error is high, and the other way round);
- ``sum``: their mean (either background may flag a pixel).

For each it reports the mean rank of the object's box (the share of the random boxes it beats) and the share of
frames where it beats all of them, over all frames and per sequence. Annotations are read only here, to place the
object's box; nothing is trained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from machine import append_result

from inpaintseg.config import resolve
from inpaintseg.data.image_io import read_mask, resize_image
from inpaintseg.data.sources import Frame, open_source
from inpaintseg.engine.data import background_size
from inpaintseg.engine.train_inpainter import build_inpainter, load_inpainter
from inpaintseg.errors import ConfigError
from inpaintseg.models.crop import box_mask, expand_box
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.temporal import with_context
from inpaintseg.weights import init_inpainter

SCORES = ("temporal", "inpainter", "product", "sum")


def open_inpainter(name: str) -> InpaintingUNet:
    """An ``inpainter.pt`` checkpoint, or the inpainter inside a bundle / next to a ``model.pt`` (``default``)."""
    if Path(name).name.endswith("inpainter.pt") or Path(name).name.endswith("inpainter_last.pt"):
        return load_inpainter(name)
    cfg = resolve("cpu", overrides=[f"train.init={name}"])
    net = build_inpainter(cfg)
    if not init_inpainter(net, cfg):
        raise ConfigError(f"--inpainter {name}: these weights hold no inpainter")
    return net.eval()


def object_box(mask: np.ndarray) -> list[float] | None:
    """(cx, cy, w, h) in image fractions of the annotation's bounding box; None when it has under 20 pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 20:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = xs.min() / w, (xs.max() + 1) / w, ys.min() / h, (ys.max() + 1) / h
    return [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]


def hole_scores(image: np.ndarray, temporal_error: np.ndarray, inpainter: InpaintingUNet, boxes: torch.Tensor,
                hole_expand: float) -> dict[str, np.ndarray]:
    """Each box's score under each of ``SCORES``. image (h, w, 3) uint8, temporal_error (h, w) float, boxes (N, 4)
    (cx, cy, w, h) fractions, row 0 the object's and the rest the random boxes -> {name: (N,)}."""
    h, w = temporal_error.shape
    holes = box_mask(expand_box(boxes, hole_expand), h, w)  # (N,1,h,w)
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    with torch.no_grad():
        bars = inpainter.inpaint(x.expand(len(boxes), -1, -1, -1), holes)
    inpainter_error = (bars - x).pow(2).mean(1).numpy()  # (N,h,w), zero outside each hole
    hole = holes[:, 0].numpy()
    area = hole.sum(axis=(1, 2))

    def density(error: np.ndarray) -> np.ndarray:
        return (error * hole).sum(axis=(1, 2)) / area

    t = temporal_error / max(float(temporal_error.mean()), 1e-12)
    i = inpainter_error / max(float(np.median(density(inpainter_error)[1:])), 1e-12)
    return {"temporal": density(t[None]), "inpainter": density(i), "product": density(np.sqrt(t[None] * i)),
            "sum": density((t[None] + i) / 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="DAVIS layout: JPEGImages/ and Annotations/")
    ap.add_argument("--inpainter", required=True, help="default, a model.pt, a bundle or an inpainter.pt")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--every", type=int, default=5, help="score every N-th frame")
    ap.add_argument("--boxes", type=int, default=24, help="random same-size boxes per frame")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cfg = resolve("cpu")
    size = tuple(cfg.data.size)
    inpainter = open_inpainter(a.inpainter)
    rng = np.random.default_rng(a.seed)
    ranks: dict[str, dict[str, list[float]]] = {name: {} for name in SCORES}
    for seq in open_source(a.data / "JPEGImages").sequences:
        frames = (Frame(seq.name, name, i, seq.read(i)) for i, name in enumerate(seq.frame_names))
        for frame, context in with_context(frames, cfg.data.temporal_offsets, background_size(size)):
            mask_path = a.data / "Annotations" / seq.name / f"{Path(frame.name).stem}.png"
            if context is None or frame.index % a.every or not mask_path.is_file():
                continue
            box = object_box(resize_image(read_mask(mask_path), size, cv2.INTER_NEAREST) > 0)
            if box is None:
                continue
            half = np.minimum(np.array(box[2:]) * (1 + cfg.loss.hole_expand) / 2, 0.5)
            others = [[*(half + rng.random(2) * (1 - 2 * half)), *box[2:]] for _ in range(a.boxes)]
            boxes = torch.tensor([box, *others], dtype=torch.float32)
            error = resize_image(context.error(), size, cv2.INTER_AREA)
            image = resize_image(context.image, size, cv2.INTER_AREA)
            for name, score in hole_scores(image, error, inpainter, boxes, cfg.loss.hole_expand).items():
                ranks[name].setdefault(seq.name, []).append(float((score[0] > score[1:]).mean()))
    frames = sum(len(v) for v in ranks["temporal"].values())
    if frames == 0:
        raise SystemExit(f"{a.data}: no annotated frame with neighbours to score")
    summary = {}
    for name, per_seq in ranks.items():
        every = np.concatenate([np.array(v) for v in per_seq.values()])
        summary[name] = {"mean_rank": float(every.mean()), "beats_all": float((every == 1).mean()),
                         "per_sequence": {s: float(np.mean(v)) for s, v in per_seq.items()}}
        print(f"{name:10s} mean rank {every.mean():.3f}  beats all {(every == 1).mean():.2f}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "rank.json").write_text(json.dumps(summary, indent=1))
    append_result({"benchmark": "reward_rank", "data": str(a.data), "inpainter": a.inpainter, "every": a.every,
                   "boxes": a.boxes, "frames": frames, "seed": a.seed, "threads": torch.get_num_threads(),
                   **{f"{name}_mean_rank": summary[name]["mean_rank"] for name in SCORES},
                   **{f"{name}_beats_all": summary[name]["beats_all"] for name in SCORES}})


if __name__ == "__main__":
    main()
