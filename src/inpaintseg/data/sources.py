"""One way to open any input: a DAVIS root, a folder of images, nested image folders, a video, a folder of
videos, or a single image.

``open_source(path)`` returns a :class:`Source`: a list of :class:`Sequence` objects, each an ordered list
of frames. Every frame comes out as an RGB ``uint8`` array of shape (H, W, 3) in pixel coordinates
(row 0 = top), downscaled so that ``max(H, W) <= max_side``. Frames of one folder may have different
sizes; each keeps its own.

Kinds (``Source.kind``):

- ``"davis"``: ``<root>/JPEGImages/<seq>/<frame>.jpg|png`` with optional ground truth
  ``<root>/Annotations/<seq>/<frame>.png`` matched by frame name. Pointing at the ``JPEGImages`` folder
  itself works too (Annotations is then looked up next to it). A DAVIS 2017 style resolution level
  (``JPEGImages/480p/<seq>``) is followed when it is the only way down.
- ``"images"``: a folder of images (one sequence named after the folder), a folder whose subfolders hold
  images (one sequence per subfolder, sorted), or a single image file (one sequence named after the file's
  parent folder, or the file stem when it has none, with one frame).
- ``"video"``: one video file (PyAV); one sequence named by the file stem, frames ``00000``, ``00001``, ...
- ``"videos"``: a folder of video files, one sequence per video.

Names are sorted in natural order (``frame2`` before ``frame10``); hidden files (``.name``) are ignored.

Ground-truth masks (``Sequence.read_mask``) exist only for evaluation: they must NEVER be used for
training. The method is self-supervised; nothing in training may read them.

Errors: every problem with the input raises :class:`~inpaintseg.errors.DataError` naming the path. With
``on_error="skip"``, iterating skips frames that cannot be decoded and records ``(path, problem)`` in
``Source.skipped``; ``Sequence.read(i)`` always raises for a bad frame.
"""

from __future__ import annotations

import collections.abc as cabc
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from inpaintseg.data.image_io import IMAGE_SUFFIXES, read_image
from inpaintseg.data.image_io import read_mask as _read_mask_file
from inpaintseg.errors import ConfigError, DataError, InpaintsegError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
ON_ERROR_CHOICES = ("raise", "skip")

