"""Inference: ``Predictor`` runs D + T + S on single images and returns a :class:`Prediction`;
:func:`predict_source` runs it over any input (image, folder, DAVIS root, video, folder of videos) and
writes the outputs users ask for.

At test time the model sees one image: the most probable cell's box is cropped and segmented (section
3.2, Algorithm 1); the inpainter is not used. Several objects (section 4.5): the ``max_objects`` most
probable cells whose probability is at least ``min_prob``, with non-maximum suppression on their boxes
(neighbouring cells often propose boxes around the same object); each kept box is cropped and segmented on
its own. Images are resized to the training resolution for D; S's crop is taken from the image itself when
it is larger than that (sharper crops; see ``Predictor``), and each mask is resampled into the original image
(zero outside its box). Each mask is then refined on the image's colours (``refine``): by GrabCut seeded with
the mask (:mod:`inpaintseg.grabcut`, the default), by a dense CRF (:mod:`inpaintseg.crf`, the paper's choice),
or not at all (``none``, S's mask as it is).

Outputs of :func:`predict_source` (``save``):

- ``masks``: ``out/<seq>/<frame>.png`` soft masks 0..255 (the union (max) of the object masks), the DAVIS
  layout ``inpaintseg evaluate`` reads, and ``out/detections.json``;
- ``coco``: ``out/coco.json``, COCO instance results (RLE masks of ``mask >= threshold``);
- ``overlay``: ``out/overlay/<seq>/<frame>.jpg`` (mask tint, outline, boxes);
- ``video``: ``out/overlay/<seq>.mp4``, the overlays as an H.264 video at the input video's frame rate
  (sequences of images: ``DEFAULT_FPS``), written frame by frame;
- ``grid``: ``out/grid/<seq>/<frame>.jpg``, the paper's figure-6 view.

Frames are decoded, predicted and written as they come (``batch`` frames in memory at a time), so memory
does not grow with the length of a video. Under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes a share
of the work (:func:`shard_source`), writes its own files, and rank 0 merges the JSON files and video parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from inpaintseg.boxes import BOX_FROM_MASK, box_from_mask, select_cells
from inpaintseg.config import PREDICT, REFINE_CHOICES, Config, TemporalOptions
from inpaintseg.crf import refine_mask, require_crf
from inpaintseg.data.image_io import resize_image
from inpaintseg.data.sources import Frame, open_source
from inpaintseg.engine import distributed
from inpaintseg.engine.data import background_size, parallel_map
from inpaintseg.errors import ConfigError, DataError
from inpaintseg.grabcut import refine_grabcut
from inpaintseg.models.crop import box_to_xyxy, crop, uncrop
from inpaintseg.models.model import InpaintSegModel
from inpaintseg.results import Prediction
from inpaintseg.sharding import shard_frames, shard_source
from inpaintseg.temporal import Context, fuse_cells, fuse_mask, with_context
from inpaintseg.weights import load_model
from inpaintseg.writers import OutputWriters, parse_save

CROP_SOURCE_MAX = 4
"""S's crop from an image larger than the working size comes from the image shrunk (area interpolation) to at
most this many times the working size."""
CROP_SUPERSAMPLE = 4
"""That crop is sampled at this many points per crop pixel in each direction and averaged (antialiasing)."""

# -- the predictor ----------------------------------------------------------------------------------------


class Predictor:
    """D + T + S on single images.

    ``box_from_mask``: the reported box is the tight box around the mask's pixels above this fraction of the
    mask's maximum (the detector's box is the crop window, typically wider than the object); 0 reports the
    detector's box unchanged (the paper's output). The detector's boxes are kept in ``Prediction.proposals``.
    ``max_objects``, ``nms_iou``, ``min_prob``: see :func:`select_cells`; defaults for these and the others in
    ``config.PREDICT``. ``refine``: how each mask is refined on the image's colours. ``grabcut`` (default): the
    mean of S's mask and GrabCut's label seeded by it (:func:`~inpaintseg.grabcut.refine_grabcut`). ``crf``: the
    dense CRF's posterior (needs ``inpaintseg[crf]``). ``none``: S's mask as it is (the network's output;
    fastest). ``flip_tta``: the mask is the mean of S's mask for the box and the mirrored mask for the mirrored
    image and box (test-time augmentation; S runs twice, D once). Measured effects: docs/method.md.

    D always sees the image resized to the working size (``cfg.data.size``). S's crop comes from that resized
    image when the image is not larger (as in training), else from the image itself (shrunk to at most
    ``CROP_SOURCE_MAX`` x the working size, antialiased by ``CROP_SUPERSAMPLE``): details finer than the working
    size reach S.
    """

    def __init__(self, model: InpaintSegModel, cfg: Config, device: str | torch.device = "cpu",
                 box_from_mask: float = BOX_FROM_MASK, *, max_objects: int = PREDICT.max_objects,
                 nms_iou: float = PREDICT.nms_iou, min_prob: float = PREDICT.min_prob, refine: str = PREDICT.refine,
                 flip_tta: bool = PREDICT.flip_tta, temporal: TemporalOptions | None = None) -> None:
        if int(max_objects) != max_objects or max_objects < 1:
            raise ConfigError(f"max_objects must be a positive integer, got {max_objects!r}")
        if not 0.0 <= nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in [0, 1], got {nms_iou!r}")
        if not 0.0 <= min_prob <= 1.0:
            raise ConfigError(f"min_prob must be in [0, 1], got {min_prob!r}")
        if refine not in REFINE_CHOICES:
            raise ConfigError(f"refine must be one of {', '.join(REFINE_CHOICES)}, got {refine!r}")
        if temporal is not None and not (0.0 <= temporal.cell_weight <= 1.0 and 0.0 <= temporal.mask_weight <= 1.0):
            raise ConfigError(f"--cell-weight and --mask-weight must be in [0, 1], got {temporal.cell_weight!r} and "
                              f"{temporal.mask_weight!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.size = tuple(cfg.data.size)
        self.box_from_mask = box_from_mask
        self.max_objects = int(max_objects)
        self.nms_iou = float(nms_iou)
        self.min_prob = float(min_prob)
        self.refine = refine
        self.flip_tta = flip_tta
        self.temporal = temporal
        self.context_counts: dict[str, list[int]] = {}
        if refine == "crf":
            require_crf()  # fail now, not after the first batch, when pydensecrf2 is missing

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", box_from_mask: float = BOX_FROM_MASK,
             **options) -> Predictor:
        """Load ``model.pt`` written by training, or shipped weights by name (``default``), with
        ``weights_only=True``. ``options``: see the class."""
        model, cfg = load_model(path)
        return cls(model, cfg, device, box_from_mask, **options)

    @torch.no_grad()
    def predict_batch(self, images: list[np.ndarray], contexts: list[Context | None] | None = None
                      ) -> list[Prediction]:
        """RGB uint8 (H,W,3) images (sizes may differ) -> one Prediction each.

        All images go through D together (resized to ``cfg.data.size``); the kept cells' boxes of all images
        (M = sum of the objects per image) go through T + S together as one (M, 3, S, S) batch. ``contexts``:
        what each image's neighbouring frames say (:mod:`inpaintseg.temporal`; None entries: nothing), used as
        ``self.temporal`` says.
        """
        if not images:
            return []
        contexts = contexts if contexts is not None and self.temporal is not None else [None] * len(images)
        small = np.stack([resize_image(im, self.size) for im in images])
        x = torch.from_numpy(small).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
        props = self.model(x)
        probs = props.probs.float().cpu().numpy()  # (B, C)
        corners = box_to_xyxy(props.boxes.float()).cpu().numpy()  # (B, C, 4) fractions of the image
        for i, context in enumerate(contexts):
            if context is not None:
                probs[i] = fuse_cells(probs[i], corners[i], context, self.temporal.cell_weight)
        picks = [select_cells(probs[i], corners[i], self.max_objects, self.nms_iou, self.min_prob)
                 for i in range(len(images))]
        owner = torch.as_tensor(np.repeat(np.arange(len(images)), [len(p) for p in picks]), device=self.device)
        cells = torch.as_tensor(np.concatenate(picks), device=self.device)
        boxes = props.boxes[owner, cells]  # (M, 4) cxcywh, M = objects over the batch
        patches = self._patches(images, x, owner, boxes)  # (M, 3, S, S)
        _, masks = self.model.segmenter(patches)  # (M, 1, S, S)
        if self.flip_tta:  # the crop of the mirrored image at the mirrored box is the mirrored crop
            masks = 0.5 * (masks + self.model.segmenter(patches.flip(-1))[1].flip(-1))
        gh, gw = props.grid
        counts = [len(pk) for pk in picks]
        fulls = [uncrop(m, b, im.shape[0], im.shape[1])[:, 0].clamp(0, 1).float().cpu().numpy()  # (n, h, w) each
                 for im, m, b in zip(images, masks.split(counts), boxes.split(counts), strict=True)]
        for i, (im, full, part, context) in enumerate(zip(images, fulls, boxes.split(counts), contexts, strict=True)):
            if context is not None and self.temporal.mask_weight > 0:
                h, w = im.shape[:2]
                foreground = context.foreground(w, h)
                window = box_to_xyxy(part.float(), w, h).cpu().numpy()
                fulls[i] = np.stack([fuse_mask(m, b, foreground, self.temporal.mask_weight)
                                     for m, b in zip(full, window, strict=True)])
        if self.refine != "none":  # every object of the batch at once on torch's threads (OpenCV releases the GIL;
            # torchrun gives each process OMP_NUM_THREADS=1 unless the user sets it: the cores are not oversubscribed)
            pairs = [(im, m) for im, full in zip(images, fulls, strict=True) for m in full]
            refined = iter(parallel_map(self._refine, pairs, "refine", "mask", False, torch.get_num_threads()))
            fulls = [np.stack([next(refined) for _ in full]) for full in fulls]
        out = []
        for i, (im, full, part) in enumerate(zip(images, fulls, boxes.split(counts), strict=True)):
            h, w = im.shape[:2]
            proposals = box_to_xyxy(part.float(), w, h).cpu().numpy().astype(np.float32)
            refined = np.stack([box_from_mask(m, p, self.box_from_mask) for m, p in zip(full, proposals, strict=True)])
            out.append(Prediction(
                boxes=refined.astype(np.float32),
                proposals=proposals,
                scores=probs[i, picks[i]].astype(np.float32),
                masks=full.astype(np.float32),
                probabilities=probs[i].reshape(gh, gw).astype(np.float32),
                cells=picks[i],
            ))
        return out

    def _refine(self, pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        image, mask = pair
        if self.refine == "crf":
            return refine_mask(image, mask)
        return refine_grabcut(image, mask)

    def _patches(self, images: list[np.ndarray], x: torch.Tensor, owner: torch.Tensor,
                 boxes: torch.Tensor) -> torch.Tensor:
        """S's input: the (M, 4) boxes of ``images[owner]`` cropped to (M, 3, S, S); from ``x`` (the images at
        the working size) for images no larger than it, else from the image itself (see the class)."""
        size = self.model.segmenter.crop_size
        patches = crop(x[owner], boxes, size)
        w, h = self.size
        for i, im in enumerate(images):
            rows = (owner == i).nonzero()[:, 0]
            if len(rows) == 0 or (im.shape[0] <= h and im.shape[1] <= w):
                continue
            scale = min(1.0, CROP_SOURCE_MAX * w / im.shape[1], CROP_SOURCE_MAX * h / im.shape[0])
            src = resize_image(im, (max(1, round(im.shape[1] * scale)), max(1, round(im.shape[0] * scale))))
            t = torch.tensor(src).permute(2, 0, 1)[None].float().div(255.0).to(self.device)  # copy: may be read-only
            fine = crop(t.expand(len(rows), -1, -1, -1), boxes[rows], size * CROP_SUPERSAMPLE)
            patches[rows] = F.avg_pool2d(fine, CROP_SUPERSAMPLE).to(patches.dtype)
        return patches

    def predict(self, image: np.ndarray) -> Prediction:
        """One RGB uint8 (H, W, 3) image -> Prediction."""
        return self.predict_batch([image])[0]

    def predict_frames(self, frames: Iterable[Frame], batch: int = 8) -> Iterator[tuple[Frame, Prediction]]:
        """Stream (frame, prediction) pairs; at most ``batch`` frames are held at a time (with ``temporal``, also
        the window of neighbours :func:`~inpaintseg.temporal.with_context` holds). ``self.context_counts``
        counts, per sequence, the frames predicted with and without a context."""
        if batch < 1:
            raise ConfigError(f"batch must be >= 1, got {batch!r}")
        if self.temporal is None:
            items = ((frame, None) for frame in frames)
        else:
            items = with_context(frames, self.cfg.data.temporal_offsets, background_size(self.size),
                                 motion=self.temporal.mask_weight > 0)
        pending: list[tuple[Frame, Context | None]] = []
        for item in items:
            pending.append(item)
            counts = self.context_counts.setdefault(item[0].sequence, [0, 0])
            counts[item[1] is None] += 1
            if len(pending) == batch:
                yield from self._predict_pending(pending)
                pending = []
        yield from self._predict_pending(pending)

    def _predict_pending(self, pending: list[tuple[Frame, Context | None]]) -> Iterator[tuple[Frame, Prediction]]:
        frames = [f for f, _ in pending]
        yield from zip(frames, self.predict_batch([f.image for f in frames], [c for _, c in pending]), strict=True)

    def predict_video(self, path: str | Path, batch: int = 8) -> Iterator[Prediction]:
        """Predictions of a video file's frames in order, decoded and predicted ``batch`` frames at a time
        (memory does not grow with the video's length). DataError if ``path`` is not a readable video."""
        src = open_source(path)
        if src.kind != "video":
            raise DataError(path, "not a video file")
        for _, pred in self.predict_frames(src.sequences[0], batch):
            yield pred



def predict_source(
    model_path: str | Path, source: str | Path, out: str | Path, batch: int = PREDICT.batch, device: str = "cpu",
    progress: bool = True, sequences: Iterable[str] | None = None, *, save: str | Iterable[str] = ("masks",),
    max_objects: int = PREDICT.max_objects, nms_iou: float = PREDICT.nms_iou, min_prob: float = PREDICT.min_prob,
    refine: str = PREDICT.refine, flip_tta: bool = PREDICT.flip_tta, threshold: float = PREDICT.threshold,
    temporal: TemporalOptions | None = None,
) -> Path:
    """Predict every frame of ``source`` (image, folder, DAVIS root, video, folder of videos) and write the
    ``save`` outputs under ``out`` (see the module docstring); returns ``out``.

    ``masks`` (the default) writes ``out/<seq>/<frame>.png`` soft masks (0..255) at source resolution and
    ``out/detections.json`` (``[{"sequence", "frame", "bbox": [x, y, w, h], "score"}]``, the format
    ``evaluate`` reads); a video's frames are the sequence named by the file stem. ``threshold`` binarises
    masks for the COCO RLEs and overlay outlines. ``sequences``: only these sequences of the source.
    ``temporal``: use the neighbouring frames of each sequence (:mod:`inpaintseg.temporal`); what could not be
    used is printed. Under torchrun each process predicts its :func:`shard_source` share (with ``temporal``, a
    sequence split between processes has no neighbours across the split).
    """
    save = parse_save(save)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "the output folder exists and is not a folder (choose another --out)")
    rank, world = distributed.setup()
    predictor = Predictor.load(model_path, device, max_objects=max_objects, nms_iou=nms_iou, min_prob=min_prob,
                               refine=refine, flip_tta=flip_tta, temporal=temporal)
    src = open_source(source)
    if sequences is not None:
        src = src.subset(sequences)
    if temporal is not None and rank == 0 and all(len(s) < 2 for s in src.sequences):
        print(f"--temporal: {source} has no sequence of two or more frames, so no neighbours to use: "
              "predicted from each image alone")
    out.mkdir(parents=True, exist_ok=True)
    shards = shard_source(src, rank, world)
    writers = OutputWriters(out, save, threshold, {s.name: s for s in src.sequences}, rank, world,
                       split=world > 1 and len(src.sequences) < world)
    bar = tqdm(total=sum(s.stop - s.start for s in shards), desc="predict", unit="frame",
               disable=not progress or rank != 0)
    frames = (frame for shard in shards for frame in shard_frames(shard))
    try:
        for frame, pred in predictor.predict_frames(frames, batch):
            writers.add(frame, pred)
            bar.update(1)
    except BaseException:
        writers.abort()
        raise
    finally:
        bar.close()
    writers.finish()
    if temporal is not None and rank == 0:
        _report_context(predictor.context_counts)
    return out


def _report_context(counts: dict[str, list[int]]) -> None:
    """Say which sequences' frames mostly had no aligned neighbour (``Predictor.context_counts``)."""
    alone = {name: without / (with_ + without) for name, (with_, without) in counts.items() if without > with_}
    for name, share in alone.items():
        print(f"--temporal: {share:.0%} of the frames of {name} have no neighbour that aligns with them (a single "
              "image, an unordered collection or cuts): those were predicted from the image alone")
