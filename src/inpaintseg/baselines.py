"""Classical baselines that write soft foreground masks in the evaluation layout.

``run_baseline(name, source, out)`` opens any input with :func:`inpaintseg.data.sources.open_source` and
writes ``out/<sequence>/<frame>.png``: 8-bit gray, 0..255 = foreground probability, at the resolution of
each source frame. The baselines need no training and no labels:

- ``bgsub``: background subtraction against the homography-compensated temporal median of neighbouring
  frames (:mod:`inpaintseg.data.background`); works with moving cameras.
- ``mog2``: OpenCV's Gaussian-mixture background subtractor (static cameras only), started from a median
  image and run twice over each sequence so that the first frames already have a background model;
  shadows count as background.
- ``saliency``: spectral-residual saliency (Hou & Zhang, CVPR 2007), one image at a time.
- ``center``: a centred anisotropic Gaussian prior, independent of the image.

All are computed at a reduced size (longest side :data:`WORK_SIDE` px unless ``size`` is given) and the
soft mask is resized back to the frame's size with bilinear interpolation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from inpaintseg.data.background import (
    DEFAULT_OFFSETS,
    FeatureCache,
    background_subtraction_mask,
    temporal_background,
)
from inpaintseg.data.image_io import resize_image, write_png
from inpaintseg.data.sources import Sequence, Source, open_source
from inpaintseg.errors import InpaintsegError

BASELINES = ("bgsub", "mog2", "saliency", "center")
WORK_SIDE = 320  # longest side (px) at which baselines are computed by default
SALIENCY_SIDE = 64  # Hou & Zhang compute the spectral residual on images 64 px wide
SALIENCY_SIGMA = 2.5  # Gaussian smoothing of the saliency map, in pixels of the 64 px map
CENTER_SIGMA_FRACTION = 0.25  # the centre prior's sigma, as a fraction of each side
MOG2_INIT_FRAMES = 15  # frames whose median initialises the MOG2 model


def work_size(width: int, height: int, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(W, H) at which a baseline processes a (width x height) frame: ``size`` if given, else the frame
    scaled so that its longest side is at most :data:`WORK_SIDE` (never enlarged)."""
    if size is not None:
        return int(size[0]), int(size[1])
    scale = min(1.0, WORK_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_png(prob: np.ndarray, width: int, height: int) -> np.ndarray:
    """Soft mask (h, w) float in [0, 1] -> uint8 (height, width) 0..255."""
    prob = resize_image(prob.astype(np.float32), (width, height), cv2.INTER_LINEAR)
    return np.round(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)


class _ReducedFrames:
    """Frames of a sequence resized to one work size, read on demand, recent ones kept (bounded memory).

    Indexable like a list of RGB uint8 (H, W, 3) arrays; ``original_size(i)`` = (W, H) of the source frame.
    """

    def __init__(self, seq: Sequence, size: tuple[int, int] | None, keep: int = 64) -> None:
        self.seq = seq
        self.keep = keep
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._sizes: dict[int, tuple[int, int]] = {}
        first = seq.read(0)
        self.size = work_size(first.shape[1], first.shape[0], size)
        self._store(0, first)

    def _store(self, i: int, image: np.ndarray) -> np.ndarray:
        self._sizes[i] = (image.shape[1], image.shape[0])
        small = resize_image(image, self.size, cv2.INTER_AREA)
        self._frames[i] = small
        while len(self._frames) > self.keep:
            self._frames.popitem(last=False)
        return small

    def __len__(self) -> int:
        return len(self.seq)

    def __getitem__(self, i: int) -> np.ndarray:
        if i in self._frames:
            self._frames.move_to_end(i)
            return self._frames[i]
        return self._store(i, self.seq.read(i))

    def original_size(self, i: int) -> tuple[int, int]:
        if i not in self._sizes:
            self[i]
        return self._sizes[i]


# -- the baselines: each yields (frame index, soft mask (h, w) float32 in [0, 1]) for one sequence ----------


def _bgsub(frames: _ReducedFrames) -> Iterator[tuple[int, np.ndarray]]:
    max_offset = max(abs(o) for o in DEFAULT_OFFSETS)
    features = FeatureCache(frames, max_items=2 * max_offset + 8)
    for i in range(len(frames)):
        background, coverage = temporal_background(frames, i, DEFAULT_OFFSETS, features)
        yield i, background_subtraction_mask(frames[i], background, coverage)


def _mog2(frames: _ReducedFrames) -> Iterator[tuple[int, np.ndarray]]:
    subtractor = cv2.createBackgroundSubtractorMOG2(detectShadows=True)
    # MOG2 adopts the first image it sees as background for good (its pixels are never foreground), so it
    # starts from the per-pixel median of up to MOG2_INIT_FRAMES frames spread over the sequence.
    picks = np.unique(np.linspace(0, len(frames) - 1, MOG2_INIT_FRAMES).round().astype(int))
    start = np.median(np.stack([frames[int(i)] for i in picks]), axis=0).astype(np.uint8)
    subtractor.apply(cv2.cvtColor(start, cv2.COLOR_RGB2BGR))
    for i in range(len(frames)):  # first pass: learn a model of the whole sequence
        subtractor.apply(cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    for i in range(len(frames)):
        labels = subtractor.apply(cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
        yield i, (labels == 255).astype(np.float32)  # 127 = shadow -> background


def spectral_residual_saliency(image: np.ndarray) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang 2007) of an RGB uint8 image (H, W, 3).

    On the grayscale image resized to :data:`SALIENCY_SIDE` px wide: log amplitude spectrum minus its 3x3
    local average (the spectral residual), recombined with the original phase, inverse FFT, squared
    magnitude, Gaussian blur. Returns the map at that reduced size, float32 in [0, 1] (max = 1; all zero
    for a flat image).
    """
    height, width = image.shape[:2]
    small_h = max(1, round(height * SALIENCY_SIDE / width))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (SALIENCY_SIDE, small_h), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
    spectrum = np.fft.fft2(gray)
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    phase = np.angle(spectrum)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3), borderType=cv2.BORDER_WRAP)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    saliency = cv2.GaussianBlur(saliency, (0, 0), sigmaX=SALIENCY_SIGMA, sigmaY=SALIENCY_SIGMA)
    top = saliency.max()
    if not np.isfinite(top) or top <= 1e-12 or np.ptp(gray) == 0:
        return np.zeros_like(saliency, np.float32)
    return (saliency / top).astype(np.float32)


def center_prior(width: int, height: int) -> np.ndarray:
    """Centred anisotropic Gaussian (height, width) float32: 1 at the image centre, sigma = 1/4 of each
    side (pixel centres at x + 0.5)."""
    x = (np.arange(width) + 0.5 - width / 2) / (CENTER_SIGMA_FRACTION * width)
    y = (np.arange(height) + 0.5 - height / 2) / (CENTER_SIGMA_FRACTION * height)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def _saliency(frames: _ReducedFrames) -> Iterator[tuple[int, np.ndarray]]:
    for i in range(len(frames)):
        yield i, spectral_residual_saliency(frames[i])


def _center(frames: _ReducedFrames) -> Iterator[tuple[int, np.ndarray]]:
    for i in range(len(frames)):
        width, height = frames.original_size(i)
        yield i, center_prior(width, height)


_RUNNERS: dict[str, Callable[[_ReducedFrames], Iterator[tuple[int, np.ndarray]]]] = {
    "bgsub": _bgsub,
    "mog2": _mog2,
    "saliency": _saliency,
    "center": _center,
}


def check_baseline_name(name: str) -> None:
    """Raise InpaintsegError unless ``name`` is one of :data:`BASELINES`."""
    if name not in BASELINES:
        raise InpaintsegError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


def run_baseline_on_source(
    name: str, source: Source, out: str | Path, size: tuple[int, int] | None = None, progress: bool = True
) -> Path:
    """Run baseline ``name`` on every sequence of an opened source; see :func:`run_baseline`."""
    check_baseline_name(name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runner = _RUNNERS[name]
    total = sum(len(seq) for seq in source.sequences)
    with tqdm(total=total, desc=name, disable=not progress) as bar:
        for seq in source.sequences:
            if len(seq) == 0:
                continue
            frames = _ReducedFrames(seq, size)
            names = seq.frame_names
            for i, prob in runner(frames):
                width, height = frames.original_size(i)
                write_png(out / seq.name / f"{names[i]}.png", _to_png(prob, width, height))
                bar.update(1)
    return out


def run_baseline(
    name: str,
    source_path: str | Path,
    out: str | Path,
    size: tuple[int, int] | None = None,
    progress: bool = True,
) -> Path:
    """Write baseline ``name``'s soft masks for every frame of ``source_path`` under ``out``; return ``out``.

    ``source_path``: anything :func:`inpaintseg.data.sources.open_source` accepts. Output:
    ``out/<sequence>/<frame>.png``, uint8 (H, W) = round(255 * foreground probability), H x W = the source
    frame's size. ``size`` = (W, H) at which the baseline is computed (None: longest side
    :data:`WORK_SIDE`). Raises InpaintsegError for an unknown name, DataError for unreadable input.
    """
    check_baseline_name(name)
    return run_baseline_on_source(name, open_source(source_path), out, size, progress)
