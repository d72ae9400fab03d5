"""Inference: ``Predictor`` runs D + T + S on single images and returns a :class:`Prediction`.

At test time the model sees one image: the most probable cell's box is cropped and segmented (section
3.2, Algorithm 1); the inpainter is not used. Images are resized to the training resolution for D and
S, and the mask is resampled into the original image (zero outside the box).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from inpaintseg.config import Config, from_dict
from inpaintseg.data.image_io import write_png
from inpaintseg.data.sources import open_source
from inpaintseg.engine.checkpoint import load_checkpoint
from inpaintseg.engine.data import resize_rgb
from inpaintseg.io import atomic_write_text
from inpaintseg.models.crop import box_to_xyxy, uncrop
from inpaintseg.models.model import InpaintSegModel, build_model


@dataclass
class Prediction:
    """Result for one image of size (H, W)."""

    boxes: np.ndarray
    """(N, 4) float32 x0, y0, x1, y1 in pixels of the input image (N = 1: the argmax cell)."""
    proposals: np.ndarray
    """(N, 4) the detector's boxes (the crop windows), same format; ``boxes`` may be refined from the mask."""
    scores: np.ndarray
    """(N,) cell probabilities of the boxes."""
    masks: np.ndarray
    """(N, H, W) float32 soft masks in [0, 1] at the input resolution."""
    probabilities: np.ndarray
    """(G_h, G_w) float32 cell probabilities (border cells 0)."""
    cells: np.ndarray
    """(N,) int: the grid cell (row * G_w + col) that proposed each box."""

    def plot(self, image: np.ndarray) -> np.ndarray:
        """The paper's figure-6 view of this prediction over ``image`` (RGB uint8 (H,W,3))."""
        from inpaintseg.viz import plot_prediction

        return plot_prediction(image, self)

    @property
    def box(self) -> np.ndarray:
        return self.boxes[0]

    @property
    def score(self) -> float:
        return float(self.scores[0])

    @property
    def mask(self) -> np.ndarray:
        """The union (max) of the object masks, (H, W)."""
        return self.masks.max(axis=0) if len(self.masks) else np.zeros(self.masks.shape[1:], np.float32)


def box_from_mask(mask: np.ndarray, fallback: np.ndarray, relative: float = 0.25) -> np.ndarray:
    """Tight xyxy box (pixels, x1/y1 exclusive) around the pixels of ``mask`` (H,W) >= ``relative`` x its
    maximum; ``fallback`` when the mask is empty or ``relative`` is 0."""
    peak = float(mask.max())
    if relative <= 0 or peak <= 0:
        return fallback
    ys, xs = np.nonzero(mask >= relative * peak)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


class Predictor:
    """D + T + S on single images.

    ``box_from_mask``: the reported box is the tight box around the mask's pixels above this fraction of the
    mask's maximum (the detector's box is the crop window, typically wider than the object); 0 reports the
    detector's box unchanged (the paper's output). The detector's boxes are kept in ``Prediction.proposals``.
    """

    def __init__(self, model: InpaintSegModel, cfg: Config, device: str | torch.device = "cpu",
                 box_from_mask: float = 0.25) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.size = tuple(cfg.data.size)
        self.box_from_mask = box_from_mask

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", box_from_mask: float = 0.25) -> Predictor:
        """Load ``model.pt`` written by training (``weights_only=True``)."""
        payload = load_checkpoint(path, "model")
        cfg = from_dict(payload["config"])
        cfg.train.pretrained = "none"  # weights come from the checkpoint
        model = build_model(cfg)
        model.load_state_dict(payload["model"])
        return cls(model, cfg, device, box_from_mask)

    @torch.no_grad()
    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """RGB uint8 (H,W,3) images (sizes may differ) -> one Prediction each."""
        if not images:
            return []
        small = np.stack([resize_rgb(im, self.size) for im in images])
        x = torch.from_numpy(small).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
        props = self.model(x)
        top = props.probs.argmax(dim=1)
        rows = torch.arange(len(images), device=self.device)
        boxes = props.boxes[rows, top]
        _, masks = self.model.segment(x, boxes)
        gh, gw = props.grid
        out = []
        for i, im in enumerate(images):
            h, w = im.shape[:2]
            full = uncrop(masks[i : i + 1], boxes[i : i + 1], h, w)[0, 0].clamp(0, 1).cpu().numpy()
            proposal = box_to_xyxy(boxes[i], w, h).cpu().numpy().astype(np.float32)
            out.append(Prediction(
                boxes=box_from_mask(full, proposal, self.box_from_mask)[None],
                proposals=proposal[None],
                scores=props.probs[i, top[i]].cpu().numpy().reshape(1).astype(np.float32),
                masks=full[None].astype(np.float32),
                probabilities=props.probs[i].view(gh, gw).cpu().numpy().astype(np.float32),
                cells=top[i : i + 1].cpu().numpy(),
            ))
        return out

    def predict(self, image: np.ndarray) -> Prediction:
        """One RGB uint8 (H, W, 3) image -> Prediction."""
        return self.predict_batch([image])[0]


def predict_source(
    model_path: str | Path, source: str | Path, out: str | Path, batch: int = 8, device: str = "cpu",
    progress: bool = True, sequences: Iterable[str] | None = None,
) -> Path:
    """Write ``out/<seq>/<frame>.png`` soft masks (0..255) at source resolution and ``out/detections.json``
    (``[{"sequence", "frame", "bbox": [x, y, w, h], "score"}]``, the format ``evaluate`` reads)."""
    predictor = Predictor.load(model_path, device)
    src = open_source(source)
    if sequences is not None:
        src = src.subset(sequences)
    out = Path(out)
    detections = []
    total = sum(len(s) for s in src.sequences)
    bar = tqdm(total=total, desc="predict", disable=not progress, unit="frame")

    def flush(frames: list) -> None:
        for frame, pred in zip(frames, predictor.predict_batch([f.image for f in frames]), strict=True):
            write_png(out / frame.sequence / f"{frame.name}.png", (pred.mask * 255).round().astype(np.uint8))
            for box, score in zip(pred.boxes, pred.scores, strict=True):
                x0, y0, x1, y1 = box.tolist()
                detections.append({"sequence": frame.sequence, "frame": frame.name,
                                   "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
        bar.update(len(frames))

    pending = []
    for frame in src:
        pending.append(frame)
        if len(pending) == batch:
            flush(pending)
            pending = []
    flush(pending)
    bar.close()
    atomic_write_text(out / "detections.json", json.dumps(detections))
    return out
