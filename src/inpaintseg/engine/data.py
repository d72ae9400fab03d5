"""Training frames held in memory at the working resolution, with optional background estimates.

Frames of every sequence of a source are read once, resized to ``size`` (W, H) with area interpolation and
kept as a uint8 tensor (N, 3, H, W): 1,000 frames at 160x96 take 46 MB; at the paper's 640x360, 0.7 GB.
Ground-truth masks are never read here: training is label-free.
For ``background=temporal|known`` each frame gets a background estimate (N, 3, H, W) uint8, computed
once and cached on disk (data/background.py); with ``data.flow`` each frame also gets its encoded
camera-stabilised optical flow (N, 3, H, W) uint8 (data/flow.py), cached the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from inpaintseg.data.image_io import resize_image
from inpaintseg.data.sources import Source
from inpaintseg.errors import DataError
from inpaintseg.losses import error_map

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FrameBank:
    frames: torch.Tensor
    """(N, 3, H, W) uint8 RGB frames at the working resolution."""
    sequence_ids: torch.Tensor
    """(N,) long: index into ``sequence_names`` of each frame."""
    sequence_names: list[str]
    frame_names: list[str]
    backgrounds: torch.Tensor | None = None
    """(N, 3, H, W) uint8 background estimates, or None (background from the inpainter)."""
    flows: torch.Tensor | None = None
    """(N, 3, H, W) uint8 encoded stabilised flow of each frame (data/flow.py), or None (no flow branch)."""
    flow_valid: torch.Tensor | None = None
    """(N,) bool: the frame's flow could be computed (its homography was found)."""
    targets: torch.Tensor | None = None
    """(N, 1, H, W) uint8 {0, 1} mask targets from the background (``loss.mask_target=grabcut``), or None."""
    is_flow: bool = False
    """``frames`` are themselves encoded flow images (the flow inpainter's training bank)."""

    def __len__(self) -> int:
        return self.frames.shape[0]

    def flow_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float encoded flows (B,3,H,W) in [0,1] and their validity (B,) bool for the given frame indices."""
        return self.flows[indices].float() / 255.0, self.flow_valid[indices]

    def flow_bank(self) -> FrameBank:
        """The valid flow images as a bank of their own (``is_flow``), to train the flow inpainter on."""
        keep = self.flow_valid.nonzero().flatten()
        if len(keep) == 0:
            raise DataError(self.sequence_names[0], "no frame has a usable optical flow (every homography failed)")
        return FrameBank(self.flows[keep], self.sequence_ids[keep], self.sequence_names,
                         [self.frame_names[i] for i in keep.tolist()], is_flow=True)

    def target_batch(self, indices: torch.Tensor) -> torch.Tensor | None:
        """Float mask targets (B,1,H,W) in {0, 1} for the given frame indices, or None."""
        return None if self.targets is None else self.targets[indices].float()

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Float images (B,3,H,W) in [0,1] and backgrounds (or None) for the given frame indices."""
        images = self.frames[indices].float() / 255.0
        bgs = None if self.backgrounds is None else self.backgrounds[indices].float() / 255.0
        return images, bgs


def flip_horizontal(images: torch.Tensor, flow: bool = False) -> torch.Tensor:
    """Mirror (B,C,H,W) images, backgrounds or mask targets left-right. For encoded flow images in [0,1]
    (data/flow.py) the horizontal component u changes sign too: channel 0 = (128 + 127 u/M) / 255 becomes
    (256 - 255 x) / 255."""
    out = images.flip(-1)
    if flow:
        out[:, 0] = (256.0 / 255.0 - out[:, 0]).clamp(0.0, 1.0)
    return out


def mirror_rows(batch: torch.Tensor | None, rows: torch.Tensor, flow: bool = False) -> torch.Tensor | None:
    """``batch`` (B,C,H,W) with the items where ``rows`` (B,) is True mirrored by :func:`flip_horizontal`, in
    place; None stays None (a bank without backgrounds, targets or flow)."""
    if batch is not None:
        batch[rows] = flip_horizontal(batch[rows], flow=flow)
    return batch


