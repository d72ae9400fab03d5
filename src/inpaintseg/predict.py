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

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from tqdm import tqdm

from inpaintseg.config import Config
from inpaintseg.crf import CRFParams, refine_mask, require_crf
from inpaintseg.data.image_io import write_jpeg, write_png
from inpaintseg.data.sources import Frame, Sequence, Source, VideoSequence, open_source
from inpaintseg.engine import distributed
from inpaintseg.engine.data import parallel_map, resize_rgb
from inpaintseg.errors import ConfigError, DataError
from inpaintseg.grabcut import GrabCutParams, refine_grabcut
from inpaintseg.io import atomic_open, atomic_write_text
from inpaintseg.models.crop import box_to_xyxy, crop, uncrop
from inpaintseg.models.model import InpaintSegModel
from inpaintseg.weights import load_model

SAVE_CHOICES = ("masks", "coco", "overlay", "video", "grid")
REFINE_CHOICES = ("grabcut", "crf", "none")
CROP_SOURCE_MAX = 4
"""S's crop from an image larger than the working size comes from the image shrunk (area interpolation) to at
most this many times the working size."""
CROP_SUPERSAMPLE = 4
"""That crop is sampled at this many points per crop pixel in each direction and averaged (antialiasing)."""
DEFAULT_FPS = 24.0
"""Frame rate of overlay videos made from image sequences (DAVIS is 24 fps)."""
COCO_CATEGORY = {"id": 1, "name": "object"}


# -- results ---------------------------------------------------------------------------------------------


def mask_to_rle(mask: np.ndarray) -> dict:
    """bool/uint8 (H, W) -> COCO RLE ``{"size": [H, W], "counts": str}`` (JSON-ready)."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


@dataclass
class Prediction:
    """Result for one image of size (H, W); N objects, sorted by score (N = 1 by default: the argmax cell)."""

    boxes: np.ndarray
    """(N, 4) float32 x0, y0, x1, y1 in pixels of the input image (x1, y1 exclusive)."""
    proposals: np.ndarray
    """(N, 4) the detector's boxes (the crop windows), same format; ``boxes`` may be refined from the mask."""
    scores: np.ndarray
    """(N,) float32 cell probabilities of the boxes."""
    masks: np.ndarray
    """(N, H, W) float32 masks in [0, 1] at the input resolution (soft; see ``Predictor``'s ``refine``)."""
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

    def save(self, folder: str | Path, name: str, objects: bool = False) -> list[Path]:
        """Write ``folder/<name>.png``: the union mask as uint8 0..255 (the DAVIS layout ``evaluate`` reads).

        With ``objects``, also ``folder/<name>_<k>.png`` for each object k (0 = highest score).
        Returns the paths written.
        """
        folder = Path(folder)
        paths = [folder / f"{name}.png"]
        write_png(paths[0], _to_uint8(self.mask))
        if objects:
            for k, m in enumerate(self.masks):
                paths.append(folder / f"{name}_{k}.png")
                write_png(paths[-1], _to_uint8(m))
        return paths

    def to_coco(self, image_id: int, threshold: float = 0.5, first_id: int = 1) -> list[dict]:
        """COCO annotation dicts, one per object (ids ``first_id``, ``first_id + 1``, ...).

        ``bbox`` = [x, y, w, h] pixels from ``boxes``; ``segmentation`` = RLE of ``mask >= threshold``
        (``counts`` as str); ``area`` = its pixel count; ``category_id`` 1 ("object"); ``iscrowd`` 0.
        """
        out = []
        for k, (box, score, mask) in enumerate(zip(self.boxes, self.scores, self.masks, strict=True)):
            x0, y0, x1, y1 = (float(v) for v in box)
            rle = mask_to_rle(mask >= threshold)
            out.append({
                "id": first_id + k, "image_id": int(image_id), "category_id": COCO_CATEGORY["id"],
                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score), "segmentation": rle,
                "area": float(mask_util.area(_rle_bytes(rle))), "iscrowd": 0,
            })
        return out


def _to_uint8(mask: np.ndarray) -> np.ndarray:
    return (np.clip(mask, 0, 1) * 255).round().astype(np.uint8)


