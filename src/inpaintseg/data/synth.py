"""Synthetic benchmark: walking figures filmed by a static, PTZ or handheld camera over a seamless world.

The method finds a moving person because a person cannot be inpainted from its surroundings while the
background can. This benchmark is where learning is proven first, so the *background* is built to be
predictable from its surroundings: a world panorama of real photos and textures shipped with
scikit-image plus procedural sky and noise, joined with wide smooth alpha ramps after matching their
mean colour and contrast (no hard pasted edges, which a detector would learn to find instead of people).

Coordinate frames:
- world: panorama pixels (x right, y down), panorama of shape (PH, PW) with PW ~ 2.6 W, PH ~ 1.8 H;
- frame: output image pixels (x right, y down), shape (H, W);
- body: a figure's own units, height 1, origin on the ground between its feet, y down.
A frame's homography (3x3, float64) maps world pixel coordinates to frame pixel coordinates.

Output (DAVIS layout)::

    out/JPEGImages/seq000/00000.jpg    RGB, JPEG quality 95
    out/Annotations/seq000/00000.png   uint8: 0 background; 255 the figure (figures=1) or 1..n
    out/meta.json                      {"camera", "size": [W, H], "seed", "figures", "sequences": {name:
                                        {"frames": [{"name", "camera": 3x3 world->frame, "boxes":
                                        [[x0, y0, x1, y1], ...]}]}}}   (boxes: inclusive-exclusive pixels)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from inpaintseg.data.image_io import read_image, write_jpeg, write_png
from inpaintseg.errors import DataError, InpaintsegError
from inpaintseg.io import atomic_write_text

CAMERAS = ("static", "ptz", "handheld")
MAX_FIGURES = 4
MIN_AREA, MAX_AREA = 0.02, 0.30  # figure area as a fraction of the frame, enforced in every frame
JPEG_QUALITY = 95

# Panorama size relative to the frame.
WORLD_W, WORLD_H = 2.6, 1.8
# Figure planning: the widest half-extent of a figure in any pose, in body heights (measured 0.28).
HALF_WIDTH = 0.29
# Smallest figure area / height^2 over poses and builds (measured 0.124, largest 0.22); picks heights.
AREA_PER_H2 = 0.12

# scikit-image's bundled files (no download). Photos showing people (astronaut, camera) are left out: a
# static person in the background would be an unannotated "person" the detector is right to find.
GROUND_SOURCES = ("grass.png", "gravel.png", "brick.png", "moon.png", "ihc.png")
FAR_SOURCES = ("motorcycle_left.png", "rocket.jpg", "coffee.png", "brick.png", "ihc.png")
SIGN_SOURCES = ("page.png", "text.png")

GROUND_TINTS = (  # linear-ish RGB in [0, 1]; scaled to the ground's luminance
    (0.36, 0.46, 0.22),  # grass
    (0.47, 0.40, 0.31),  # dirt
    (0.45, 0.45, 0.44),  # pavement
    (0.58, 0.53, 0.41),  # sand
    (0.50, 0.47, 0.30),  # dry grass
)
SKIES = (  # (zenith, horizon)
    ((0.30, 0.50, 0.85), (0.75, 0.84, 0.93)),  # clear
    ((0.55, 0.58, 0.63), (0.80, 0.81, 0.82)),  # overcast
    ((0.35, 0.42, 0.65), (0.93, 0.75, 0.55)),  # evening
    ((0.42, 0.60, 0.82), (0.86, 0.89, 0.90)),  # hazy
)


# ----------------------------------------------------------------------------------------------------
# small helpers


def _fractal_noise(
    rng: np.random.Generator, shape: tuple[int, int], beta: float = 2.0, cutoff: float | None = None
) -> np.ndarray:
    """Zero-mean unit-std noise with power spectrum ~ 1/f^beta, periodic in both axes. float32 (h, w)."""
    h, w = shape
    spec = np.fft.rfft2(rng.standard_normal((h, w)))
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    if cutoff is not None:
        amp *= np.exp(-((f / cutoff) ** 2))
    out = np.fft.irfft2(spec * amp, s=(h, w))
    out -= out.mean()
    out /= out.std() + 1e-12
    return out.astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _ramp(x: np.ndarray, width: float) -> np.ndarray:
    """Smooth 0 -> 1 transition around x = 0 over ~``width`` (10%-90%); a hard step when width is 0."""
    if width <= 0:
        return (np.asarray(x) > 0).astype(np.float32)
    return _sigmoid(np.asarray(x) * (4.4 / width))


def _smooth_signal(rng: np.random.Generator, t: np.ndarray, periods: tuple[float, float], n: int = 3) -> np.ndarray:
    """Sum of n random sinusoids with periods (frames) in the given range; roughly unit amplitude. (T,)"""
    out = np.zeros(len(t))
    for _ in range(n):
        period = rng.uniform(*periods)
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return out / math.sqrt(n / 2.0)


def _jitter(rng: np.random.Generator, n: int, sigma: float = 0.8) -> np.ndarray:
    """High-frequency camera jitter: white noise blurred over ~sigma frames, unit std. (n,)"""
    x = rng.standard_normal(n + 8)
    k = np.exp(-0.5 * (np.arange(-3, 4) / sigma) ** 2)
    y = np.convolve(x, k / k.sum(), mode="same")[4 : 4 + n]
    return y / (y.std() + 1e-9) if n > 1 else y


@lru_cache(maxsize=32)
def _source(name: str) -> np.ndarray | None:
    """A scikit-image data file as float32 RGB (h, w, 3) in [0, 1], or None when it is not installed."""
    try:
        from skimage import data as skdata

        img = read_image(os.path.join(skdata.data_dir, name), max_side=640)
    except (ImportError, DataError, OSError):
        return None
    img = img.astype(np.float32) / 255.0
    img.setflags(write=False)
    return img


def _available(names: tuple[str, ...]) -> list[str]:
    return [n for n in names if _source(n) is not None]


def _match(img: np.ndarray, mean_rgb: np.ndarray, contrast: float) -> np.ndarray:
    """Give img (h, w, 3) float the given mean colour and a relative luminance std of ``contrast``."""
    mu = img.reshape(-1, 3).mean(axis=0)
    sd = float(img.mean(axis=2).std()) + 1e-6
    return (mean_rgb * (1.0 + (img - mu) * (contrast / sd))).astype(np.float32)


def _colour_at(base: np.ndarray, lum: float) -> np.ndarray:
    """Scale an RGB colour to a given mean."""
    base = np.asarray(base, dtype=np.float32)
    return base * (lum / float(base.mean()))


def _tile_to(img: np.ndarray, h: int, w: int, x0: int = 0) -> np.ndarray:
    """Mirror-tile img to at least (h, w) and crop (h, w) starting at column x0 (mirror padding: no seam)."""
    reps_y = h // img.shape[0] + 1
    reps_x = (w + x0) // img.shape[1] + 2
    rows = [img if i % 2 == 0 else img[::-1] for i in range(reps_y)]
    col = np.concatenate(rows, axis=0)
    cols = [col if i % 2 == 0 else col[:, ::-1] for i in range(reps_x)]
    return np.concatenate(cols, axis=1)[:h, x0 : x0 + w]


# ----------------------------------------------------------------------------------------------------
# the world panorama


@dataclass
class Flag:
    """A flag on a pole. Anchor is the pole top in world pixels; length/height in world pixels."""

    anchor: tuple[float, float]
    length: float
    height: float
    direction: float  # +1 flies to the right, -1 to the left
    colours: tuple[np.ndarray, np.ndarray]
    phase: float
    speed: float  # radians per frame of the travelling wave


@dataclass
class World:
    """A background world.

    image: (PH, PW, 3) float32 RGB in [0, 1], the static panorama (world pixels).
    horizon: world row of the horizon. ground_offset: perspective parameter (rows below the horizon
        where the ground plane's depth factor is 1 / (1 + (PH - horizon) / ground_offset)).
    sky: (PH, PW) float32 in [0, 1], where drifting clouds are visible (sky not hidden by objects).
    objects: (PH, PW) float32 in [0, 1], opacity of the static objects drawn into the panorama.
    clouds: (PH, PW) float32 cloud opacity, periodic in x; at frame t it is shifted by wind * t.
    seams: blend boundaries, each (PH,) float64 world columns per row (NaN where the row has none).
    """

    image: np.ndarray
    horizon: float
    ground_offset: float
    sky: np.ndarray
    objects: np.ndarray
    clouds: np.ndarray
    cloud_colour: np.ndarray
    wind: float
    flags: list[Flag] = field(default_factory=list)
    seams: list[np.ndarray] = field(default_factory=list)


def make_world(rng: np.random.Generator, size: tuple[int, int], blend: float = 1.0) -> World:
    """Build one background world for frames of ``size`` = (W, H): sky, far band, ground, objects.

    blend scales the width of every alpha ramp joining two sources; 0 gives hard pastes (for tests that
    check the seam detector). It does not change which random numbers are drawn.
    """
    w, h = size
    pw, ph = int(round(WORLD_W * w)), int(round(WORLD_H * h))
    horizon = ph * rng.uniform(0.37, 0.43)
    zenith, horizon_sky = (np.array(c, np.float32) for c in SKIES[rng.integers(len(SKIES))])
    sky_gain = rng.uniform(0.9, 1.05)
    ground_lum = rng.uniform(0.30, 0.48)
    haze = horizon_sky * sky_gain

    sky = _make_sky(rng, ph, pw, horizon, zenith * sky_gain, haze)
    ground, ground_offset, ground_seams = _make_ground(rng, ph, pw, horizon, ground_lum, haze, blend)
    far, band_top, band_seams = _make_far_band(rng, ph, pw, horizon, ground_lum, haze, blend)

    rows = np.arange(ph, dtype=np.float32)[:, None]
    ramp_bottom = max(3.0, 0.04 * ph)  # far band fading into the ground (wide, smooth)
    a_far = 1.0 - _ramp(rows - horizon - 0.6 * ramp_bottom, 0.55 * ramp_bottom * blend)
    a_far = np.broadcast_to(a_far, (ph, pw))
    ramp_top = max(2.0, 0.012 * ph)  # soft silhouette of the far band against the sky
    a_sky = 1.0 - _ramp(rows - band_top[None, :], 2.2 * ramp_top * blend)

    img = ground * (1.0 - a_far[..., None]) + far * a_far[..., None]
    img = img * (1.0 - a_sky[..., None]) + sky * a_sky[..., None]
    # low-frequency illumination (cloud shadows, uneven light): hides any residual brightness steps
    light = 1.0 + 0.08 * _fractal_noise(rng, (ph, pw), beta=3.5)
    img = img * light[..., None]

    occluder = np.zeros((ph, pw), np.float32)
    flags = _draw_objects(rng, img, occluder, horizon, ground_offset, h)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)

    cloud_noise = _fractal_noise(rng, (ph, pw), beta=3.0)
    clouds = np.clip((cloud_noise - rng.uniform(0.0, 0.6)) * 0.6, 0.0, 1.0) * rng.uniform(0.35, 0.6)
    sky_vis = a_sky * (1.0 - occluder)
    cloud_colour = np.clip(0.25 * haze + 0.75 * np.float32(rng.uniform(0.85, 1.0)), 0, 1)
    wind = float(rng.uniform(0.3, 1.0) * w / 320.0 * rng.choice([-1.0, 1.0]))
    for flag in flags:
        flag.direction = -1.0 if wind < 0 else 1.0
    return World(
        image=img,
        horizon=float(horizon),
        ground_offset=ground_offset,
        sky=sky_vis.astype(np.float32),
        objects=occluder,
        clouds=clouds.astype(np.float32),
        cloud_colour=cloud_colour.astype(np.float32),
        wind=wind,
        flags=flags,
        seams=ground_seams + band_seams,
    )


def _make_sky(
    rng: np.random.Generator, ph: int, pw: int, horizon: float, zenith: np.ndarray, haze: np.ndarray
) -> np.ndarray:
    """Vertical gradient from zenith to horizon haze with faint static clouds. (ph, pw, 3) float32."""
    y = np.clip(np.arange(ph, dtype=np.float32) / horizon, 0.0, 1.0) ** 0.7
    sky = zenith[None, None, :] * (1 - y)[:, None, None] + haze[None, None, :] * y[:, None, None]
    sky = np.broadcast_to(sky, (ph, pw, 3))
    wisps = np.clip(_fractal_noise(rng, (ph, pw), beta=2.6) * 0.25, 0.0, 1.0)[..., None] * rng.uniform(0.2, 0.6)
    return (sky * (1 - wisps) + 0.95 * wisps).astype(np.float32)


def _ground_texture(rng: np.random.Generator, name: str, lum: float) -> np.ndarray:
    """A colour- and brightness-matched ground texture, (h, w, 3) float32."""
    tint = _colour_at(GROUND_TINTS[rng.integers(len(GROUND_TINTS))], lum)
    if name == "procedural":
        tex = np.repeat(_fractal_noise(rng, (256, 256), beta=1.6)[..., None], 3, axis=2)
    else:
        tex = np.array(_source(name))
        if name == "grass.png":
            tint = _colour_at(GROUND_TINTS[0], lum)
        if name == "ihc.png":  # a colour image: keep half of its own colour
            tint = 0.5 * tint + 0.5 * _colour_at(tex.reshape(-1, 3).mean(axis=0), lum)
    tex = _match(tex, tint, rng.uniform(0.15, 0.3))
    return cv2.GaussianBlur(tex, (0, 0), 0.5)


def _make_ground(
    rng: np.random.Generator, ph: int, pw: int, horizon: float, lum: float, haze: np.ndarray, blend: float
) -> tuple[np.ndarray, float, list[np.ndarray]]:
    """A ground plane in perspective: 2-3 textures joined along converging lines with wide ramps.

    Returns (image (ph, pw, 3) float32, ground_offset, seams).
    """
    depth_rows = ph - horizon
    offset = 0.55 * depth_rows  # depth factor at the horizon ~0.35 (texture at most ~2.8x compressed)
    y = np.arange(ph, dtype=np.float32)
    d = (np.maximum(y, horizon) - horizon + offset) / (depth_rows + offset)  # (ph,)
    x = np.arange(pw, dtype=np.float32)
    scale = rng.uniform(0.55, 1.0)  # texture pixels per world pixel at the bottom row
    u = (x[None, :] - pw / 2) / d[:, None]  # ground-plane coordinates in world pixels at the bottom row
    v = np.broadcast_to(((depth_rows + offset) / d)[:, None], (ph, pw))
    sources = _available(GROUND_SOURCES) + ["procedural"]
    n_layers = int(rng.integers(2, 4))
    names = [sources[i] for i in rng.choice(len(sources), size=n_layers, replace=n_layers > len(sources))]
    # boundaries on the ground plane (u at the bottom row), converging to the vanishing point
    span = pw / d.min()
    bounds = np.sort(rng.uniform(-0.3, 0.3, size=n_layers - 1)) * pw
    bounds += np.arange(n_layers - 1) * 0.25 * pw - (n_layers - 2) * 0.125 * pw
    ramp = rng.uniform(0.18, 0.28) * pw
    # boundaries meander gently with depth (non-periodic: first half of a periodic noise; small slope)
    wobble = _fractal_noise(rng, (1, 2 * ph), beta=4.0)[0][:ph, None] * 0.08 * ramp
    out = None
    seams = []
    for i, name in enumerate(names):
        tex = _ground_texture(rng, name, lum)
        th, tw = tex.shape[:2]
        ox, oy = rng.uniform(0, span), rng.uniform(0, 4 * th)
        map_x = (u * scale + ox).astype(np.float32)
        map_y = (v * scale + oy).astype(np.float32)
        layer = cv2.remap(tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        blurred = cv2.remap(
            cv2.GaussianBlur(tex, (0, 0), 1.2), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        far = np.clip((1.0 / d - 1.0) / 1.2, 0.0, 1.0)[:, None, None]  # anti-alias toward the horizon
        layer = layer * (1 - far) + blurred * far
        if out is None:
            out = layer
            continue
        b = bounds[i - 1]
        alpha = _ramp(u - b + wobble, 1.1 * ramp * blend)
        out = out * (1 - alpha[..., None]) + layer * alpha[..., None]
        seam = pw / 2 + (b - wobble[:, 0]) * d
        seam[y < horizon] = np.nan
        seams.append(seam.astype(np.float64))
    patch = 1.0 + 0.12 * _fractal_noise(rng, (ph, pw), beta=3.0)
    out = out * patch[..., None]
    fog = (np.clip(1.0 - (d - d.min()) / (1.0 - d.min()), 0, 1) ** 2 * rng.uniform(0.25, 0.5))[:, None, None]
    out = out * (1 - fog) + haze * fog
    return out.astype(np.float32), float(offset), seams


def _make_far_band(
    rng: np.random.Generator, ph: int, pw: int, horizon: float, lum: float, haze: np.ndarray, blend: float
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Distant scenery (buildings, trees, walls) from photos, hazy. Returns (image, top row per column, seams)."""
    band_h = rng.uniform(0.10, 0.2) * ph
    top = horizon - band_h * (0.75 + 0.25 * _fractal_noise(rng, (1, pw), beta=2.2)[0])
    top = top.astype(np.float32)
    rows = int(math.ceil(horizon + 0.1 * ph))
    sources = _available(FAR_SOURCES) + ["procedural"]
    n = int(rng.integers(1, 3))
    names = [sources[i] for i in rng.choice(len(sources), size=n, replace=False)]
    band_lum = lum * rng.uniform(0.9, 1.2)
    layers = []
    for name in names:
        if name == "procedural":  # a dark tree line
            src = np.repeat(_fractal_noise(rng, (128, 256), beta=1.8)[..., None], 3, axis=2)
            colour = _colour_at((0.25, 0.33, 0.18), band_lum * 0.7)
        else:
            src = np.array(_source(name))
            sh, sw = src.shape[:2]
            ch = int(sh * rng.uniform(0.35, 0.7))
            cw = int(min(sw, ch * rng.uniform(1.5, 3.0)))
            y0, x0 = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
            src = src[y0 : y0 + ch, x0 : x0 + cw]
            colour = _colour_at(0.5 * src.reshape(-1, 3).mean(axis=0) + 0.5 * haze, band_lum)
        src = _match(src, colour, rng.uniform(0.2, 0.35))
        scale = 1.6 * band_h / src.shape[0]
        src = cv2.resize(src, (max(2, int(src.shape[1] * scale)), max(2, int(src.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
        band = _tile_to(src, rows, pw, int(rng.integers(0, src.shape[1])))
        full = np.empty((ph, pw, 3), np.float32)
        # the band's image runs from its lowest top edge down to the horizon; rows below repeat the last
        y_img = np.clip(np.arange(ph) - int(top.min()), 0, rows - 1)
        full[:] = band[y_img]
        layers.append(full)
    out = layers[0]
    seams = []
    if len(layers) == 2:
        c = rng.uniform(0.3, 0.7) * pw
        ramp = rng.uniform(0.12, 0.2) * pw
        alpha = _ramp(np.arange(pw, dtype=np.float32) - c, 1.1 * ramp * blend)[None, :, None]
        out = out * (1 - alpha) + layers[1] * alpha
        seam = np.full(ph, c)
        seam[(np.arange(ph) < top[int(c)] + 0.03 * ph) | (np.arange(ph) > horizon)] = np.nan
        seams.append(seam)
    fog = rng.uniform(0.25, 0.5)
    out = out * (1 - fog) + haze * fog
    return out.astype(np.float32), top, seams


def _blend_shape(img: np.ndarray, occluder: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Composite a shape (alpha (h, w) float32 in [0, 1], colour (h, w, 3) or (3,)) into img in place."""
    a = alpha[..., None]
    img *= 1.0 - a
    img += colour * a
    np.maximum(occluder, alpha, out=occluder)


def _draw_objects(
    rng: np.random.Generator, img: np.ndarray, occluder: np.ndarray, horizon: float, offset: float, frame_h: int
) -> list[Flag]:
    """Draw 3-6 static objects (poles, fences/gates, signs, flag poles) into img in place; return the flags.

    occluder (PH, PW) float32 receives each object's opacity. Objects stand on the ground and are sized
    by the ground's depth factor at their base, ``frame_h`` world pixels being a person's height up close.
    """
    ph, pw = img.shape[:2]
    flags: list[Flag] = []
    for _ in range(int(rng.integers(3, 7))):
        kind = str(rng.choice(["pole", "fence", "sign", "flag"], p=[0.3, 0.3, 0.2, 0.2]))
        yb = rng.uniform(horizon + 0.05 * (ph - horizon), horizon + 0.45 * (ph - horizon))
        unit = frame_h * (yb - horizon + offset) / (ph - horizon + offset)  # a person's height there
        xb = rng.uniform(0.03, 0.97) * pw
        if kind in ("pole", "flag"):
            top = _draw_pole(rng, img, occluder, xb, yb, unit)
            if kind == "flag":
                hue = rng.choice([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.9, 0.8, 0.1], [0.1, 0.55, 0.2]], size=2)
                flags.append(Flag(
                    anchor=(float(xb), float(top)),
                    length=float(unit * rng.uniform(0.3, 0.45)),
                    height=float(unit * rng.uniform(0.18, 0.26)),
                    direction=1.0,
                    colours=(np.array(hue[0], np.float32), np.array(hue[1], np.float32)),
                    phase=float(rng.uniform(0, 2 * np.pi)),
                    speed=float(rng.uniform(0.25, 0.5)),
                ))
        elif kind == "fence":
            _draw_fence(rng, img, occluder, xb, yb, unit)
        else:
            _draw_sign(rng, img, occluder, xb, yb, unit)
    return flags


def _p16(p: tuple[float, float]) -> tuple[int, int]:
    """A point in OpenCV's fixed-point format for shift=4 (1/16 pixel)."""
    return int(round(p[0] * 16)), int(round(p[1] * 16))


def _draw_pole(rng: np.random.Generator, img: np.ndarray, occluder: np.ndarray, xb: float, yb: float,
               unit: float) -> float:
    """A shaded vertical pole standing at (xb, yb); returns its top row."""
    ph, pw = img.shape[:2]
    top = yb - unit * rng.uniform(1.0, 1.6)
    width = max(1.5, unit * rng.uniform(0.02, 0.035))
    alpha = np.zeros((ph, pw), np.uint8)
    pts = np.array([[xb - width / 2, top], [xb + width / 2, top], [xb + width / 2, yb], [xb - width / 2, yb]])
    cv2.fillPoly(alpha, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    base = np.array(rng.choice([[0.45, 0.45, 0.47], [0.2, 0.2, 0.22], [0.4, 0.3, 0.2]]), np.float32)
    xs = np.arange(pw, dtype=np.float32)[None, :]
    shade = 0.7 + 0.5 * np.clip(1 - np.abs(xs - xb + width * 0.2) / (width / 2 + 1e-3), 0, 1)  # cylinder
    _blend_shape(img, occluder, alpha.astype(np.float32) / 255, base * shade[..., None])
    return float(top + 0.5 * width)


def _draw_fence(rng: np.random.Generator, img: np.ndarray, occluder: np.ndarray, xb: float, yb: float,
                unit: float) -> None:
    """A fence (posts + two rails), sometimes a gate (with a diagonal brace), starting at (xb, yb)."""
    ph, pw = img.shape[:2]
    length = unit * rng.uniform(1.0, 3.0)
    post_h = unit * rng.uniform(0.45, 0.7)
    thick = max(1, int(round(max(1.5, unit * 0.025))))
    spacing = max(thick * 4, unit * rng.uniform(0.25, 0.5))
    segs = [((px, yb), (px, yb - post_h)) for px in np.arange(xb, xb + length + 1, spacing)]
    segs += [((xb, yb - post_h * f), (xb + length, yb - post_h * f)) for f in (0.35, 0.8)]
    if rng.random() < 0.4:
        segs.append(((xb, yb - post_h * 0.35), (xb + length, yb - post_h * 0.8)))
    alpha = np.zeros((ph, pw), np.uint8)
    for p, q in segs:
        cv2.line(alpha, _p16(p), _p16(q), 255, thick, cv2.LINE_AA, shift=4)
    base = np.array(rng.choice([[0.45, 0.33, 0.2], [0.85, 0.85, 0.82], [0.25, 0.27, 0.25]]), np.float32)
    colour = base * (1.0 + 0.1 * _fractal_noise(rng, (ph, pw), beta=1.5)[..., None])  # weathered
    _blend_shape(img, occluder, alpha.astype(np.float32) / 255, colour)


def _draw_sign(rng: np.random.Generator, img: np.ndarray, occluder: np.ndarray, xb: float, yb: float,
               unit: float) -> None:
    """A sign on a post at (xb, yb): a painted board with printed text (scikit-image's page/text)."""
    ph, pw = img.shape[:2]
    board_w, board_h = unit * rng.uniform(0.35, 0.6), unit * rng.uniform(0.2, 0.3)
    post_h = unit * rng.uniform(0.5, 0.8)
    post = np.zeros((ph, pw), np.uint8)
    cv2.line(post, _p16((xb, yb)), _p16((xb, yb - post_h)), 255, max(1, int(round(max(1.5, unit * 0.025)))),
             cv2.LINE_AA, shift=4)
    _blend_shape(img, occluder, post.astype(np.float32) / 255, np.array([0.3, 0.3, 0.3], np.float32))
    x0, y0 = xb - board_w / 2, yb - post_h - board_h
    board = np.zeros((ph, pw), np.uint8)
    pts = np.array([[x0, y0], [x0 + board_w, y0], [x0 + board_w, y0 + board_h], [x0, y0 + board_h]])
    cv2.fillPoly(board, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    paint = np.full((ph, pw, 3), rng.choice([[0.9, 0.9, 0.85], [0.15, 0.35, 0.7], [0.9, 0.75, 0.2]]), np.float32)
    names = _available(SIGN_SOURCES)
    if names:
        src = _source(names[int(rng.integers(len(names)))])
        ix0, iy0 = int(max(0, math.floor(x0))), int(max(0, math.floor(y0)))
        ix1, iy1 = int(min(pw, math.ceil(x0 + board_w))), int(min(ph, math.ceil(y0 + board_h)))
        if ix1 > ix0 + 1 and iy1 > iy0 + 1:
            printed = cv2.resize(src, (ix1 - ix0, iy1 - iy0), interpolation=cv2.INTER_AREA)
            paint[iy0:iy1, ix0:ix1] *= 0.35 + 0.65 * printed
    _blend_shape(img, occluder, board.astype(np.float32) / 255, paint)


# ----------------------------------------------------------------------------------------------------
# cameras


def _homography(cx: float, cy: float, zoom: float, roll: float, size: tuple[int, int]) -> np.ndarray:
    """World -> frame: centre (cx, cy) maps to the frame centre, scaled by zoom, rotated by roll (rad)."""
    w, h = size
    c, s = math.cos(roll), math.sin(roll)
    a = np.array([[zoom * c, -zoom * s, 0.0], [zoom * s, zoom * c, 0.0], [0.0, 0.0, 1.0]])
    t_in = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    t_out = np.array([[1.0, 0.0, w / 2.0], [0.0, 1.0, h / 2.0], [0.0, 0.0, 1.0]])
    return t_out @ a @ t_in


@dataclass
class _CameraPath:
    """Per-frame camera parameters. smooth_*: the operator's intended view; *: with shake added."""

    cx: np.ndarray
    cy: np.ndarray
    zoom: np.ndarray
    roll: np.ndarray
    smooth: list[np.ndarray]  # (3, 3) world -> frame without shake
    actual: list[np.ndarray]  # (3, 3) world -> frame as rendered


def _clamp_view(cx: np.ndarray, cy: np.ndarray, zoom: np.ndarray, world: World, size: tuple[int, int],
                margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the (slightly enlarged) view rectangle inside the panorama."""
    ph, pw = world.image.shape[:2]
    w, h = size
    hx = (w / 2 + margin) / zoom
    hy = (h / 2 + margin) / zoom
    return np.clip(cx, hx, pw - hx), np.clip(cy, hy, ph - hy)


def _plan_camera(
    rng: np.random.Generator, camera: str, world: World, size: tuple[int, int], frames: int, speed: float
) -> _CameraPath:
    """Camera parameters per frame. ``speed``: the figures' walking speed in frame pixels per frame."""
    w, h = size
    ph, pw = world.image.shape[:2]
    t = np.arange(frames, dtype=np.float64)
    horizon_frac = rng.uniform(0.33, 0.48)  # where the horizon appears in the frame
    margin = 0.06 * w
    if camera == "static":
        zoom = np.full(frames, rng.uniform(0.85, 1.2))
        cx = np.full(frames, pw / 2 + rng.uniform(-0.25, 0.25) * (pw - w / zoom[0]) / 2)
    elif camera == "handheld":
        zoom = rng.uniform(0.9, 1.15) * (1 + 0.03 * _smooth_signal(rng, t, (150, 400), 2))
        room = (pw - w / zoom.min()) / 2 - margin / zoom.min()
        drift = min(0.5 * room, rng.uniform(0.1, 0.3) * w)
        period = 2 * np.pi * drift / (rng.uniform(0.2, 0.45) * w / 320)  # slow: ~0.3 px/frame at 320 wide
        cx = pw / 2 + rng.uniform(-0.3, 0.3) * room + drift * np.sin(2 * np.pi * t / period + rng.uniform(0, 6.3))
    elif camera == "ptz":
        z_mid, z_amp = rng.uniform(0.95, 1.1), rng.uniform(0.1, 0.18)
        zoom = np.clip(z_mid + z_amp * np.sin(2 * np.pi * t / rng.uniform(80, 200) + rng.uniform(0, 6.3)), 0.8, 1.3)
        room = (pw - w / 0.8) / 2 - margin / 0.8
        amp = rng.uniform(0.6, 1.0) * room
        period = max(60.0, 2 * np.pi * amp / max(speed, 1e-3))  # the subject walks at ``speed``
        cx = pw / 2 + amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        cx = cx + 0.04 * w * _smooth_signal(rng, t, (40, 120), 2)  # operator's framing drifts
    else:  # pragma: no cover - validated by generate()
        raise InpaintsegError(f"unknown camera {camera!r}")
    cy = world.horizon + (0.5 - horizon_frac) * h / zoom
    if camera == "ptz":
        cy = cy + 0.05 * h * _smooth_signal(rng, t, (60, 160), 2)  # tilts
    cx, cy = _clamp_view(cx, cy, zoom, world, size, margin)
    smooth = [_homography(cx[i], cy[i], zoom[i], 0.0, size) for i in range(frames)]
    roll = np.zeros(frames)
    sx = sy = sz = np.zeros(frames)
    if camera == "handheld":
        roll = np.deg2rad(0.8 * _smooth_signal(rng, t, (15, 60)) + 0.25 * _jitter(rng, frames))
        sx = 0.012 * w * _smooth_signal(rng, t, (15, 60)) + 0.003 * w * _jitter(rng, frames)
        sy = 0.012 * w * _smooth_signal(rng, t, (15, 60)) + 0.003 * w * _jitter(rng, frames)
        sz = 0.01 * _smooth_signal(rng, t, (20, 70))
    actual = [
        _homography(cx[i] + sx[i] / zoom[i], cy[i] + sy[i] / zoom[i], zoom[i] * (1 + sz[i]), roll[i], size)
        for i in range(frames)
    ]
    return _CameraPath(cx=cx, cy=cy, zoom=zoom, roll=roll, smooth=smooth, actual=actual)


# ----------------------------------------------------------------------------------------------------
# figures


@dataclass
class _Look:
    """A figure's clothing and build. Colours are RGB float32 in [0, 1]."""

    shirt: np.ndarray
    shirt2: np.ndarray
    stripes: float  # stripes per body height along the torso (0: plain)
    long_sleeves: bool
    trousers: np.ndarray
    shoes: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    build: float  # torso width factor
    limbs: float  # limb thickness factor
    texture: np.ndarray  # (64, 64) float32 periodic noise, cloth weave / folds


SKIN = ((0.93, 0.76, 0.64), (0.80, 0.60, 0.45), (0.62, 0.44, 0.32), (0.42, 0.29, 0.21))
HAIR = ((0.1, 0.08, 0.06), (0.35, 0.22, 0.12), (0.75, 0.62, 0.4), (0.5, 0.5, 0.5))
TROUSERS = ((0.15, 0.2, 0.38), (0.12, 0.12, 0.13), (0.55, 0.48, 0.35), (0.32, 0.34, 0.3), (0.45, 0.12, 0.12))


def _random_look(rng: np.random.Generator) -> _Look:
    def vivid() -> np.ndarray:
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(60, 230), rng.integers(90, 240)]]])
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255

    pick = lambda table: np.array(table[rng.integers(len(table))], np.float32)  # noqa: E731
    return _Look(
        shirt=vivid(),
        shirt2=vivid() if rng.random() < 0.5 else np.full(3, rng.uniform(0.1, 0.95), np.float32),
        stripes=float(rng.uniform(10, 22)) if rng.random() < 0.5 else 0.0,
        long_sleeves=bool(rng.random() < 0.5),
        trousers=pick(TROUSERS) * np.float32(rng.uniform(0.85, 1.15)),
        shoes=np.full(3, rng.uniform(0.05, 0.3), np.float32),
        skin=pick(SKIN),
        hair=pick(HAIR),
        build=float(rng.uniform(0.9, 1.15)),
        limbs=float(rng.uniform(0.9, 1.15)),
        texture=_fractal_noise(rng, (64, 64), beta=1.2),
    )


# materials of the drawn parts
_SHIRT, _SKIN, _TROUSERS, _SHOES, _HEAD = 0, 1, 2, 3, 4


def _skeleton(look: _Look, facing: float, phase: float, gait: float) -> list[tuple]:
    """Body parts in painter's order, in body units (height ~1, origin between the feet, y down).

    facing in [-1, 1]: +1 walks to +x in side view, 0 faces the camera. gait in [0, 1]: stride amplitude.
    Each part: ("line", material, shade, p, q, thickness) | ("poly", material, shade, points) |
    ("ellipse", material, shade, centre, (semi_x, semi_y)).
    """
    f = float(np.clip(facing, -1, 1))
    lat = math.sqrt(max(0.0, 1 - f * f))
    near = 1 if f >= 0 else -1
    legs, arms = {}, {}
    for s in (-1, 1):
        ph = phase + (0.0 if s < 0 else math.pi)
        thigh = 0.38 * gait * math.sin(ph)
        knee_flex = 0.65 * gait * max(0.0, math.cos(ph)) ** 1.5
        hip = np.array([s * 0.055 * look.build * lat, 0.0])
        knee = hip + 0.25 * np.array([f * math.sin(thigh), math.cos(thigh)])
        shin = thigh - knee_flex
        ankle = knee + 0.24 * np.array([f * math.sin(shin), math.cos(shin)])
        toe = ankle + np.array([0.075 * f + s * 0.012 * lat, 0.005])
        legs[s] = (hip, knee, ankle, toe)
        swing = -0.45 * gait * math.sin(ph)
        elbow_flex = 0.2 + 0.35 * gait * (0.5 + 0.5 * math.sin(ph + math.pi))
        arms[s] = (swing, elbow_flex)
    lowest = max(max(leg[2][1], leg[3][1]) for leg in legs.values()) + 0.022 * look.limbs
    shift = np.array([0.0, -lowest])
    hip_c = shift
    lean = 0.03 * gait * f
    shoulder_c = hip_c + np.array([lean, -0.30])
    half_hip = look.build * math.hypot(0.075 * f, 0.105 * lat)
    half_sh = look.build * math.hypot(0.08 * f, 0.125 * lat)
    torso = [hip_c + (-half_hip, 0.02), hip_c + (half_hip, 0.02), shoulder_c + (half_sh, 0.0),
             shoulder_c + (-half_sh, 0.0)]
    head_c = shoulder_c + np.array([0.012 * f, -0.085])
    head_axes = (math.hypot(0.058 * f, 0.05 * lat), 0.066)

    def leg_parts(s: int, shade: float) -> list[tuple]:
        hip, knee, ankle, toe = (p + shift for p in legs[s])
        t = look.limbs
        return [("line", _TROUSERS, shade, hip, knee, 0.095 * t), ("line", _TROUSERS, shade, knee, ankle, 0.075 * t),
                ("line", _SHOES, shade, ankle, toe, 0.045 * t)]

    def arm_parts(s: int, shade: float) -> list[tuple]:
        swing, flex = arms[s]
        sh = shoulder_c + np.array([s * (half_sh - 0.02) * lat, 0.02])
        elbow = sh + 0.17 * np.array([f * math.sin(swing) + s * 0.06 * lat, math.cos(swing)])
        hand = elbow + 0.16 * np.array([f * math.sin(swing + flex) + s * 0.03 * lat, math.cos(swing + flex)])
        t = look.limbs
        fore = _SHIRT if look.long_sleeves else _SKIN
        return [("line", _SHIRT, shade, sh, elbow, 0.065 * t), ("line", fore, shade, elbow, hand, 0.052 * t),
                ("ellipse", _SKIN, shade, hand, (0.024 * t, 0.028 * t))]

    far = -near
    frontal = abs(f) < 0.4
    parts: list[tuple] = []
    if not frontal:
        parts += arm_parts(far, 0.78)
    parts += leg_parts(far, 0.85 if not frontal else 1.0)
    parts += leg_parts(near, 1.0) if frontal else []
    parts.append(("poly", _SHIRT, 1.0, torso))
    parts.append(("line", _SKIN, 0.9, shoulder_c, head_c, 0.05 * look.limbs))
    parts.append(("ellipse", _HEAD, 1.0, head_c, head_axes))
    if not frontal:
        parts += leg_parts(near, 1.0)
    if frontal:
        parts += arm_parts(far, 0.95)
    parts += arm_parts(near, 1.0)
    return parts


@dataclass
class _FigurePlan:
    """One figure's world trajectory. Arrays have one entry per frame."""

    look: _Look
    feet: np.ndarray  # (T, 2) world
    height: np.ndarray  # (T,) world pixels
    facing: np.ndarray  # (T,) in [-1, 1]
    phase: np.ndarray  # (T,) radians
    gait: np.ndarray  # (T,) in [0, 1]


def _height_range(size: tuple[int, int], figures: int) -> tuple[float, float]:
    """Figure heights in frame pixels that keep area in bounds, inside the frame and apart from others."""
    w, h = size
    lo = max(0.5 * h, math.sqrt(1.25 * MIN_AREA * w * h / AREA_PER_H2))
    hi = min(0.9 * h, (w / figures - 0.06 * w) / (2 * HALF_WIDTH + 0.06), math.sqrt(0.8 * MAX_AREA * w * h / 0.22))
    return lo, hi


def _plan_figures(
    rng: np.random.Generator, camera: str, cam: _CameraPath, looks: list[_Look], size: tuple[int, int],
    frames: int, speed_h: float, h_lo: float, h_hi: float
) -> list[_FigurePlan]:
    """Plan figures in frame coordinates of the camera's smooth path, then convert to world coordinates."""
    w, h = size
    n = len(looks)
    t = np.arange(frames, dtype=np.float64)
    plans = []
    # ptz: the subject leads the camera in its direction of motion (the operator lags behind)
    cam_vx = np.gradient(cam.cx) * cam.zoom if frames > 1 else np.zeros(frames)
    lead = np.clip(rng.uniform(4, 8) * cam_vx, -0.08 * w / n, 0.08 * w / n)
    for k, look in enumerate(looks):
        lo = rng.uniform(h_lo, h_lo + 0.4 * (h_hi - h_lo))
        hi = rng.uniform(lo + 0.5 * (h_hi - lo), h_hi)
        scale_period = max(frames, 50) * rng.uniform(0.8, 1.6)
        hf = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * t / scale_period + rng.uniform(0, 2 * np.pi)))
        slot = w * (k + 0.5) / n
        if camera == "ptz":
            fx = slot + lead + 0.02 * w * _smooth_signal(rng, t, (50, 150), 2) / n
        else:
            room = w / (2 * n) - HALF_WIDTH * h_hi - 0.03 * w
            if n > 1:
                room = min(room, (w / n - 0.3 * w) / 2)
            room = max(0.0, room) * (0.75 if camera == "handheld" else 1.0)
            amp = rng.uniform(0.7, 1.0) * room
            speed = speed_h * float(hf.mean()) * rng.uniform(0.8, 1.2)
            period = max(40.0, 2 * np.pi * amp / max(speed, 1e-3))
            fx = slot + amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        fy = h * (0.5 + 0.5 * hf / h) - 0.02 * h
        feet = np.empty((frames, 2))
        for i in range(frames):
            p = np.linalg.solve(cam.smooth[i], np.array([fx[i], fy[i], 1.0]))
            feet[i] = p[:2] / p[2]
        height = hf / cam.zoom
        if frames > 1:
            vel = np.gradient(feet, axis=0)
        else:
            vel = np.zeros((1, 2))
        speed_w = np.hypot(vel[:, 0], 2.5 * vel[:, 1])
        gait = np.clip(speed_w / (0.02 * height), 0.0, 1.0)
        phase = rng.uniform(0, 2 * np.pi) + np.cumsum(2 * np.pi * speed_w / (0.85 * height))
        facing = np.tanh(vel[:, 0] / (0.006 * height))
        if frames > 2:
            kern = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
            facing = np.convolve(np.pad(facing, 4, mode="edge"), kern / kern.sum(), mode="valid")
        plans.append(_FigurePlan(look=look, feet=feet, height=height, facing=facing, phase=phase, gait=gait))
    return plans


def _draw_labels(parts: list[tuple], to_frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Rasterise parts (body units mapped to frame by the 3x3 to_frame) as part indices 1.. (H, W) uint8."""
    w, h = size
    canvas = np.zeros((h, w), np.uint8)
    scale = math.sqrt(abs(np.linalg.det(to_frame[:2, :2])))  # frame pixels per body unit (affine part)
    roll = math.degrees(math.atan2(to_frame[1, 0], to_frame[0, 0]))

    def pt(p: np.ndarray) -> tuple[int, int]:
        q = to_frame @ np.array([p[0], p[1], 1.0])
        return int(round(q[0] / q[2] * 16)), int(round(q[1] / q[2] * 16))

    for i, part in enumerate(parts, start=1):
        kind = part[0]
        if kind == "line":
            _, _, _, p, q, thick = part
            cv2.line(canvas, pt(p), pt(q), i, max(1, int(round(thick * scale))), cv2.LINE_8, shift=4)
        elif kind == "poly":
            pts = np.array([pt(p) for p in part[3]], np.int32)
            cv2.fillPoly(canvas, [pts], i, cv2.LINE_8, shift=4)
        else:
            _, _, _, c, (ax, ay) = part
            axes = (max(1, int(round(ax * scale * 16))), max(1, int(round(ay * scale * 16))))
            cv2.ellipse(canvas, pt(c), axes, roll, 0, 360, i, -1, cv2.LINE_8, shift=4)
    return canvas


def _body_to_frame(plan: _FigurePlan, i: int, homography: np.ndarray, grow: float = 1.0) -> np.ndarray:
    """3x3 map from body units to frame pixels at frame i (body scaled by ``grow`` about the feet)."""
    s = plan.height[i] * grow
    fx, fy = plan.feet[i]
    return homography @ np.array([[s, 0.0, fx], [0.0, s, fy], [0.0, 0.0, 1.0]])


def _figure_colours(look: _Look, facing: float, parts: list[tuple], labels: np.ndarray, to_frame: np.ndarray,
                    box: tuple[int, int, int, int]) -> np.ndarray:
    """Colours (y1-y0, x1-x0, 3) float32 of the figure inside box, from its materials and cloth texture."""
    x0, y0, x1, y1 = box
    lab = labels[y0:y1, x0:x1]
    table = np.zeros((len(parts) + 1, 3), np.float32)
    mats = np.zeros(len(parts) + 1, np.int32)
    materials = {_SHIRT: look.shirt, _SKIN: look.skin, _TROUSERS: look.trousers, _SHOES: look.shoes,
                 _HEAD: look.skin}
    for i, part in enumerate(parts, start=1):
        table[i] = materials[part[1]] * part[2]
        mats[i] = part[1]
    col = table[lab]
    # body coordinates of the pixel centres
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    inv = np.linalg.inv(to_frame)
    den = inv[2, 0] * gx + inv[2, 1] * gy + inv[2, 2]
    bx = (inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]) / den
    by = (inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]) / den
    mat = mats[lab]
    if look.stripes > 0:
        stripe = (np.sin(2 * np.pi * look.stripes * by) > 0.2) & (mat == _SHIRT)
        col[stripe] = look.shirt2 * (col[stripe] / (look.shirt + 1e-6))
    # hair: the top and (in side view) the back of the head
    hc = next(p[3] for p in parts if p[1] == _HEAD)
    back = ((bx - hc[0]) * np.sign(facing) < -0.01) & (abs(facing) > 0.3) & (by < hc[1] + 0.03)
    hair = (mat == _HEAD) & ((by < hc[1] - 0.02) | back)
    col[hair] = look.hair
    tex = look.texture
    n = tex.shape[0]
    tx = ((bx * 3 * n) % n).astype(np.float32)
    ty = ((by * 3 * n) % n).astype(np.float32)
    weave = cv2.remap(tex, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    light = 1.0 + 0.15 * (by + 0.5)  # lit from above (by is negative above the feet)
    return col * (1.0 + 0.1 * weave)[..., None] * np.clip(1.1 - light * 0.1, 0.9, 1.2)[..., None]


# ----------------------------------------------------------------------------------------------------
# rendering


def _flag_polygons(flag: Flag, t: int, n: int = 8) -> list[tuple[np.ndarray, int, float]]:
    """Quads of a waving flag in world coordinates at frame t: (points (4, 2), colour index, shade)."""
    ax, ay = flag.anchor
    s = np.linspace(0.0, 1.0, n + 1)
    wave = np.sin(2.5 * np.pi * s - flag.speed * t + flag.phase)
    dy = 0.12 * flag.height * wave * s + 0.08 * flag.height * s
    xs = ax + flag.direction * flag.length * s * (1 - 0.06 * (1 + np.sin(0.3 * flag.speed * t + flag.phase)))
    quads = []
    for j in range(n):
        slope = (dy[j + 1] - dy[j]) / (flag.length / n)
        shade = float(np.clip(1.0 - 1.2 * slope * flag.direction, 0.6, 1.25))
        for half in (0, 1):
            top0 = ay + dy[j] + half * flag.height / 2
            top1 = ay + dy[j + 1] + half * flag.height / 2
            pts = np.array([[xs[j], top0], [xs[j + 1], top1], [xs[j + 1], top1 + flag.height / 2],
                            [xs[j], top0 + flag.height / 2]])
            quads.append((pts, half, shade))
    return quads


def _render_background(world: World, homography: np.ndarray, t: int, size: tuple[int, int]) -> np.ndarray:
    """The background at frame t: panorama, drifting clouds, waving flags. (H, W, 3) float32."""
    w, h = size
    frame = cv2.warpPerspective(world.image, homography, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT_101)
    shift = np.array([[1.0, 0.0, world.wind * t], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cloud = cv2.warpPerspective(world.clouds, homography @ shift, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_WRAP)
    vis = cv2.warpPerspective(world.sky, homography, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)
    a = (cloud * vis)[..., None]
    frame = frame * (1 - a) + world.cloud_colour * a
    for flag in world.flags:
        quads = _flag_polygons(flag, t)
        canvas = np.zeros((h, w), np.uint8)
        for i, (pts, _, _) in enumerate(quads, start=1):
            q = cv2.perspectiveTransform(pts[None].astype(np.float64), homography)[0]
            cv2.fillPoly(canvas, [np.round(q * 16).astype(np.int32)], i, cv2.LINE_8, shift=4)
        if canvas.any():
            table = np.zeros((len(quads) + 1, 3), np.float32)
            for i, (_, c, shade) in enumerate(quads, start=1):
                table[i] = flag.colours[c] * shade
            on = canvas > 0
            frame[on] = table[canvas[on]]
    return frame.astype(np.float32)


def _mask_box(mask: np.ndarray) -> list[int]:
    """Tight box [x0, y0, x1, y1] (inclusive-exclusive) of a boolean mask; [0, 0, 0, 0] when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0, 0, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _render_figure(plan: _FigurePlan, i: int, homography: np.ndarray, size: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Draw figure at frame i. Returns (mask (H, W) bool, colours (H, W, 3) float32 valid on mask, box)."""
    w, h = size
    parts = _skeleton(plan.look, plan.facing[i], plan.phase[i], plan.gait[i])
    grow = 1.0
    for _ in range(6):  # enforce MIN_AREA <= area <= MAX_AREA by scaling about the feet
        to_frame = _body_to_frame(plan, i, homography, grow)
        labels = _draw_labels(parts, to_frame, size)
        area = np.count_nonzero(labels) / (w * h)
        if 1.05 * MIN_AREA <= area <= 0.95 * MAX_AREA:
            break
        target = 1.1 * MIN_AREA if area < MIN_AREA * 1.05 else 0.9 * MAX_AREA
        grow *= math.sqrt(target / max(area, 1e-6))
    else:
        raise RuntimeError(f"figure area {area:.3f} of the frame could not be kept in [{MIN_AREA}, {MAX_AREA}]")
    mask = labels > 0
    box = _mask_box(mask)
    colours = np.zeros((h, w, 3), np.float32)
    x0, y0, x1, y1 = box
    colours[y0:y1, x0:x1] = _figure_colours(plan.look, float(plan.facing[i]), parts, labels, to_frame, box)
    return mask, colours, box


def _render_sequence(
    rng: np.random.Generator, camera: str, size: tuple[int, int], frames: int, figures: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]]:
    """Yield (image (H, W, 3) uint8, labels (H, W) uint8 0..figures, homography (3, 3), boxes) per frame."""
    w, h = size
    h_lo, h_hi = _height_range(size, figures)
    world = make_world(rng, size)
    looks = [_random_look(rng) for _ in range(figures)]
    speed_h = rng.uniform(0.025, 0.04)  # walking speed in body heights per frame
    cam = _plan_camera(rng, camera, world, size, frames, speed_h * 0.7 * (h_lo + h_hi) / 2)
    plans = _plan_figures(rng, camera, cam, looks, size, frames, speed_h, h_lo, h_hi)
    t = np.arange(frames, dtype=np.float64)
    gain = 1.0 + 0.03 * _smooth_signal(rng, t, (60, 240), 2)
    balance = 1.0 + 0.01 * np.stack([_smooth_signal(rng, t, (80, 300), 1) for _ in range(3)], axis=1)
    noise_sigma = rng.uniform(1.0, 2.5) / 255.0
    for i in range(frames):
        homography = cam.actual[i]
        frame = _render_background(world, homography, i, size)
        labels = np.zeros((h, w), np.uint8)
        boxes = []
        for k, plan in enumerate(plans):
            mask, colours, box = _render_figure(plan, i, homography, size)
            frame[mask] = colours[mask]
            labels[mask] = 255 if figures == 1 else k + 1
            boxes.append(box)
        frame = frame * (gain[i] * balance[i]).astype(np.float32)
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(noise_sigma)
        image = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        yield image, labels, homography, boxes


# ----------------------------------------------------------------------------------------------------
# public entry point


def _validate(
    camera: str, sequences: int, frames: int, size: tuple[int, int], figures: int, seed: int
) -> tuple[int, int]:
    if camera not in CAMERAS:
        raise InpaintsegError(f"unknown camera {camera!r}; choose one of {', '.join(CAMERAS)}")
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InpaintsegError(f"size must be (width, height), got {size!r}") from None
    if w < 32 or h < 32:
        raise InpaintsegError(f"size must be at least 32x32 pixels, got {w}x{h}")
    if frames < 1:
        raise InpaintsegError(f"frames must be >= 1, got {frames}")
    if sequences < 1:
        raise InpaintsegError(f"sequences must be >= 1, got {sequences}")
    if figures < 1:
        raise InpaintsegError(f"figures must be >= 1, got {figures}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InpaintsegError(f"seed must be a non-negative integer, got {seed!r}")
    if figures > MAX_FIGURES:
        raise InpaintsegError(f"figures must be <= {MAX_FIGURES}, got {figures}")
    lo, hi = _height_range((w, h), figures)
    if lo > 0.97 * hi:
        raise InpaintsegError(
            f"a {w}x{h} frame cannot hold {figures} separated figure(s) of {MIN_AREA:.0%}-{MAX_AREA:.0%} of the "
            f"frame each; use a wider frame or fewer figures"
        )
    return w, h


_FRAME_FILE = re.compile(r"^\d{5}\.(jpg|png)$")


def _remove_stale(folder: Path, keep: set[str]) -> None:
    """Delete frame files this generator wrote earlier (NNNNN.jpg/png) that the new run does not write."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if _FRAME_FILE.match(p.name) and p.name not in keep:
            p.unlink()


def generate(
    out: str | Path,
    camera: str = "ptz",
    sequences: int = 6,
    frames: int = 60,
    size: tuple[int, int] = (320, 180),
    figures: int = 1,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Write a synthetic DAVIS-layout benchmark to ``out`` and return ``out`` as a Path.

    Each sequence is its own scene drawn from ``np.random.default_rng([seed, index])``; the same arguments
    give byte-identical files. size = (W, H). Frame files are written atomically and ``meta.json`` last.
    Frame files left in ``out`` by an earlier run with more frames or sequences are removed.
    """
    w, h = _validate(camera, sequences, frames, size, figures, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InpaintsegError(f"{out}: exists and is not a folder")
    names = [f"seq{i:03d}" for i in range(sequences)]
    for kind in ("JPEGImages", "Annotations"):
        root = out / kind
        if root.is_dir():
            for d in root.iterdir():
                if re.fullmatch(r"seq\d{3,}", d.name) and d.name not in names:
                    _remove_stale(d, set())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sequences * frames, desc=f"synth {camera}", unit="frame")
    meta: dict = {"camera": camera, "size": [w, h], "seed": int(seed), "figures": int(figures), "sequences": {}}
    try:
        for s, name in enumerate(names):
            rng = np.random.default_rng([int(seed), s])
            img_dir, ann_dir = out / "JPEGImages" / name, out / "Annotations" / name
            records = []
            for i, (image, labels, homography, boxes) in enumerate(_render_sequence(rng, camera, (w, h), frames,
                                                                                   figures)):
                stem = f"{i:05d}"
                write_jpeg(img_dir / f"{stem}.jpg", image, quality=JPEG_QUALITY)
                write_png(ann_dir / f"{stem}.png", labels)
                records.append({"name": stem, "camera": [[round(float(v), 9) for v in row] for row in homography],
                                "boxes": boxes})
                if bar is not None:
                    bar.update(1)
            keep = {f"{i:05d}" for i in range(frames)}
            _remove_stale(img_dir, {k + ".jpg" for k in keep})
            _remove_stale(ann_dir, {k + ".png" for k in keep})
            meta["sequences"][name] = {"frames": records}
    finally:
        if bar is not None:
            bar.close()
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1) + "\n")
    return out
