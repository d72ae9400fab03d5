"""Reliability fuzzing: random and damaged files must give InpaintsegError (DataError), never another exception.

Two kinds of input per suffix: plain random bytes, and a valid small file with random bytes overwritten
and/or cut short (these get past the format's magic number and exercise the decoders). A run is a few
seconds; raise ``max_examples`` locally for a longer search.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaintseg.data.image_io import read_image, read_mask
from inpaintseg.data.sources import open_source
from inpaintseg.errors import InpaintsegError

# PIL warns (and then raises) on some damaged TIFF/PNG headers; the warnings are expected here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Corrupt EXIF data:UserWarning", "ignore::PIL.Image.DecompressionBombWarning"
)
SETTINGS = settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _image_bytes(fmt: str, **options) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, format=fmt, **options)
    return buf.getvalue()


def _video_bytes(suffix: str) -> bytes:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"clip{suffix}"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width, stream.height = 32, 24
            stream.pix_fmt = "yuv420p"
            stream.options = {"g": "3"}
            for _ in range(6):
                frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()


SEEDS = {
    ".jpg": _image_bytes("JPEG", quality=85),
    ".png": _image_bytes("PNG"),
    ".tif": _image_bytes("TIFF", compression="tiff_lzw"),
    ".mp4": _video_bytes(".mp4"),
}


@st.composite
def damaged_files(draw, suffixes: tuple[str, ...]) -> tuple[str, bytes]:
    """(suffix, bytes): random bytes, or a valid file with up to 16 bytes overwritten and/or truncated."""
    suffix = draw(st.sampled_from(suffixes))
    kind = draw(st.sampled_from(["random", "overwrite", "truncate", "both"]))
    if kind == "random":
        return suffix, draw(st.binary(max_size=1024))
    data = bytearray(SEEDS[suffix])
    if kind in ("overwrite", "both"):
        edits = st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255))
        for pos, value in draw(st.lists(edits, min_size=1, max_size=16)):
            data[pos] = value
    if kind in ("truncate", "both"):
        data = data[: draw(st.integers(0, len(data) - 1))]
    return suffix, bytes(data)


def _only_inpaintseg_errors(call) -> None:
    try:
        call()
    except InpaintsegError as e:
        assert str(e)  # a message for a person


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@SETTINGS
@given(case=damaged_files((".jpg", ".png", ".tif", ".mp4")))
def test_read_image_and_read_mask_raise_only_data_errors(folder: Path, case: tuple[str, bytes]) -> None:
    suffix, data = case
    path = folder / f"file{suffix}"
    path.write_bytes(data)
    _only_inpaintseg_errors(lambda: read_image(path))
    _only_inpaintseg_errors(lambda: read_mask(path))
    _only_inpaintseg_errors(lambda: list(open_source(path)))


@SETTINGS
@given(case=damaged_files((".mp4",)))
def test_damaged_videos_raise_only_data_errors(folder: Path, case: tuple[str, bytes]) -> None:
    _, data = case
    path = folder / "clip.mp4"
    path.write_bytes(data)
    _only_inpaintseg_errors(lambda: list(open_source(path)))

    def skip_then_read() -> None:
        src = open_source(path, on_error="skip")
        frames = list(src)
        seq = src.sequences[0]
        assert len(frames) <= len(seq)  # never more frames than packets
        for i in range(len(seq)):  # random access, forward and after a failure
            _only_inpaintseg_errors(lambda i=i: seq.read(i))

    _only_inpaintseg_errors(skip_then_read)


def test_the_seeds_are_valid(folder: Path) -> None:
    """The fuzzing starts from files that decode: otherwise it would only test the error paths."""
    for suffix, data in SEEDS.items():
        path = folder / f"seed{suffix}"
        path.write_bytes(data)
        frames = list(open_source(path))
        assert len(frames) == (6 if suffix == ".mp4" else 1)
        assert frames[0].image.shape == (24, 32, 3)
