"""Camera-stabilised optical flow of video frames, encoded as RGB images (section 3.5 of the paper).

For a pair of frames (prev, cur), prev is registered onto cur with a homography (SIFT
keypoints + RANSAC, :mod:`inpaintseg.data.background`) and warped into cur's pixel grid, which removes the
camera motion of a mostly planar or distant background. Dense optical flow on the stabilised pair (OpenCV
DIS, or RAFT with the user's weights) is then the *residual* motion: about zero on the background, the
object's own motion on a moving figure. The paper used FlowNet 2.0; DIS needs no weights.

Conventions:

- Images are RGB ``uint8`` arrays (H, W, 3); sizes are written (W, H); pixel coordinates are (x, y) with
  x to the right and y down.
- A flow field is float32 (H, W, 2) in pixels, on *cur's* pixel grid: ``flow[y, x] = (u, v)`` is the
  position of the scene point at (x, y) in cur minus its position in the stabilised prev, i.e. its motion
  since prev (a figure moving right has u > 0). Pixels of cur that the warped prev does not cover get 0.
- A frame ``i`` of a sequence gets the flow of two pairs, from frame ``i - FLOW_GAP`` and from frame
  ``i + FLOW_GAP`` (the nearest frames up to that gap at the ends of the sequence), both as the motion over
  the gap forward in time (the second pair's flow negated). Per pixel, the vector of smaller magnitude is
  kept (:func:`combine_pairs`): a moving figure moves in both pairs, while the trail it leaves behind, the
  ground it uncovers and DIS's noise rarely show in both. Where only one pair has a homography, its flow is
  used; a frame with neither (or a one-frame sequence) gets zero flow and is invalid.
- Encoded flow image (:func:`encode_flow`), with M = ``max_magnitude`` (default :data:`FLOW_SCALE` times
  the image width): channel 0 = 128 + 127 u / M, channel 1 = 128 + 127 v / M (clipped to [1, 255]),
  channel 2 = 255 min(1, |(u, v)| / M). Zero flow is :data:`ZERO_FLOW_RGB`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from inpaintseg.data.background import FeatureCache
from inpaintseg.data.image_io import resize_image, write_png
from inpaintseg.data.sources import open_source
from inpaintseg.errors import ConfigError, DataError
from inpaintseg.io import atomic_write_text, load_npz_cache, save_npz_cache

METHODS = ("dis", "raft")
FLOW_SCALE = 0.05
"""Default encoding range M as a fraction of the image width: 0.05 x 320 px = 16 px per frame saturates."""
ZERO_FLOW_RGB: tuple[int, int, int] = (128, 128, 0)
"""Encoded colour of zero flow."""
# Bumped whenever the computation of the cached flows changes, so that old cache files are not reused.
CACHE_VERSION = 2
FLOW_GAP = 2
"""Frames between the two images of a pair. The paper pairs consecutive frames; a gap of 2, with a pair on each
side and the smaller vector kept, puts more of the flow's magnitude on the moving figure (docs/method.md)."""
# RAFT: image sides are padded (edge replication) to a multiple of 8 and at least this many pixels: its
# correlation pyramid needs feature maps (1/8 of the image) of at least 16 px.
RAFT_MIN_SIDE = 128
RAFT_ITERATIONS = 12


# -- one pair -------------------------------------------------------------------------------------------


