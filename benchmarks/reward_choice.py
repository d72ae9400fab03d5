"""Among the detector's own proposals, which box does each background's reward prefer? One results.jsonl line.

    python benchmarks/reward_choice.py --data runs/syn/data/test --model runs/syn/run/model.pt --out DIR
    python benchmarks/reward_choice.py --data DAVIS_LAYOUT --model default --inpainters runs/syn/run/model.pt --out DIR

L_bg (eq. 11) moves D's probability towards the cells whose boxes the background explains worst, so D drifts
towards the reward's best cell among the boxes it proposes. ``reward_rank.py`` compares the object's box with
same-size boxes; this compares the boxes D actually proposes, whatever their shapes. For every ``--every``-th
annotated frame of a DAVIS-layout folder, at the model's working size, D proposes one box per inner cell; each box's
hole (enlarged by ``loss.hole_expand``) is scored by the mean error (eq. 3's density) of:

- ``temporal``: the median of the homography-aligned neighbouring frames, the error divided by its frame mean;
- ``inpainter``: the inpainter I's fill of the hole;
- ``flow``: the flow inpainter I_f's fill of the hole in the stabilised optical flow image (``data/flow.py``);
- ``flow_zero``: zero flow as that background (a static scene's stabilised flow; what training uses without I_f);
- ``inpainter_flow``: the two added after each is centred and divided by its mean absolute deviation over the
  frame's cells (as training divides each branch's rewards by their running spread, ``loss.normalize_reward``);
- ``detector``: D's own probability.

For each score it reports the share of frames whose best-scoring box overlaps the object's box (the bounding box of
the annotation) with IoU above 0.5, and the mean IoU; ``best`` is the proposal closest to the object, the ceiling.
A reward whose share is below D's pulls a trained D away from the object. Annotations are read only here; nothing
is trained. I and I_f come from ``--inpainters`` (default ``--model``): a bundle's, or those beside a ``model.pt``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from machine import append_result
from reward_rank import object_box

from inpaintseg.boxes import box_iou
from inpaintseg.config import Config
from inpaintseg.data.flow import ZERO_FLOW_RGB, sequence_flows
from inpaintseg.data.image_io import read_mask, resize_image
from inpaintseg.data.sources import Frame, open_source
from inpaintseg.engine.data import background_size
from inpaintseg.engine.train_inpainter import build_inpainter
from inpaintseg.errors import ConfigError
from inpaintseg.models.crop import box_mask, box_to_xyxy, expand_box
from inpaintseg.models.unet import InpaintingUNet
from inpaintseg.temporal import with_context
from inpaintseg.weights import init_inpainter, load_model

SCORES = ("temporal", "inpainter", "flow", "flow_zero", "inpainter_flow", "detector", "best")
OVERLAP = 0.5


def open_inpainters(cfg: Config, name: str) -> tuple[InpaintingUNet, InpaintingUNet]:
    """I and I_f of the weights ``name`` (a bundle such as ``default``, or a ``model.pt`` with them beside it)."""
    cfg.train.init = name
    nets = []
    for kind in ("inpainter", "flow_inpainter"):
        net = build_inpainter(cfg)
        if not init_inpainter(net, cfg, kind):
            raise ConfigError(f"--inpainters {name}: these weights hold no {kind}")
        nets.append(net.eval())
    return nets[0], nets[1]


def object_overlaps(boxes: torch.Tensor, box: list[float]) -> np.ndarray:
    """IoU (``boxes.box_iou``) of each proposal (N, 4) with the object's box (4,), both (cx, cy, w, h) -> (N,)."""
    corners = box_to_xyxy(torch.as_tensor(box, dtype=boxes.dtype))[None]
    return box_iou(box_to_xyxy(boxes).numpy(), corners.numpy())[:, 0]


def standardised(x: np.ndarray) -> np.ndarray:
    """x centred and divided by its mean absolute deviation (0 where all values are equal)."""
    spread = np.abs(x - x.mean()).mean()
    return (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)


