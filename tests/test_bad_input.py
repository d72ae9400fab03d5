"""Reliability: every kind of bad input either raises DataError naming the file, or (on_error="skip") is
skipped and counted in ``Source.skipped``. Each fault here has a row in docs/reliability.md."""

from __future__ import annotations

import io
import json
import logging
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from inpaintseg.data.image_io import read_image, read_mask, write_png
from inpaintseg.data.sources import open_source
from inpaintseg.errors import DataError
from inpaintseg.evaluate import evaluate, run

H, W = 24, 32


def _photo(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    """A smooth RGB uint8 (h, w, 3) picture (compresses like a photo, not like noise)."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    img = np.stack([(x * 255 // max(1, w - 1)), (y * 255 // max(1, h - 1)), np.full_like(x, 90)], axis=-1)
    return np.clip(img + rng.integers(-5, 6, img.shape), 0, 255).astype(np.uint8)


def _encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **options)
    return buf.getvalue()


JPEG = _encode(_photo(), "JPEG", quality=90)
PNG = _encode(_photo(), "PNG")


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _write_big_png(path: Path, width: int, height: int) -> None:
    """An 8-bit RGB PNG of any size written in a second without holding the pixels: the top half black, the
    bottom half white. The rows are streamed through zlib (each row: filter byte 0 + pixels)."""
    comp = zlib.compressobj(1)
    black = b"\x00" + bytes(3 * width)
    white = b"\x00" + b"\xff" * (3 * width)
    parts = [comp.compress(black if y < height // 2 else white) for y in range(height)]
    parts.append(comp.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, colour type 2 = RGB
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _write_png_header_only(path: Path, width: int, height: int) -> None:
    """A 60-byte PNG that claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b""))


def _write_video(path: Path, n: int = 30, gop: int = 1) -> None:
    """n frames, 64x48, of fresh random noise (every packet about the same size), mpeg4 at 10 fps, all intra."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "qscale": "2"}
        for _ in range(n):
            img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# -- broken image files -----------------------------------------------------------------------------------

BAD_IMAGES = {
    "zero.jpg": (b"", "0 bytes"),
    "zero.png": (b"", "0 bytes"),
    "truncated.jpg": (JPEG[: len(JPEG) // 2], "cannot decode"),
    "truncated.png": (PNG[: len(PNG) // 2], "cannot decode"),
    "text.jpg": (b"Hello, I am a text file with the wrong suffix.\n" * 3, "cannot decode"),
    "html.png": (b"<html><body>404 Not Found</body></html>", "cannot decode"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_broken_image_raises_data_error_naming_the_file(tmp_path: Path, name: str) -> None:
    data, problem = BAD_IMAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    for reader in (read_image, read_mask, lambda p: list(open_source(p))):
        with pytest.raises(DataError, match=problem) as info:
            reader(path)
        assert info.value.path == str(path)
        assert str(path) in str(info.value)


def test_broken_images_in_a_folder_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "f00.jpg").write_bytes(JPEG)
    for k, (name, (data, _)) in enumerate(sorted(BAD_IMAGES.items()), start=1):
        (folder / f"f{k:02d}_{name}").write_bytes(data)
    (folder / "f99.png").write_bytes(PNG)

    with pytest.raises(DataError, match="f01_html.png"):  # the first bad frame in natural order
        list(open_source(folder))
    src = open_source(folder, on_error="skip")
    frames = list(src)
    assert [f.name for f in frames] == ["f00", "f99"]
    assert [f.index for f in frames] == [0, 7]  # indices keep their gaps
    bad = sorted(p.name for p in folder.iterdir() if p.name[1:3] not in ("00", "99"))
    assert sorted(Path(p).name for p, _ in src.skipped) == bad
    assert len(src.skipped) == len(BAD_IMAGES)


# -- videos -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_mp4(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "good.mp4"
    _write_video(path)
    return path


def _packet_positions(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) in the file of each video packet, in decoding order."""
    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]


def test_mp4_with_a_corrupt_packet_in_the_middle(good_mp4: Path, tmp_path: Path) -> None:
    data = bytearray(good_mp4.read_bytes())
    pos, size = _packet_positions(good_mp4)[15]
    assert len(data) // 3 < pos < 2 * len(data) // 3  # really in the middle of the file
    data[pos : pos + 8] = b"\xff" * 8  # the frame's start code and header: the packet cannot be decoded
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))

    seq = open_source(bad).sequences[0]
    assert len(seq) == 30  # demuxing still sees every packet
    with pytest.raises(DataError, match="cannot decode a packet after frame 14") as info:
        list(seq)
    assert info.value.path == str(bad)

    src = open_source(bad, on_error="skip")
    frames = list(src)
    assert [f.index for f in frames] == [k for k in range(30) if k != 15]
    assert len(src.skipped) == 1 and src.skipped[0][0] == str(bad)  # the lost frame is counted
    good = {f.index: f.image for f in open_source(good_mp4)}
    assert all(np.array_equal(f.image, good[f.index]) for f in frames)  # all-intra video: the rest is intact
    with pytest.raises(DataError, match="frame 15 cannot be decoded"):
        seq.read(15)