def _rle_bytes(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


BOX_FROM_MASK = 0.4
"""Default ``relative`` of :func:`box_from_mask` (docs/method.md: 0.4 against 0.25, measured on six runs)."""


def box_from_mask(mask: np.ndarray, fallback: np.ndarray, relative: float = BOX_FROM_MASK) -> np.ndarray:
    """Tight xyxy box (pixels, x1/y1 exclusive) around the pixels of ``mask`` (H,W) >= ``relative`` x its
    maximum; ``fallback`` when the mask is empty or ``relative`` is 0."""
    peak = float(mask.max())
    if relative <= 0 or peak <= 0:
        return fallback
    ys, xs = np.nonzero(mask >= relative * peak)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


# -- several objects: top-K cells with non-maximum suppression ------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xyxy boxes (any consistent units) -> (N, M) float64."""
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def select_cells(probs: np.ndarray, boxes: np.ndarray, max_objects: int = 1, nms_iou: float = 0.3,
                 min_prob: float = 0.05) -> np.ndarray:
    """Cells to segment: greedy non-maximum suppression in order of probability.

    Args:
        probs: (C,) cell probabilities.
        boxes: (C, 4) the cells' boxes, xyxy (any units; IoU does not depend on them).
        max_objects: at most this many cells.
        nms_iou: a cell is dropped when its box overlaps an already kept box with IoU > ``nms_iou``.
        min_prob: cells below this probability (or at 0) are never kept, except the most probable cell.

    Returns:
        (K,) int64 cell indices, 1 <= K <= max_objects, by decreasing probability. The first is always
        ``np.argmax(probs)`` (first index among ties), so ``max_objects=1`` is the paper's argmax cell.
    """
    probs = np.asarray(probs)
    order = np.argsort(-probs, kind="stable")  # ties: lower index first, like argmax
    keep = [int(order[0])]
    for c in order[1:]:
        if len(keep) >= max_objects or probs[c] < min_prob or probs[c] <= 0:
            break  # sorted: every later cell is at most as probable
        if box_iou(boxes[c : c + 1], boxes[keep]).max() > nms_iou:
            continue
        keep.append(int(c))
    return np.array(keep, dtype=np.int64)


# -- the predictor ----------------------------------------------------------------------------------------


class Predictor:
    """D + T + S on single images.

    ``box_from_mask``: the reported box is the tight box around the mask's pixels above this fraction of the
    mask's maximum (the detector's box is the crop window, typically wider than the object); 0 reports the
    detector's box unchanged (the paper's output). The detector's boxes are kept in ``Prediction.proposals``.
    ``max_objects``, ``nms_iou``, ``min_prob``: see :func:`select_cells` (defaults: one object, the argmax).
    ``refine``: how each mask is refined on the image's colours. ``grabcut`` (default): the mean of S's mask
    and GrabCut's label seeded by it (:func:`~inpaintseg.grabcut.refine_grabcut`; DAVIS 240p J +0.03 / F +0.04,
    synthetic J +0.10 / F +0.11; 30-100 ms per object on one core). ``crf``: the dense CRF's posterior (needs
    ``inpaintseg[crf]``). ``none``: S's mask as it is (the network's output; fastest).
    ``flip_tta``: the mask is the mean of S's mask for the box and the mirrored mask for the mirrored image and
    box (test-time augmentation; S runs twice, D once; on the synthetic benchmark J +0.01, F +0.03).

    D always sees the image resized to the working size (``cfg.data.size``). S's crop comes from that resized
    image when the image is not larger (as in training), else from the image itself (shrunk to at most
    ``CROP_SOURCE_MAX`` x the working size, antialiased by ``CROP_SUPERSAMPLE``): details finer than the working
    size reach S (DAVIS 240p, two 60-minute models: F +0.006 / +0.007, J +0.001 / +0.002).
    """

    def __init__(self, model: InpaintSegModel, cfg: Config, device: str | torch.device = "cpu",
                 box_from_mask: float = BOX_FROM_MASK, *, max_objects: int = 1, nms_iou: float = 0.3,
                 min_prob: float = 0.05, refine: str = "grabcut", crf_params: CRFParams | None = None,
                 grabcut_params: GrabCutParams | None = None, flip_tta: bool = False) -> None:
        if int(max_objects) != max_objects or max_objects < 1:
            raise ConfigError(f"max_objects must be a positive integer, got {max_objects!r}")
        if not 0.0 <= nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in [0, 1], got {nms_iou!r}")
        if not 0.0 <= min_prob <= 1.0:
            raise ConfigError(f"min_prob must be in [0, 1], got {min_prob!r}")
        if refine not in REFINE_CHOICES:
            raise ConfigError(f"refine must be one of {', '.join(REFINE_CHOICES)}, got {refine!r}")
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
        self.crf_params = crf_params or CRFParams()
        self.grabcut_params = grabcut_params or GrabCutParams()
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
    def predict_batch(self, images: list[np.ndarray]) -> list[Prediction]:
        """RGB uint8 (H,W,3) images (sizes may differ) -> one Prediction each.

        All images go through D together (resized to ``cfg.data.size``); the kept cells' boxes of all images
        (M = sum of the objects per image) go through T + S together as one (M, 3, S, S) batch.
        """
        if not images:
            return []
        small = np.stack([resize_rgb(im, self.size) for im in images])
        x = torch.from_numpy(small).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
        props = self.model(x)
        probs = props.probs.float().cpu().numpy()  # (B, C)
        corners = box_to_xyxy(props.boxes.float()).cpu().numpy()  # (B, C, 4) fractions of the image
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
            return refine_mask(image, mask, self.crf_params)
        return refine_grabcut(image, mask, self.grabcut_params)

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
            src = resize_rgb(im, (max(1, round(im.shape[1] * scale)), max(1, round(im.shape[0] * scale))))
            t = torch.tensor(src).permute(2, 0, 1)[None].float().div(255.0).to(self.device)  # copy: may be read-only
            fine = crop(t.expand(len(rows), -1, -1, -1), boxes[rows], size * CROP_SUPERSAMPLE)
            patches[rows] = F.avg_pool2d(fine, CROP_SUPERSAMPLE).to(patches.dtype)
        return patches

    def predict(self, image: np.ndarray) -> Prediction:
        """One RGB uint8 (H, W, 3) image -> Prediction."""
        return self.predict_batch([image])[0]

    def predict_frames(self, frames: Iterable[Frame], batch: int = 8) -> Iterator[tuple[Frame, Prediction]]:
        """Stream (frame, prediction) pairs; at most ``batch`` frames are held at a time."""
        if batch < 1:
            raise ConfigError(f"batch must be >= 1, got {batch!r}")
        pending: list[Frame] = []
        for frame in frames:
            pending.append(frame)
            if len(pending) == batch:
                yield from zip(pending, self.predict_batch([f.image for f in pending]), strict=True)
                pending = []
        yield from zip(pending, self.predict_batch([f.image for f in pending]), strict=True)

    def predict_video(self, path: str | Path, batch: int = 8) -> Iterator[Prediction]:
        """Predictions of a video file's frames in order, decoded and predicted ``batch`` frames at a time
        (memory does not grow with the video's length). DataError if ``path`` is not a readable video."""
        src = open_source(path)
        if src.kind != "video":
            raise DataError(path, "not a video file")
        for _, pred in self.predict_frames(src.sequences[0], batch):
            yield pred


# -- sharding across torchrun processes ------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Frames ``start`` .. ``stop - 1`` of ``sequence``: one process's part of the work."""

    sequence: Sequence
    start: int
    stop: int

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop == len(self.sequence)


def shard_source(source: Source, rank: int, world: int) -> list[Shard]:
    """This process's share of ``source``, in source order.

    With at least ``world`` sequences, whole sequences are dealt out, longest first to the least loaded
    rank (balanced frame counts, deterministic). With fewer sequences (e.g. one video), every sequence is
    split into ``world`` contiguous frame ranges and rank r takes the r-th. Over all ranks, every frame is
    in exactly one shard.
    """
    seqs = source.sequences
    if world <= 1:
        return [Shard(s, 0, len(s)) for s in seqs]
    if len(seqs) >= world:
        loads = [0] * world
        owner = {}
        for i in sorted(range(len(seqs)), key=lambda i: (-len(seqs[i]), i)):
            r = min(range(world), key=lambda r: (loads[r], r))
            owner[i] = r
            loads[r] += len(seqs[i])
        return [Shard(s, 0, len(s)) for i, s in enumerate(seqs) if owner[i] == rank]
    shards = []
    for s in seqs:
        start, stop = len(s) * rank // world, len(s) * (rank + 1) // world
        if stop > start:
            shards.append(Shard(s, start, stop))
    return shards


def _shard_frames(shard: Shard) -> Iterator[Frame]:
    seq = shard.sequence
    if shard.whole:
        yield from seq
        return
    names = seq.frame_names
    try:
        for i in range(shard.start, shard.stop):
            yield Frame(seq.name, names[i], i, seq.read(i))
    finally:
        if isinstance(seq, VideoSequence):
            seq.close()


# -- output writers ---------------------------------------------------------------------------------------


class VideoWriter:
    """Write RGB uint8 (H, W, 3) frames to an H.264 (yuv420p) MP4 one at a time, atomically: the file
    appears at ``path`` only when :meth:`close` succeeds.

    The first frame fixes the size (padded with black to even sides, as yuv420p needs); later frames of
    another size are resized to it. ``fps`` is kept exactly for rates like 30000/1001.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.rate = Fraction(fps).limit_denominator(1001)
        self._file_ctx = atomic_open(self.path, "wb")
        self._file = self._file_ctx.__enter__()
        self._container = av.open(self._file, "w", format="mp4")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._stream = self._container.add_stream(codec, rate=self.rate)
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.max_b_frames = 0  # decoding order = display order: parts concatenate exactly
        self._size: tuple[int, int] | None = None  # (W, H) of the input frames
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._size is None:
            self._size = (w, h)
            self._stream.width, self._stream.height = w + w % 2, h + h % 2
        if (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        w, h = self._size
        padded = np.zeros((self._stream.height, self._stream.width, 3), np.uint8)
        padded[:h, :w] = image
        frame = av.VideoFrame.from_ndarray(padded, format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and move the file into place."""
        self._container.mux(self._stream.encode(None))
        self._container.close()
        self._file_ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._container.close()
        except (av.FFmpegError, OSError, ValueError):
            pass
        try:
            self._file_ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass


def concat_videos(parts: list[Path], out: str | Path) -> None:
    """Join MP4 files encoded with the same settings (``VideoWriter`` parts) into ``out`` without
    re-encoding: packets are copied with their timestamps shifted past the previous part (presentation
    times after its last frame, decoding times strictly increasing)."""
    with atomic_open(out, "wb") as f, av.open(f, "w", format="mp4") as dst:
        ostream = None
        end = 0  # presentation time just after the last frame so far
        last_dts = None
        for part in parts:
            with av.open(str(part)) as src:
                stream = src.streams.video[0]
                if ostream is None:
                    ostream = dst.add_stream_from_template(stream)
                offset = None
                for packet in src.demux(stream):
                    if packet.dts is None:  # flush packet
                        continue
                    if offset is None:
                        offset = end if last_dts is None else max(end, last_dts + 1 - packet.dts)
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, packet.pts + packet.duration)
                    last_dts = packet.dts
                    packet.stream = ostream
                    dst.mux(packet)