def proposal_scores(image: np.ndarray, flow: np.ndarray, temporal_error: np.ndarray, probs: np.ndarray,
                    boxes: torch.Tensor, inpainter: InpaintingUNet, flow_inpainter: InpaintingUNet,
                    hole_expand: float) -> dict[str, np.ndarray]:
    """Each proposal's score under ``SCORES`` but ``best``. image and flow (h, w, 3) uint8 (the flow encoded as in
    ``data/flow.py``), temporal_error (h, w), probs (N,) and boxes (N, 4) (cx, cy, w, h) fractions -> {name: (N,)}."""
    h, w = temporal_error.shape
    holes = box_mask(expand_box(boxes, hole_expand), h, w)  # (N,1,h,w)
    hole = holes[:, 0].numpy()
    area = hole.sum(axis=(1, 2))

    def density(error: np.ndarray) -> np.ndarray:
        return (error * hole).sum(axis=(1, 2)) / area

    def fill_error(net: InpaintingUNet, picture: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(picture).permute(2, 0, 1).float()[None] / 255.0
        with torch.no_grad():
            bars = net.inpaint(x.expand(len(boxes), -1, -1, -1), holes)
        return (bars - x).pow(2).mean(1).numpy()  # (N,h,w), zero outside each hole

    t = temporal_error / max(float(temporal_error.mean()), 1e-12)
    still = ((flow.astype(np.float32) - np.array(ZERO_FLOW_RGB, np.float32)) / 255.0) ** 2
    scores = {"temporal": density(t[None]), "inpainter": density(fill_error(inpainter, image)),
              "flow": density(fill_error(flow_inpainter, flow)), "flow_zero": density(still.mean(axis=2)[None]),
              "detector": probs}
    scores["inpainter_flow"] = standardised(scores["inpainter"]) + standardised(scores["flow"])
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="DAVIS layout: JPEGImages/ and Annotations/")
    ap.add_argument("--model", required=True, help="default or a model.pt: D and its settings")
    ap.add_argument("--inpainters", help="default, a bundle or a model.pt: where I and I_f come from (--model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--every", type=int, default=5, help="score every N-th frame")
    a = ap.parse_args()
    model, cfg = load_model(a.model)
    size = tuple(cfg.data.size)
    inpainter, flow_inpainter = open_inpainters(cfg, a.inpainters or a.model)
    hits: dict[str, dict[str, list[float]]] = {name: {} for name in SCORES}
    for seq in open_source(a.data / "JPEGImages").sequences:
        images = [seq.read(i) for i in range(len(seq.frame_names))]  # read once: the flow and the frames
        flows, valid = sequence_flows(images, size)
        frames = (Frame(seq.name, name, i, images[i]) for i, name in enumerate(seq.frame_names))
        for frame, context in with_context(frames, cfg.data.temporal_offsets, background_size(size)):
            mask_path = a.data / "Annotations" / seq.name / f"{Path(frame.name).stem}.png"
            if context is None or not valid[frame.index] or frame.index % a.every or not mask_path.is_file():
                continue
            box = object_box(resize_image(read_mask(mask_path), size, cv2.INTER_NEAREST) > 0)
            if box is None:
                continue
            image = resize_image(context.image, size, cv2.INTER_AREA)
            with torch.no_grad():
                props = model(torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0)
            inner = torch.isfinite(props.logits[0])
            boxes, probs = props.boxes[0][inner], props.probs[0][inner].numpy()
            error = resize_image(context.error(), size, cv2.INTER_AREA)
            iou = object_overlaps(boxes, box)
            scores = proposal_scores(image, flows[frame.index], error, probs, boxes, inpainter, flow_inpainter,
                                     cfg.loss.hole_expand)
            scores["best"] = iou
            for name, score in scores.items():
                hits[name].setdefault(seq.name, []).append(float(iou[int(np.argmax(score))]))
    frames = sum(len(v) for v in hits["best"].values())
    if frames == 0:
        raise SystemExit(f"{a.data}: no annotated frame with neighbours and flow to score")
    summary = {}
    for name, per_seq in hits.items():
        every = np.concatenate([np.array(v) for v in per_seq.values()])
        summary[name] = {"share": float((every > OVERLAP).mean()), "mean_iou": float(every.mean()),
                         "per_sequence": {s: float(np.mean(v)) for s, v in per_seq.items()}}
        print(f"{name:15s} IoU > {OVERLAP}: {summary[name]['share']:.2f}  mean IoU {every.mean():.3f}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "choice.json").write_text(json.dumps(summary, indent=1))
    append_result({"benchmark": "reward_choice", "data": str(a.data), "model": a.model,
                   "inpainters": a.inpainters or a.model, "every": a.every, "frames": frames,
                   "threads": torch.get_num_threads(),
                   **{f"{name}_share": summary[name]["share"] for name in SCORES},
                   **{f"{name}_mean_iou": summary[name]["mean_iou"] for name in SCORES}})


if __name__ == "__main__":
    main()