def stabilized_flow(
    prev: np.ndarray,
    cur: np.ndarray,
    features: FeatureCache | None = None,
    indices: tuple[int, int] | None = None,
    method: str = "dis",
    raft_weights: str | Path | None = None,
) -> tuple[np.ndarray, bool]:
    """Residual optical flow of ``cur`` from ``prev`` after removing the camera motion.

    ``prev``, ``cur``: RGB uint8 (H, W, 3), the same size. The homography prev -> cur comes from SIFT +
    RANSAC; pass a :class:`FeatureCache` over the sequence and ``indices`` = (index of prev, index of cur)
    in it to reuse features between pairs. prev is warped onto cur's grid (bilinear, border replicated) and
    dense flow is computed on the pair: ``method="dis"`` = OpenCV DIS (preset MEDIUM) on grayscale,
    ``method="raft"`` = torchvision RAFT (small or large, detected from ``raft_weights``, a local
    state-dict file).

    Returns (flow float32 (H, W, 2) on cur's grid, see the module docstring; ok). When the homography
    cannot be estimated the flow is all zeros and ok is False (no exception).
    """
    _check_method(method, raft_weights)
    _check_pair(prev, cur)
    height, width = cur.shape[:2]
    if features is None:
        features, indices = FeatureCache([prev, cur]), (0, 1)
    elif indices is None:
        raise ValueError("stabilized_flow: pass indices=(prev, cur) into the FeatureCache's frames")
    h = features.homography(indices[0], indices[1])
    if h is None:
        return np.zeros((height, width, 2), np.float32), False
    warped = cv2.warpPerspective(prev, h, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    full = np.full((height, width), 255, np.uint8)
    covered = cv2.warpPerspective(full, h, (width, height), flags=cv2.INTER_LINEAR) == 255
    if method == "dis":
        flow = dis_flow(cur, warped)
    else:
        flow = raft_flow(cur, warped, raft_weights)  # type: ignore[arg-type]  # checked by _check_method
    flow = -flow  # cur -> prev displacement, negated: motion since prev, on cur's grid
    flow[~covered] = 0.0
    return flow.astype(np.float32), True


def dis_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """OpenCV DIS flow (preset MEDIUM) from ``first`` to ``second`` (RGB uint8 (H, W, 3), same size).

    Returns float32 (H, W, 2) on ``first``'s grid: ``first(x, y) ~ second(x + u, y + v)``.
    """
    gray0 = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
    gray1 = cv2.cvtColor(second, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(gray0, gray1, None).astype(np.float32)


def raft_flow(first: np.ndarray, second: np.ndarray, weights: str | Path) -> np.ndarray:
    """RAFT flow from ``first`` to ``second`` (RGB uint8 (H, W, 3), same size), same convention as
    :func:`dis_flow`. The model is loaded once per weights file (:func:`load_raft`); it runs on CUDA when
    available. Sides are padded by edge replication to a multiple of 8 (at least :data:`RAFT_MIN_SIDE`)
    and the flow is cropped back."""
    import torch
    import torch.nn.functional as F

    model = load_raft(weights)
    device = next(model.parameters()).device
    height, width = first.shape[:2]
    pad_h = max(-(-height // 8) * 8, RAFT_MIN_SIDE) - height
    pad_w = max(-(-width // 8) * 8, RAFT_MIN_SIDE) - width

    def prepare(image: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
        t = t / 127.5 - 1.0  # torchvision's RAFT expects [-1, 1]
        return F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")

    with torch.inference_mode():
        flows = model(prepare(first), prepare(second), num_flow_updates=RAFT_ITERATIONS)
    flow = flows[-1][0, :, :height, :width].permute(1, 2, 0)
    return flow.float().cpu().numpy().astype(np.float32)


def load_raft(weights: str | Path) -> Any:
    """torchvision RAFT (``raft_large`` or ``raft_small``, whichever the state dict fits) with weights from
    a local file, in eval mode, on CUDA when available. Cached per file (path, size, modification time).

    Raises DataError (an InpaintsegError) naming the file when it is missing, unreadable, or matches
    neither architecture. The file is loaded with ``torch.load(weights_only=True)``.
    """
    path = Path(weights).expanduser()
    if not path.is_file():
        raise DataError(path, "RAFT weights file does not exist")
    stat = path.stat()
    return _load_raft_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _load_raft_cached(path: str, size: int, mtime_ns: int) -> Any:
    import torch
    from torchvision.models.optical_flow import raft_large, raft_small

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
        raise DataError(path, f"cannot read RAFT weights ({e.__class__.__name__}: {e})") from None
    if isinstance(state, dict) and len(state) == 1 and next(iter(state)) in ("state_dict", "model"):
        state = next(iter(state.values()))  # a checkpoint wrapping the state dict
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "not a RAFT state dict (expected a mapping of parameter names to tensors)")
    problems = []
    for builder in (raft_large, raft_small):
        model = builder(weights=None, progress=False)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            problems.append(f"{builder.__name__}: {str(e).splitlines()[0]}")
            continue
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return model.eval().to(device)
    raise DataError(path, "weights match neither torchvision raft_large nor raft_small (" + "; ".join(problems) + ")")


# -- encoding -------------------------------------------------------------------------------------------


def default_max_magnitude(width: int) -> float:
    """Default encoding range M in pixels for an image ``width`` px wide: :data:`FLOW_SCALE` x width."""
    return FLOW_SCALE * float(width)


def encode_flow(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Encode flow float (H, W, 2) in pixels as an RGB uint8 image (H, W, 3).

    With M = ``max_magnitude`` (default :func:`default_max_magnitude` of the flow's width): channel 0 =
    128 + 127 u / M, channel 1 = 128 + 127 v / M (components clipped to [-M, M], so values 1..255),
    channel 2 = 255 min(1, |(u, v)| / M); rounded. Zero flow gives :data:`ZERO_FLOW_RGB`.
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    m = default_max_magnitude(flow.shape[1]) if max_magnitude is None else float(max_magnitude)
    if not m > 0:
        raise ValueError(f"max_magnitude must be positive, got {max_magnitude}")
    f = flow.astype(np.float32) / m
    out = np.empty(flow.shape[:2] + (3,), np.uint8)
    out[..., :2] = np.round(128.0 + 127.0 * np.clip(f, -1.0, 1.0))
    out[..., 2] = np.round(255.0 * np.minimum(1.0, np.hypot(f[..., 0], f[..., 1])))
    return out


def decode_flow(image: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Inverse of :func:`encode_flow`: RGB uint8 (H, W, 3) -> flow float32 (H, W, 2) in pixels.

    Channel 2 is not needed. Exact up to quantisation (M / 254 px per component) for components within
    [-M, M]; larger ones come back as +-M. ``max_magnitude`` must be the M used for encoding.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encoded flow must be (H, W, 3), got {image.shape}")
    m = default_max_magnitude(image.shape[1]) if max_magnitude is None else float(max_magnitude)
    return ((image[..., :2].astype(np.float32) - 128.0) * (m / 127.0)).astype(np.float32)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flow float (H, W, 2) resampled to ``size`` = (W', H'): the field is resized (area averaging when
    shrinking, bilinear otherwise) and u is scaled by W'/W, v by H'/H, so that vectors stay in pixels of
    the new grid. Returns float32 (H', W', 2)."""
    height, width = flow.shape[:2]
    new_w, new_h = int(size[0]), int(size[1])
    if (new_w, new_h) == (width, height):
        return flow.astype(np.float32, copy=True)
    shrink = new_w <= width and new_h <= height
    out = cv2.resize(
        flow.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    out[..., 0] *= new_w / width
    out[..., 1] *= new_h / height
    return out


# -- sequences ------------------------------------------------------------------------------------------


class _SameSizeFrames:
    """Frames read on demand through ``read(i)``, resized to frame 0's size (``cv2.INTER_AREA``), the last
    few kept: indexable like a list of RGB uint8 (H, W, 3) arrays of one size, in bounded memory."""

    def __init__(self, read: Callable[[int], np.ndarray], length: int, keep: int = 4) -> None:
        self._read = read
        self._length = length
        self._keep = keep
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.size: tuple[int, int] | None = None  # (W, H) of frame 0, once read
        if length > 0:
            first = self[0]
            self.size = (first.shape[1], first.shape[0])

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        image = self._read(i)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"frame {i}: expected RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        if self.size is not None:
            image = resize_image(image, self.size, cv2.INTER_AREA)
        self._cache[i] = image
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return image


def iter_sequence_flows(
    frames: Sequence[np.ndarray],
    size: tuple[int, int] | None = None,
    method: str = "dis",
    raft_weights: str | Path | None = None,
) -> Iterator[tuple[np.ndarray, bool]]:
    """Yield (encoded flow RGB uint8 (H', W', 3), ok) for each frame of a sequence, in order.

    ``frames``: indexable RGB uint8 (H, W, 3) frames (frames of another size than frame 0 are resized to
    it). Frame i gets the stabilised flows from its partners (:func:`pair_partners`), combined by
    :func:`combine_pairs` (see the module docstring); one :class:`FeatureCache` serves the whole sequence.
    Flow is computed at the frames' size, resized to ``size`` = (W', H') with :func:`resize_flow` (None: the
    frames' size) and encoded with M = :func:`default_max_magnitude` (W'). Frames are read on demand, so
    ``frames`` may be lazy. ok is False where no partner's homography was found.
    """
    _check_method(method, raft_weights)
    window = 2 * FLOW_GAP + 2  # frames i - gap .. i + gap are in use at once, plus one to spare
    view = _SameSizeFrames(frames.__getitem__, len(frames), keep=window)
    if view.size is None:
        return
    out_size = view.size if size is None else _check_size(size)
    m = default_max_magnitude(out_size[0])
    zero = encode_flow(np.zeros((out_size[1], out_size[0], 2), np.float32), m)
    features = FeatureCache(view, max_items=window)
    for i in range(len(view)):
        flow = frame_flow(view, i, features, method, raft_weights)
        yield (zero, False) if flow is None else (encode_flow(resize_flow(flow, out_size), m), True)


def pair_partners(i: int, length: int, gap: int = FLOW_GAP) -> list[int]:
    """Indices of the frames frame ``i`` of a ``length``-frame sequence is paired with: ``i - gap`` and
    ``i + gap``, each clamped into the sequence, ``i`` itself left out (so 0, 1 or 2 partners)."""
    return [j for j in sorted({max(i - gap, 0), min(i + gap, length - 1)}) if j != i]


def frame_flow(frames: Sequence[np.ndarray], i: int, features: FeatureCache, method: str = "dis",
               raft_weights: str | Path | None = None) -> np.ndarray | None:
    """Stabilised flow float32 (H, W, 2) of frame ``i`` of a sequence (``frames``: RGB uint8 (H, W, 3), one size;
    ``features``: a :class:`FeatureCache` over them), the motion forward in time: its pairs with its
    :func:`pair_partners` combined by :func:`combine_pairs`. None when no partner's homography was found."""
    fields = []
    for j in pair_partners(i, len(frames)):
        flow, ok = stabilized_flow(frames[j], frames[i], features, (j, i), method, raft_weights)
        if ok:
            fields.append(flow if j < i else -flow)  # motion since j; negated for a later j: forward in time
    return combine_pairs(fields) if fields else None


def combine_pairs(fields: Sequence[np.ndarray]) -> np.ndarray:
    """Per pixel, the vector of smallest magnitude among flow fields float (H, W, 2) of one grid."""
    stack = np.stack(fields)  # (P, H, W, 2)
    pick = np.argmin(np.hypot(stack[..., 0], stack[..., 1]), axis=0)  # (H, W)
    return np.take_along_axis(stack, pick[None, ..., None], axis=0)[0].astype(np.float32)


def sequence_flows(
    frames: Sequence[np.ndarray],
    size: tuple[int, int] | None = None,
    method: str = "dis",
    raft_weights: str | Path | None = None,
    progress: bool = False,
    desc: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Encoded stabilised flow of every frame of a sequence (see :func:`iter_sequence_flows`).

    Returns (encoded flows uint8 (N, H', W', 3), valid bool (N,)); valid[i] is False where the homography
    of frame i's pair failed (its flow is then :data:`ZERO_FLOW_RGB`).
    """
    if len(frames) == 0:
        raise ValueError("sequence_flows: no frames")
    encoded, valid = [], []
    pairs = iter_sequence_flows(frames, size, method, raft_weights)
    for image, ok in tqdm(pairs, total=len(frames), desc=desc or "flow", disable=not progress, leave=False):
        encoded.append(image)
        valid.append(ok)
    return np.stack(encoded), np.array(valid, dtype=bool)


def _settings_key(method: str, raft_weights: str | Path | None) -> str:
    """Hash of everything besides the frames that changes the cached flows."""
    text = f"v{CACHE_VERSION} {method} scale={FLOW_SCALE!r}"
    if method == "raft":
        text += " weights=" + _file_sha1(Path(raft_weights))  # type: ignore[arg-type]
    return hashlib.sha1(text.encode()).hexdigest()


def _file_sha1(path: Path) -> str:
    if not path.is_file():
        raise DataError(path, "RAFT weights file does not exist")
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FlowCache:
    """Encoded stabilised flows of whole sequences, computed once and stored in ``cache_dir``.

    ``size`` = (W, H) of the stored flow images (None: the frames' size). Flows are computed at the frames'
    size and resized (:func:`resize_flow`). One ``.npz`` per sequence and size holds the flows (N, H, W, 3)
    uint8, valid (N,) bool and a fingerprint of the frame contents, size, method (RAFT weights included)
    and encoding scale; a file is reused only when the fingerprint, shapes and dtypes match; an unreadable
    or mismatching file is recomputed and replaced atomically.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        size: tuple[int, int] | None,
        method: str = "dis",
        raft_weights: str | Path | None = None,
    ) -> None:
        _check_method(method, raft_weights)
        self.cache_dir = Path(cache_dir)
        self.size = None if size is None else _check_size(size)
        self.method = method
        self.raft_weights = None if raft_weights is None else Path(raft_weights)
        self._key: str | None = None

    @property
    def key(self) -> str:
        """Hash of the settings (method, weights, scale, cache version)."""
        if self._key is None:
            self._key = _settings_key(self.method, self.raft_weights)
        return self._key

    def path(self, seq_name: str, size: tuple[int, int]) -> Path:
        """Cache file of a sequence at ``size`` (W, H): ``<seq>_flow_<W>x<H>_<settings hash>.npz``."""
        return self.cache_dir / f"{seq_name}_flow_{size[0]}x{size[1]}_{self.key[:10]}.npz"

    def sequence(
        self, seq_name: str, frames: Sequence[np.ndarray], progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encoded flows uint8 (N, H, W, 3) and valid bool (N,) of a sequence at the cache's size.

        ``frames``: RGB uint8 (H0, W0, 3) frames of one size. Loaded from the cache when present and
        matching, else computed with :func:`sequence_flows` and stored.
        """
        if len(frames) == 0:
            raise ValueError(f"sequence {seq_name!r} has no frames")
        size = self.size or (frames[0].shape[1], frames[0].shape[0])
        fingerprint = self._fingerprint(frames, size)
        path = self.path(seq_name, size)
        (w, h), n = size, len(frames)
        cached = load_npz_cache(path, fingerprint, {"flows": ((n, h, w, 3), np.uint8), "valid": ((n,), bool)})
        if cached is not None:
            return cached
        flows, valid = sequence_flows(frames, size, self.method, self.raft_weights, progress, desc=seq_name)
        save_npz_cache(path, fingerprint, flows=flows, valid=valid)
        return flows, valid

    def _fingerprint(self, frames: Sequence[np.ndarray], size: tuple[int, int]) -> str:
        digest = hashlib.sha1(f"{self.key} size={size} n={len(frames)}".encode())
        for frame in frames:
            digest.update(f"{frame.shape}".encode())
            digest.update(np.ascontiguousarray(frame).data)
        return digest.hexdigest()


# -- whole sources (the ``inpaintseg flow`` command) ----------------------------------------------------


def write_flow_images(
    source_path: str | Path,
    out: str | Path,
    method: str = "dis",
    raft_weights: str | Path | None = None,
    size: tuple[int, int] | None = None,
    progress: bool = True,
) -> Path:
    """Write the encoded stabilised flow of every frame of a source; return ``out``.

    ``source_path``: anything :func:`inpaintseg.data.sources.open_source` accepts. Writes, atomically,
    ``out/<seq>/<frame>.png`` (RGB uint8, :func:`encode_flow`, at ``size`` = (W, H) or the size of the
    sequence's first frame) and ``out/<seq>/valid.json``: ``{"method", "size": [W, H], "max_magnitude",
    "frames": N, "failed": [names of frames whose homography failed]}``. Raises DataError naming the file
    for unreadable input or weights, ConfigError for a bad method or size.
    """
    _check_method(method, raft_weights)
    if method == "raft":
        load_raft(raft_weights)  # type: ignore[arg-type]  # fail before any work
    if size is not None:
        size = _check_size(size)
    source = open_source(source_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=source.num_frames(), desc="flow", disable=not progress) as bar:
        for seq in source.sequences:
            if len(seq) == 0:
                continue
            frames = _SameSizeFrames(seq.read, len(seq))
            out_size = size or frames.size or (0, 0)  # frames.size is set: the sequence has frames
            names = seq.frame_names
            failed = []
            for i, (image, ok) in enumerate(iter_sequence_flows(frames, out_size, method, raft_weights)):
                write_png(out / seq.name / f"{names[i]}.png", image)
                if not ok:
                    failed.append(names[i])
                bar.update(1)
            report = {
                "method": method,
                "size": list(out_size),
                "max_magnitude": default_max_magnitude(out_size[0]),
                "frames": len(names),
                "failed": failed,
            }
            atomic_write_text(out / seq.name / "valid.json", json.dumps(report, indent=1) + "\n")
    return out


# -- checks ---------------------------------------------------------------------------------------------


def _check_method(method: str, raft_weights: str | Path | None) -> None:
    if method not in METHODS:
        raise ConfigError(f"flow method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "raft" and raft_weights is None:
        raise ConfigError("flow method 'raft' needs a weights file (raft_weights / --raft-weights)")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
        raise ConfigError(f"size must be two positive integers (W, H), got {size!r}")
    return int(size[0]), int(size[1])


def _check_pair(prev: np.ndarray, cur: np.ndarray) -> None:
    for name, image in (("prev", prev), ("cur", cur)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name}: expected RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if prev.shape != cur.shape:
        raise ValueError(f"prev {prev.shape} and cur {cur.shape} differ in size")


__all__ = [
    "FLOW_SCALE",
    "METHODS",
    "ZERO_FLOW_RGB",
    "FlowCache",
    "decode_flow",
    "default_max_magnitude",
    "dis_flow",
    "encode_flow",
    "frame_flow",
    "iter_sequence_flows",
    "load_raft",
    "raft_flow",
    "resize_flow",
    "sequence_flows",
    "stabilized_flow",
    "write_flow_images",
]