def test_mp4_with_damaged_pixel_data_decodes_without_error(good_mp4: Path, tmp_path: Path) -> None:
    """A known limit: bytes damaged inside a frame's pixel data are concealed by the decoder (FFmpeg),
    not reported. The frame count and the other frames are unaffected; the damaged frame just looks wrong."""
    data = bytearray(good_mp4.read_bytes())
    pos, size = _packet_positions(good_mp4)[15]
    mid = pos + size // 2
    data[mid : mid + 64] = b"\xff" * 64
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    src = open_source(bad)
    frames = {f.index: f.image for f in src}
    good = {f.index: f.image for f in open_source(good_mp4)}
    assert sorted(frames) == list(range(30)) and src.skipped == []
    assert not np.array_equal(frames[15], good[15])
    assert all(np.array_equal(frames[k], good[k]) for k in range(30) if k != 15)


def test_truncated_mp4_and_text_named_mp4(good_mp4: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.mp4"  # an interrupted recording: the index (moov, written last) is missing
    truncated.write_bytes(good_mp4.read_bytes()[: good_mp4.stat().st_size // 2])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    for path in (truncated, text):
        with pytest.raises(DataError, match="cannot open video") as info:
            open_source(path)
        assert info.value.path == str(path)
    folder = tmp_path / "videos"
    folder.mkdir()
    for path in (good_mp4, truncated, text):
        (folder / path.name).write_bytes(path.read_bytes())
    src = open_source(folder, on_error="skip")
    assert src.names == ["good"]
    assert sorted(Path(p).name for p, _ in src.skipped) == ["cut.mp4", "notes.mp4"]
    assert sum(1 for _ in src) == 30


# -- formats and sizes ------------------------------------------------------------------------------------


def test_mixed_resolutions_in_one_folder(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", _photo(0, 24, 32))
    write_png(tmp_path / "b.png", _photo(1, 100, 40))
    write_png(tmp_path / "c.png", _photo(2, 10, 300))
    src = open_source(tmp_path, max_side=50)
    shapes = [f.image.shape for f in src]
    assert shapes == [(24, 32, 3), (50, 20, 3), (2, 50, 3)]  # each frame keeps its own aspect ratio


def test_grayscale_rgba_palette_and_16bit_pngs(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 6), 77, np.uint8)).save(tmp_path / "gray.png")
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 128  # half transparent: composited on black -> round(200 * 128 / 255) = 100
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    la = np.zeros((4, 6, 2), np.uint8)
    la[..., 0], la[..., 1] = 250, 51  # 250 * 51 / 255 = 50
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    Image.fromarray(np.full((4, 6), 257 * 100, np.uint16)).save(tmp_path / "gray16.png")  # 100/255 of full scale
    bgr16 = np.zeros((4, 6, 3), np.uint16)
    bgr16[...] = (257 * 10, 257 * 20, 257 * 250)  # OpenCV writes BGR: red = 250, green = 20, blue = 10
    assert cv2.imwrite(str(tmp_path / "rgb16.png"), bgr16)
    Image.fromarray(np.full((4, 6), 255, np.uint8)).convert("1").save(tmp_path / "bilevel.png")

    expected = {
        "gray": (77, 77, 77),
        "rgba": (100, 50, 25),
        "la": (50, 50, 50),
        "gray16": (100, 100, 100),
        "rgb16": (250, 20, 10),
        "bilevel": (255, 255, 255),
    }
    for name, rgb in expected.items():
        image = read_image(tmp_path / f"{name}.png")
        assert image.shape == (4, 6, 3) and image.dtype == np.uint8, name
        assert tuple(int(v) for v in image[2, 3]) == rgb, name
    frames = {f.name: f.image for f in open_source(tmp_path)}
    assert set(frames) == set(expected)


def test_huge_png_is_downscaled_to_max_side(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    _write_big_png(path, 12000, 9000)  # 108 Mpixel (324 MB decoded), ~1.4 MB on disk
    assert path.stat().st_size < 3_000_000
    # Decode in a child process to measure its peak memory: one full-size RGB buffer (324 MB) plus the
    # 4096x3072 result, not a float copy (2.6 GB) or several full-size copies.
    code = (
        "import json, resource, sys\n"
        "from inpaintseg.data.sources import open_source\n"
        "image = next(iter(open_source(sys.argv[1], max_side=4096))).image\n"
        "print(json.dumps({'shape': image.shape, 'top': int(image[0, 0, 0]), 'bottom': int(image[-1, -1, 0]),\n"
        "                  'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))\n"
    )
    child = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout)
    assert out["shape"] == [3072, 4096, 3]
    assert (out["top"], out["bottom"]) == (0, 255)  # top black, bottom white: not flipped or cropped
    peak_mb = out["peak_mb"]
    assert peak_mb < 1200, f"decoding a 12000x9000 PNG peaked at {peak_mb} MB"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_jpeg_is_decoded_at_reduced_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    big = Image.new("L", (12000, 9000), 0)
    big.paste(200, (0, 4500, 12000, 9000))  # bottom half grey 200
    big.save(path, quality=80)
    del big
    image = read_image(path, max_side=4096)  # JPEG draft mode: decoded at 1/4 scale, never at full size
    assert image.shape == (2250, 3000, 3)
    assert abs(int(image[0, 0, 0]) - 0) <= 2 and abs(int(image[-1, -1, 0]) - 200) <= 2
    frames = list(open_source(path, max_side=1000))
    assert frames[0].image.shape == (750, 1000, 3)


def test_decompression_bomb_header_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    _write_png_header_only(bomb, 100_000, 100_000)  # 10 Gpixel = 30 GB if it were decoded
    assert bomb.stat().st_size < 100
    with pytest.raises(DataError, match="DecompressionBomb") as info:
        read_image(bomb)
    assert info.value.path == str(bomb)
    (tmp_path / "ok.png").write_bytes(PNG)
    src = open_source(tmp_path, on_error="skip")
    assert [f.name for f in src] == ["ok"]
    assert [Path(p).name for p, _ in src.skipped] == ["bomb.png"]


# -- paths ------------------------------------------------------------------------------------------------


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="folder is empty") as info:
        open_source(empty)
    assert info.value.path == str(empty)
    (empty / ".DS_Store").write_bytes(b"\x00")  # only hidden files: still empty
    with pytest.raises(DataError, match="folder is empty"):
        open_source(empty)
    missing = tmp_path / "no" / "such" / "clip.mp4"
    for call in (open_source, read_image, read_mask):
        with pytest.raises(DataError, match="does not exist") as info:
            call(missing)
        assert info.value.path == str(missing)


# -- evaluation -------------------------------------------------------------------------------------------


def _square(h: int, w: int, r0: int, c0: int, size: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[r0 : r0 + size, c0 : c0 + size] = 255
    return m


def test_evaluate_davis_root_without_annotations(tmp_path: Path) -> None:
    root = tmp_path / "davis"
    (root / "JPEGImages" / "bear").mkdir(parents=True)
    (root / "JPEGImages" / "bear" / "00000.jpg").write_bytes(JPEG)
    pred = tmp_path / "pred" / "bear"
    pred.mkdir(parents=True)
    write_png(pred / "00000.png", _square(H, W, 4, 4, 8))
    out = tmp_path / "eval.json"
    for call in (lambda: evaluate(pred.parent, root), lambda: run(pred.parent, root, out)):
        with pytest.raises(DataError, match="no Annotations") as info:
            call()
        assert info.value.path == str(root)
    assert not out.exists()


def test_evaluate_size_mismatch_is_resized_and_counted(tmp_path: Path, caplog) -> None:
    gt = tmp_path / "gt" / "Annotations" / "seq"
    pred = tmp_path / "pred" / "seq"
    write_png(gt / "00000.png", _square(20, 30, 4, 6, 8))
    write_png(gt / "00001.png", _square(20, 30, 10, 2, 6))
    big = np.kron(_square(20, 30, 4, 6, 8), np.ones((2, 2), np.uint8))  # the same mask at 2x size
    write_png(pred / "00000.png", big)
    write_png(pred / "00001.png", _square(30, 20, 0, 0, 2))  # transposed size, wrong content
    with caplog.at_level(logging.WARNING, logger="inpaintseg.evaluate"):
        result = evaluate(tmp_path / "pred", tmp_path / "gt")
    assert result["resized"] == 2 and result["missing"] == 0 and result["frames"] == 2
    assert "2 prediction(s) differ in size" in caplog.text
    # Frame 0 is exact after the 2x -> 1x resize (J = 1); frame 1 has no overlap (J = 0).
    assert result["J_mean"] == pytest.approx(0.5)


def test_evaluate_broken_prediction_or_ground_truth_names_the_file(tmp_path: Path) -> None:
    gt = tmp_path / "gt" / "seq"
    pred = tmp_path / "pred" / "seq"
    write_png(gt / "00000.png", _square(H, W, 4, 4, 8))
    pred.mkdir(parents=True)
    (pred / "00000.png").write_bytes(PNG[:40])
    with pytest.raises(DataError, match="cannot decode") as info:
        evaluate(pred.parent, gt.parent)
    assert info.value.path == str(pred / "00000.png")
    write_png(pred / "00000.png", _square(H, W, 4, 4, 8))
    (gt / "00000.png").write_bytes(b"")
    with pytest.raises(DataError, match="0 bytes") as info:
        evaluate(pred.parent, gt.parent)
    assert info.value.path == str(gt / "00000.png")
    (gt / "00000.png").write_bytes(_encode(_square(H, W, 4, 4, 8), "PNG"))
    (pred.parent / "detections.json").write_text('[{"sequence": "seq"}]')
    with pytest.raises(DataError, match="detections.json"):
        evaluate(pred.parent, gt.parent)
    (pred.parent / "detections.json").write_text(json.dumps([]))
    assert evaluate(pred.parent, gt.parent)["J_mean"] == pytest.approx(1.0)