__all__ = [
    "VIDEO_SUFFIXES",
    "Frame",
    "ImageSequence",
    "Sequence",
    "Source",
    "natural_key",
    "open_source",
    "split_sequences",
]


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    ``image`` is RGB uint8 (H, W, 3). ``index`` is the frame's position within its sequence (so
    ``seq.frame_names[index] == name``); after skipped frames the indices have gaps.
    """

    sequence: str
    name: str
    index: int
    image: np.ndarray = field(repr=False)


def natural_key(name: str) -> tuple:
    """Sort key putting ``img2`` before ``img10``: digit runs compare as numbers, text case-insensitively."""
    parts = re.split(r"(\d+)", name)
    key = tuple(int(p) if k % 2 else p.lower() for k, p in enumerate(parts))
    return (key, name)


def _fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so that max side <= max_side (same rule as ``image_io.read_image``)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR_CHOICES:
        raise ConfigError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")


class Sequence:
    """An ordered list of frames with a name.

    Attributes: ``name``, ``frame_names`` (one per frame, without suffix), ``has_masks`` (ground truth
    present; evaluation only), ``fps`` (videos only, else None), ``path`` (the folder or video file).
    """

    name: str
    path: Path
    has_masks: bool = False
    fps: float | None = None

    def __init__(self, name: str, path: Path, on_error: str, skipped: list[tuple[str, str]]) -> None:
        _check_on_error(on_error)
        self.name = name
        self.path = path
        self.on_error = on_error
        self._skipped = skipped

    @property
    def frame_names(self) -> list[str]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.frame_names)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.name!r}, {len(self)} frames, path={str(self.path)!r})"

    def _check_index(self, i: int) -> None:
        if not 0 <= i < len(self):
            raise IndexError(f"frame index {i} out of range for sequence {self.name!r} ({len(self)} frames)")

    def read(self, i: int) -> np.ndarray:
        """Frame i as RGB uint8 (H, W, 3). Raises DataError naming the file if it cannot be decoded."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        """All frames in order, one at a time (constant memory)."""
        raise NotImplementedError

    def read_mask(self, i: int) -> np.ndarray | None:
        """Ground truth of frame i as uint8 (H, W) values/labels, or None. Evaluation only, not training."""
        self._check_index(i)
        return None

    def _record(self, path: str | Path, problem: str) -> None:
        self._skipped.append((str(path), problem))


class ImageSequence(Sequence):
    """A sequence stored as one image file per frame.

    ``paths[i]`` is the file of frame i; ``mask_dir`` (or None) holds ground-truth PNGs matched by frame
    name. ``max_side`` downscales frames (and masks, with nearest neighbour) so max(H, W) <= max_side.
    """

    def __init__(
        self,
        name: str,
        paths: list[Path],
        *,
        mask_dir: Path | None = None,
        max_side: int | None = 4096,
        on_error: str = "raise",
        skipped: list[tuple[str, str]] | None = None,
        path: Path | None = None,
    ) -> None:
        if not paths:
            raise DataError(path or name, "sequence has no image files")
        super().__init__(name, path or paths[0].parent, on_error, [] if skipped is None else skipped)
        self.paths = list(paths)
        self._names = [p.stem for p in self.paths]
        _check_unique_names(self.path, self._names)
        self.max_side = max_side
        self.mask_dir = mask_dir if mask_dir is not None and mask_dir.is_dir() else None
        self.has_masks = self.mask_dir is not None
        self._mask_paths = _index_by_stem(_list_files(self.mask_dir, IMAGE_SUFFIXES)) if self.mask_dir else {}

    @property
    def frame_names(self) -> list[str]:
        return self._names

    def read(self, i: int) -> np.ndarray:
        self._check_index(i)
        return read_image(self.paths[i], max_side=self.max_side)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            try:
                image = self.read(i)
            except DataError as e:
                if self.on_error == "raise":
                    raise
                self._record(e.path, e.problem)
                continue
            yield Frame(self.name, self._names[i], i, image)

    def mask_path(self, i: int) -> Path | None:
        """The ground-truth file for frame i, or None."""
        self._check_index(i)
        return self._mask_paths.get(self._names[i])

    def read_mask(self, i: int) -> np.ndarray | None:
        path = self.mask_path(i)
        if path is None:
            return None
        mask = _read_mask_file(path)
        h, w = mask.shape
        new_w, new_h = _fit_size(w, h, self.max_side)
        if (new_w, new_h) != (w, h):
            mask = cv2.resize(mask, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
        return mask


class Source:
    """An opened input: ``kind`` ("davis" | "images" | "video" | "videos"), ``root`` and ``sequences``.

    Iterating yields every frame of every sequence in order. ``skipped`` collects ``(path, problem)`` of
    frames and files left out with ``on_error="skip"`` (shared with subsets). ``has_masks`` sequences carry
    ground truth for evaluation only; it must never be used for training.
    """

    def __init__(
        self,
        root: Path,
        kind: str,
        sequences: list[Sequence],
        skipped: list[tuple[str, str]] | None = None,
    ) -> None:
        self.root = root
        self.kind = kind
        self.sequences = list(sequences)
        self.skipped: list[tuple[str, str]] = [] if skipped is None else skipped
        _check_unique_names(root, [s.name for s in self.sequences], what="sequence")

    def __repr__(self) -> str:
        return f"Source({self.kind!r}, {str(self.root)!r}, {len(self.sequences)} sequences)"

    def __iter__(self) -> Iterator[Frame]:
        for seq in self.sequences:
            yield from seq

    @property
    def names(self) -> list[str]:
        """Sequence names in order."""
        return [s.name for s in self.sequences]

    def num_frames(self) -> int:
        """Total number of frames over all sequences (counted without decoding)."""
        return sum(len(s) for s in self.sequences)

    def sequence(self, name: str) -> Sequence:
        """The sequence called ``name``; DataError naming the root if there is none."""
        for seq in self.sequences:
            if seq.name == name:
                return seq
        raise DataError(self.root, f"no sequence named {name!r} (have: {', '.join(self.names)})")

    def subset(self, names: Iterable[str]) -> Source:
        """A Source with only the named sequences, in this source's order (``skipped`` is shared)."""
        wanted = set(names)
        for name in wanted:
            self.sequence(name)  # raises for unknown names
        return Source(self.root, self.kind, [s for s in self.sequences if s.name in wanted], self.skipped)