def zoom_grids(zoom: torch.Tensor, corner: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sampling grids (B,H,W,2) for ``F.grid_sample`` that show, resized to the full frame, the window of 1/zoom of
    the frame's side whose position is ``corner`` (B,2) in [0,1]^2 (x, y: 0 = left/top edge, 1 = right/bottom).
    ``zoom`` (B,) >= 1; zoom 1 is the identity."""
    half = 1.0 / zoom  # the window's half-size in normalised [-1, 1] coordinates is 1/zoom
    centre = (2.0 * corner - 1.0) * (1.0 - half[:, None])  # keeps the window inside the frame
    theta = torch.zeros(len(zoom), 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = half, half
    theta[:, :, 2] = centre
    return F.affine_grid(theta, [len(zoom), 1, height, width], align_corners=False)


def zoom_rows(batch: torch.Tensor | None, grids: torch.Tensor) -> torch.Tensor | None:
    """``batch`` (B,C,H,W) resampled (bilinear) on ``grids`` from :func:`zoom_grids`; None stays None. Encoded
    flow images are resampled like images (their vectors keep their length: the flow's pattern, not its scale,
    is what the loss compares)."""
    if batch is None:
        return None
    return F.grid_sample(batch, grids.to(batch.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def jitter_colours(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation of (B,3,H,W) images in [0,1] scaled by ``factors`` (B,3). Each is a
    per-pixel map (contrast about mid-grey), so an image and its background given the same factors stay equal
    where they were equal."""
    b, c, s = (factors[:, k, None, None, None] for k in range(3))
    gray = images.mean(dim=1, keepdim=True)
    out = gray + (images - gray) * s  # saturation
    out = 0.5 + (out - 0.5) * c  # contrast
    return (out * b).clamp(0.0, 1.0)  # brightness


def parallel_map(fn: Callable[[T], R], items: list[T], desc: str, unit: str, progress: bool,
                 workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` threads (default: one per CPU core), in order, with a progress
    bar. For OpenCV-heavy work (SIFT, RANSAC, GrabCut), which releases the GIL; OpenCV's random generator is per
    thread."""
    workers = max(1, min(len(items), workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=not progress, unit=unit))


def evenly_spaced(n: int, k: int) -> list[int]:
    """Up to ``k`` of the indices 0..n-1, evenly spaced, first and last included (all when k <= 0 or k >= n)."""
    if k <= 0 or k >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


def background_size(size: tuple[int, int], max_side: int = 320) -> tuple[int, int]:
    """Resolution at which backgrounds are estimated: the working size scaled up to ``max_side`` (SIFT
    needs more pixels than the small training resolution offers); never smaller than ``size``."""
    scale = max(1.0, max_side / max(size))
    return int(round(size[0] * scale)), int(round(size[1] * scale))


def load_frames(
    source: Source, size: tuple[int, int], max_frames: int = 0, progress: bool = True, keep: bool = False
) -> tuple[FrameBank, list[list[np.ndarray]]]:
    """Read every sequence's frames at ``size``. With ``keep``, also return each sequence's frames at
    :func:`background_size` (for background estimation). With ``source``'s on_error=skip, unreadable frames
    are skipped and counted."""
    all_frames, seq_ids, frame_names, per_seq, names = [], [], [], [], []
    total = sum(len(s) for s in source.sequences)
    bar = tqdm(total=total, desc="reading frames", disable=not progress, unit="frame")
    for seq in source.sequences:
        chosen = set(evenly_spaced(len(seq), max_frames))
        frames, larger = [], []
        for frame in seq:
            bar.update(1)
            if frame.index not in chosen:
                continue
            frames.append(resize_image(frame.image, size))
            if keep:
                larger.append(resize_image(frame.image, background_size(size)))
            frame_names.append(frame.name)
        if not frames:
            continue
        names.append(seq.name)
        per_seq.append(larger)
        all_frames += frames
        seq_ids += [len(names) - 1] * len(frames)
    bar.close()
    if not all_frames:
        raise DataError(source.root, "no readable frames to train on")
    tensor = torch.from_numpy(np.stack(all_frames)).permute(0, 3, 1, 2).contiguous()
    bank = FrameBank(tensor, torch.tensor(seq_ids, dtype=torch.long), names, frame_names)
    return bank, per_seq


def sampled_order_share(per_seq: list[list[np.ndarray]], offsets: list[int], sample: int = 16) -> float:
    """The share of the neighbours in order that align with their frame (what :func:`attach_backgrounds`
    returns for ``temporal``), estimated on ``sample`` frames evenly spaced over all sequences (``per_seq``:
    frames at :func:`background_size`). Near 1 for a video and near 1 / k for the frames of k videos shuffled
    together, so a sample tells them apart before any background is computed."""
    from inpaintseg.data.background import FeatureCache, neighbour_indices

    frames = [(s, i) for s, seq in enumerate(per_seq) for i in range(len(seq))]
    caches: dict[int, FeatureCache] = {}
    shares = []
    for s, i in (frames[k] for k in evenly_spaced(len(frames), sample)):
        cache = caches.setdefault(s, FeatureCache(per_seq[s]))
        neighbours = neighbour_indices(i, len(per_seq[s]), offsets)
        shares.append(sum(cache.homography(j, i) is not None for j in neighbours) / max(1, len(neighbours)))
    return float(np.mean(shares))


def attach_backgrounds(
    bank: FrameBank, per_seq: list[list[np.ndarray]], mode: str, cache_dir: Path, offsets: list[int],
    progress: bool = True,
) -> float:
    """Compute (or load from ``cache_dir``) a background for every frame from ``per_seq`` (frames at
    :func:`background_size`), stored at the bank's size. ``temporal``: median of homography-aligned
    neighbours; ``collection``: the same with the most similar frames of the sequence as neighbours (no order
    needed); ``known``: per-sequence median of all frames (static camera). Returns the share of the neighbours
    that could be aligned, a mean over the frames (1.0 for ``known``): near 1 for a video, near 1 / k for the
    frames of k videos shuffled together, where a neighbour in the folder's order is of the same shot by chance."""
    from inpaintseg.data.background import BackgroundCache

    h, w = bank.frames.shape[-2:]
    out = []
    if mode in ("temporal", "collection"):
        big = (per_seq[0][0].shape[1], per_seq[0][0].shape[0])
        cache = BackgroundCache(cache_dir, big, offsets=offsets, similar=mode == "collection")

        def small(job: tuple[str, list[np.ndarray]]) -> tuple[np.ndarray, float]:
            """One sequence's backgrounds at the bank's size (only those are kept) and the sum over its frames of
            the share of their neighbours aligned (the coverage's maximum counts the aligned neighbours)."""
            bgs, coverage = cache.sequence(*job)
            aligned = cache.aligned_share(job[1], coverage)
            return np.stack([resize_image(bg, (w, h)) for bg in bgs]), float(aligned.sum())

        jobs = list(zip(bank.sequence_names, per_seq, strict=True))
        results = parallel_map(small, jobs, "backgrounds", "seq", progress)
        out = [bgs for bgs, _ in results]
        fraction = sum(aligned for _, aligned in results) / len(bank)
    elif mode == "known":
        for frames in per_seq:
            med = resize_image(np.median(np.stack(frames), axis=0).astype(np.uint8), (w, h))
            out.append(np.repeat(med[None], len(frames), axis=0))
        fraction = 1.0
    else:
        raise ValueError(mode)
    bank.backgrounds = torch.from_numpy(np.concatenate(out)).permute(0, 3, 1, 2).contiguous()
    return fraction


def attach_inpainted_backgrounds(bank: FrameBank, inpainter: torch.nn.Module, chunk: int = 32,
                                 progress: bool = True) -> None:
    """Backgrounds from the frozen inpainter (``data.background=inpainted``, data/inpainted.py) for every frame
    of the bank, at its size."""
    from inpaintseg.data.inpainted import inpainted_background

    out = []
    for start in tqdm(range(0, len(bank), chunk), desc="inpainted backgrounds", unit="batch", disable=not progress):
        images = bank.frames[start : start + chunk].float() / 255.0
        out.append((inpainted_background(inpainter, images) * 255.0).round().clamp(0, 255).to(torch.uint8))
    bank.backgrounds = torch.cat(out)


def better_background(frames: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per pixel, the background of ``a`` or ``b`` (uint8 (N,3,H,W), like ``frames``) whose squared error against
    the frame is smaller: a region stands out only where neither explains it."""
    a_wins = error_map(a.float(), frames.float()) <= error_map(b.float(), frames.float())  # (N,H,W)
    return torch.where(a_wins[:, None], a, b)


def attach_mask_targets(bank: FrameBank, progress: bool = True) -> float:
    """GrabCut mask targets (data/mask_target.py) for every frame of a bank with backgrounds, at the bank's
    size. When the bank has flows (:func:`attach_flows`, called first), each
    frame's valid flow joins the seeds. Returns the mean foreground fraction of the targets."""
    from inpaintseg.data.flow import decode_flow
    from inpaintseg.data.mask_target import grabcut_target

    if bank.backgrounds is None:
        raise ValueError("mask targets need a per-frame background")
    frames = bank.frames.permute(0, 2, 3, 1).numpy()
    bgs = bank.backgrounds.permute(0, 2, 3, 1).numpy()
    if bank.flows is None:
        flows: list[np.ndarray | None] = [None] * len(frames)
    else:  # encoded uint8 flows, decoded one frame at a time inside the job
        encoded = bank.flows.permute(0, 2, 3, 1).numpy()
        flows = [f if ok else None for f, ok in zip(encoded, bank.flow_valid.tolist(), strict=True)]

    def target(job: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> np.ndarray:
        image, background, flow = job
        return grabcut_target(image, background, None if flow is None else decode_flow(flow))

    out = parallel_map(target, list(zip(frames, bgs, flows, strict=True)), "mask targets", "frame", progress)
    bank.targets = torch.from_numpy(np.stack(out))[:, None].contiguous()
    return float(bank.targets.float().mean())


def attach_flows(bank: FrameBank, per_seq: list[list[np.ndarray]], cache_dir: Path, progress: bool = True) -> float:
    """Compute (or load from ``cache_dir``) the encoded stabilised flow of every frame from ``per_seq`` (frames
    at :func:`background_size`), stored at the bank's size. Returns the fraction of frames with a valid flow."""
    from inpaintseg.data.flow import FlowCache

    h, w = bank.frames.shape[-2:]
    cache = FlowCache(cache_dir, (w, h))
    flows, valid = [], []
    for name, frames in zip(bank.sequence_names, per_seq, strict=True):
        f, v = cache.sequence(name, frames, progress=progress)
        flows.append(f)
        valid.append(v)
    bank.flows = torch.from_numpy(np.concatenate(flows)).permute(0, 3, 1, 2).contiguous()
    bank.flow_valid = torch.from_numpy(np.concatenate(valid))
    return float(bank.flow_valid.float().mean())
