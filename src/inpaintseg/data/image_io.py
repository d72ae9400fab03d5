"""Reading and writing single images and masks, with clear errors naming the file.

Frames come out as RGB ``uint8`` arrays of shape (H, W, 3). Grayscale, palette, RGBA and 16-bit
images are converted. Masks come out as 2-D ``uint8`` arrays (H, W) holding the file's values
(DAVIS 2016: 0/255; multi-object: one label per object; predictions: 0..255 = probability).
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from inpaintseg.errors import DataError
from inpaintseg.io import atomic_write_bytes

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# Images larger than this many pixels are refused by PIL as a decompression bomb; we downscale
# instead, so a huge photo neither exhausts memory nor fails.
MAX_PIXELS = 8192 * 8192


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise DataError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty (0 bytes)")
    try:
        im = Image.open(path)
        if im.width * im.height > MAX_PIXELS:
            im.draft("RGB", (im.width // 4, im.height // 4))  # JPEG: decode at reduced size
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(path, f"cannot decode image ({e.__class__.__name__}: {e})") from None
    return im


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        top = 65535 if arr.max(initial=0) > 255 else 255
        return (arr.astype(np.float64) * (255.0 / top)).round().astype(np.uint8)
    return (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def image_to_rgb(im: Image.Image) -> np.ndarray:
    """Convert any PIL image to an RGB uint8 array (H, W, 3)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = _to_uint8(np.asarray(im))
        return np.repeat(arr[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        rgba = np.asarray(im).astype(np.float32)
        alpha = rgba[..., 3:4] / 255.0  # composite on black
        return (rgba[..., :3] * alpha).round().astype(np.uint8)
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def read_image(path: str | Path, max_side: int | None = 4096) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); downscale so that max(H, W) <= max_side."""
    path = Path(path)
    im = _open(path)
    if max_side is not None and max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    return image_to_rgb(im)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask PNG as a 2-D uint8 array of its values (palette indices kept as labels)."""
    path = Path(path)
    im = _open(path)
    if im.mode == "P":
        return np.asarray(im).astype(np.uint8)
    if im.mode in ("RGB", "RGBA"):
        return np.asarray(im.convert("L"))
    return _to_uint8(np.asarray(im)) if im.mode != "L" else np.asarray(im)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically."""
    if array.dtype != np.uint8:
        raise ValueError(f"write_png expects uint8, got {array.dtype}")
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def write_jpeg(path: str | Path, array: np.ndarray, quality: int = 92) -> None:
    """Write an RGB uint8 (H, W, 3) array as JPEG, atomically."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    atomic_write_bytes(path, buf.getvalue())


def resize_image(image: np.ndarray, size: tuple[int, int], interpolation: int | None = None) -> np.ndarray:
    """``image`` (H,W[,C]) resized to ``size`` = (W, H); returned as is when it already has that size.
    ``interpolation`` is an OpenCV flag; None = area when shrinking (no aliasing), bilinear when enlarging."""
    w, h = int(size[0]), int(size[1])
    if image.shape[1] == w and image.shape[0] == h:
        return image
    if interpolation is None:
        shrink = image.shape[1] > w or image.shape[0] > h
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interpolation)