# -- discovery --------------------------------------------------------------------------------------------


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Visible files in ``folder`` with one of ``suffixes`` (case-insensitive), natural order."""
    files = [p for p in folder.iterdir() if _visible(p) and p.is_file() and p.suffix.lower() in suffixes]
    return sorted(files, key=lambda p: natural_key(p.name))


def _list_dirs(folder: Path) -> list[Path]:
    dirs = [p for p in folder.iterdir() if _visible(p) and p.is_dir()]
    return sorted(dirs, key=lambda p: natural_key(p.name))


def _index_by_stem(paths: list[Path]) -> dict[str, Path]:
    return {p.stem: p for p in paths}


def _check_unique_names(where: Path, names: list[str], what: str = "frame") -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(where, f"two {what}s are named {name!r} (e.g. same stem, different suffix)")
        seen.add(name)


def _image_dirs(folder: Path) -> list[Path]:
    """Subfolders of ``folder`` that directly hold image files."""
    return [d for d in _list_dirs(folder) if _list_files(d, IMAGE_SUFFIXES)]


def _davis_levels(jpeg_dir: Path, ann_dir: Path) -> tuple[Path, Path]:
    """Follow a single resolution level (e.g. JPEGImages/480p/<seq>) when sequences are not directly below."""
    if _image_dirs(jpeg_dir):
        return jpeg_dir, ann_dir
    subdirs = [d for d in _list_dirs(jpeg_dir) if _image_dirs(d)]
    if len(subdirs) == 1:
        return subdirs[0], ann_dir / subdirs[0].name
    if len(subdirs) > 1:
        names = ", ".join(d.name for d in subdirs)
        raise DataError(jpeg_dir, f"several resolution folders ({names}); point at one of them")
    raise DataError(jpeg_dir, "no sequence folders with images (expected JPEGImages/<sequence>/*.jpg)")


def _open_davis(path: Path, jpeg_dir: Path, ann_dir: Path, max_side: int | None, on_error: str) -> Source:
    jpeg_dir, ann_dir = _davis_levels(jpeg_dir, ann_dir)
    skipped: list[tuple[str, str]] = []
    sequences: list[Sequence] = [
        ImageSequence(
            d.name,
            _list_files(d, IMAGE_SUFFIXES),
            mask_dir=ann_dir / d.name,
            max_side=max_side,
            on_error=on_error,
            skipped=skipped,
            path=d,
        )
        for d in _image_dirs(jpeg_dir)
    ]
    return Source(path, "davis", sequences, skipped)


def _open_videos(root: Path, kind: str, files: list[Path], max_side: int | None, on_error: str) -> Source:
    from inpaintseg.video import VideoSequence  # video.py builds on this module's Sequence

    skipped: list[tuple[str, str]] = []
    sequences: list[Sequence] = []
    for f in files:
        try:
            sequences.append(VideoSequence(f, max_side=max_side, on_error=on_error, skipped=skipped))
        except DataError as e:
            if on_error == "raise":
                raise
            skipped.append((e.path, e.problem))
    if not sequences:
        raise DataError(root, "no readable video file")
    return Source(root, kind, sequences, skipped)


def _open_folder(path: Path, max_side: int | None, on_error: str) -> Source:
    entries = [p for p in path.iterdir() if _visible(p)]
    if not entries:
        raise DataError(path, "folder is empty")
    images = _list_files(path, IMAGE_SUFFIXES)
    videos = _list_files(path, VIDEO_SUFFIXES)
    subdirs = _image_dirs(path)
    if videos and (images or subdirs):
        raise DataError(path, "folder mixes videos and images; point at the videos or the images")
    if videos:
        return _open_videos(path, "videos", videos, max_side, on_error)
    skipped: list[tuple[str, str]] = []
    sequences: list[Sequence] = []
    if images:
        sequences.append(
            ImageSequence(
                path.name or "images",
                images,
                max_side=max_side,
                on_error=on_error,
                skipped=skipped,
                path=path,
            )
        )
    for d in subdirs:
        files = _list_files(d, IMAGE_SUFFIXES)
        sequences.append(
            ImageSequence(d.name, files, max_side=max_side, on_error=on_error, skipped=skipped, path=d)
        )
    if not sequences:
        raise DataError(
            path,
            "no images or videos found (looked for "
            f"{' '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)} here and images one folder down)",
        )
    return Source(path, "images", sequences, skipped)


def open_source(path: str | Path, on_error: str = "raise", max_side: int | None = 4096) -> Source:
    """Open any supported input (see the module docstring) as a :class:`Source`.

    Args:
        path: DAVIS root or its JPEGImages folder, image folder, folder of image folders, video file,
            folder of videos, or single image file.
        on_error: "raise" (default) or "skip": skip undecodable frames (and unopenable videos in a folder)
            while iterating, recording ``(path, problem)`` in ``Source.skipped``.
        max_side: frames (and masks) are downscaled so max(H, W) <= max_side; None keeps full size.

    Raises:
        DataError: the path does not exist, is empty, holds no images/videos, or a file cannot be read.
    """
    _check_on_error(on_error)
    if max_side is not None and max_side < 1:
        raise ConfigError(f"max_side must be a positive integer or None, got {max_side!r}")
    path = Path(path)
    if not path.exists():
        raise DataError(path, "path does not exist")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return _open_videos(path, "video", [path], max_side, on_error)
        if suffix in IMAGE_SUFFIXES:
            name = path.resolve().parent.name or path.stem
            seq = ImageSequence(name, [path], max_side=max_side, on_error=on_error, path=path)
            return Source(path, "images", [seq], seq._skipped)
        raise DataError(path, f"not an image or video file (suffix {path.suffix or 'none'!r})")
    if not path.is_dir():
        raise DataError(path, "not a file or folder")
    if (path / "JPEGImages").is_dir():
        return _open_davis(path, path / "JPEGImages", path / "Annotations", max_side, on_error)
    if path.name == "JPEGImages":
        return _open_davis(path, path, path.parent / "Annotations", max_side, on_error)
    return _open_folder(path, max_side, on_error)


def split_sequences(
    names: cabc.Sequence[str], val_fraction: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split sequence names into (train, val), deterministically and BY SEQUENCE.

    Frames of one sequence never end up on both sides. The result depends only on the set of names and
    ``seed`` (not on their order). val gets ``round(val_fraction * n)`` names, at least 1 when
    ``val_fraction > 0`` and n >= 2, and train always keeps at least one. Both lists are in natural order.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1], got {val_fraction!r}")
    unique = sorted(set(names), key=natural_key)
    if len(unique) != len(names):
        raise InpaintsegError("split_sequences: sequence names must be unique")
    n = len(unique)
    if n == 0:
        raise InpaintsegError("split_sequences: no sequences to split")
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val_set = {unique[k] for k in order[:n_val]}
    train = [s for s in unique if s not in val_set]
    val = [s for s in unique if s in val_set]
    return train, val