def parse_save(save: str | Iterable[str]) -> tuple[str, ...]:
    """``"masks,coco"`` or ``["masks", "coco"]`` -> ``("masks", "coco")``; ConfigError for unknown kinds."""
    items = save.split(",") if isinstance(save, str) else list(save)
    kinds = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    unknown = [k for k in kinds if k not in SAVE_CHOICES]
    if unknown or not kinds:
        raise ConfigError(f"--save takes a comma-separated list of {', '.join(SAVE_CHOICES)}; got {save!r}")
    return kinds


class _Writers:
    """Writes the requested outputs frame by frame; JSON results are kept (compact) until ``finish``."""

    def __init__(self, out: Path, save: tuple[str, ...], threshold: float, sequences: dict[str, Sequence],
                 rank: int, world: int, split: bool) -> None:
        self.out, self.save, self.threshold = out, save, threshold
        self.sequences, self.rank, self.world, self.split = sequences, rank, world, split
        self.detections: list[dict] = []
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.video: VideoWriter | None = None
        self.video_sequence: str | None = None

    def add(self, frame: Frame, pred: Prediction) -> None:
        seq, name = frame.sequence, frame.name
        if "masks" in self.save:
            pred.save(self.out / seq, name)
            for box, score in zip(pred.boxes, pred.scores, strict=True):
                x0, y0, x1, y1 = (float(v) for v in box)
                self.detections.append({"sequence": seq, "frame": name, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                        "score": float(score)})
        if "coco" in self.save:
            image_id = len(self.images) + 1  # renumbered when the ranks' files are merged
            h, w = frame.image.shape[:2]
            self.images.append({"id": image_id, "file_name": f"{seq}/{name}", "width": w, "height": h,
                                "sequence": seq, "frame": name})
            self.annotations += pred.to_coco(image_id, self.threshold, first_id=len(self.annotations) + 1)
        overlay = None
        if "overlay" in self.save or "video" in self.save:
            from inpaintseg.viz import overlay_prediction

            overlay = overlay_prediction(frame.image, pred, self.threshold)
        if "overlay" in self.save:
            write_jpeg(self.out / "overlay" / seq / f"{name}.jpg", overlay)
        if "video" in self.save:
            if self.video_sequence != seq:
                self.close_video()
                self.video = VideoWriter(self._video_path(seq, self.rank if self.split else None),
                                         self.sequences[seq].fps or DEFAULT_FPS)
                self.video_sequence = seq
            self.video.write(overlay)
        if "grid" in self.save:
            from inpaintseg.viz import plot_prediction

            write_jpeg(self.out / "grid" / seq / f"{name}.jpg", plot_prediction(frame.image, pred))

    def _video_path(self, seq: str, part: int | None) -> Path:
        suffix = ".mp4" if part is None else f".rank{part}.mp4"
        return self.out / "overlay" / f"{seq}{suffix}"

    def close_video(self) -> None:
        if self.video is not None:
            self.video.close()
            self.video = None
            self.video_sequence = None

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
            self.video = None

    def finish(self) -> None:
        """Close the video; write the JSON files (merged over ranks by rank 0 under torchrun)."""
        self.close_video()
        results = {"detections": self.detections, "coco": {"images": self.images, "annotations": self.annotations}}
        if self.world == 1:
            self._write_merged([results])
            return
        atomic_write_text(self.out / f"predict.rank{self.rank}.json", json.dumps(results))
        distributed.barrier()
        if self.rank == 0:
            parts = [self.out / f"predict.rank{r}.json" for r in range(self.world)]
            self._write_merged([json.loads(p.read_text(encoding="utf-8")) for p in parts])
            for p in parts:
                p.unlink()
            if "video" in self.save and self.split:
                for seq in self.sequences:
                    videos = [self._video_path(seq, r) for r in range(self.world)]
                    videos = [v for v in videos if v.exists()]
                    if videos:
                        concat_videos(videos, self._video_path(seq, None))
                        for v in videos:
                            v.unlink()
        distributed.barrier()

    def _write_merged(self, ranks: list[dict]) -> None:
        """Concatenate the ranks' results in rank order, put them in source order, renumber COCO ids."""
        order = {name: k for k, name in enumerate(self.sequences)}
        if "masks" in self.save:
            detections = [d for r in ranks for d in r["detections"]]
            detections.sort(key=lambda d: order[d["sequence"]])  # stable: frame order within a sequence
            atomic_write_text(self.out / "detections.json", json.dumps(detections))
        if "coco" in self.save:
            images = [(r, im) for r, part in enumerate(ranks) for im in part["coco"]["images"]]
            images.sort(key=lambda item: order[item[1]["sequence"]])
            new_id = {(r, im["id"]): k + 1 for k, (r, im) in enumerate(images)}
            annotations = [(new_id[(r, a["image_id"])], a) for r, part in enumerate(ranks)
                           for a in part["coco"]["annotations"]]
            annotations.sort(key=lambda item: item[0])
            coco = {
                "info": {"description": "inpaintseg predictions"},
                "images": [{**im, "id": new_id[(r, im["id"])]} for r, im in images],
                "annotations": [{**a, "id": k + 1, "image_id": i} for k, (i, a) in enumerate(annotations)],
                "categories": [COCO_CATEGORY],
            }
            atomic_write_text(self.out / "coco.json", json.dumps(coco))


def predict_source(
    model_path: str | Path, source: str | Path, out: str | Path, batch: int = 8, device: str = "cpu",
    progress: bool = True, sequences: Iterable[str] | None = None, *, save: str | Iterable[str] = ("masks",),
    max_objects: int = 1, nms_iou: float = 0.3, min_prob: float = 0.05, refine: str = "grabcut",
    flip_tta: bool = False, threshold: float = 0.5,
) -> Path:
    """Predict every frame of ``source`` (image, folder, DAVIS root, video, folder of videos) and write the
    ``save`` outputs under ``out`` (see the module docstring); returns ``out``.

    ``masks`` (the default) writes ``out/<seq>/<frame>.png`` soft masks (0..255) at source resolution and
    ``out/detections.json`` (``[{"sequence", "frame", "bbox": [x, y, w, h], "score"}]``, the format
    ``evaluate`` reads); a video's frames are the sequence named by the file stem. ``threshold`` binarises
    masks for the COCO RLEs and overlay outlines. ``sequences``: only these sequences of the source.
    Under torchrun each process predicts its :func:`shard_source` share.
    """
    save = parse_save(save)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "the output folder exists and is not a folder (choose another --out)")
    rank, world = distributed.setup()
    predictor = Predictor.load(model_path, device, max_objects=max_objects, nms_iou=nms_iou, min_prob=min_prob,
                               refine=refine, flip_tta=flip_tta)
    src = open_source(source)
    if sequences is not None:
        src = src.subset(sequences)
    out.mkdir(parents=True, exist_ok=True)
    shards = shard_source(src, rank, world)
    writers = _Writers(out, save, threshold, {s.name: s for s in src.sequences}, rank, world,
                       split=world > 1 and len(src.sequences) < world)
    bar = tqdm(total=sum(s.stop - s.start for s in shards), desc="predict", unit="frame",
               disable=not progress or rank != 0)
    frames = (frame for shard in shards for frame in _shard_frames(shard))
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
    return out
