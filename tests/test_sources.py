"""Tests for inpaintseg.data.sources: every kind of input, errors, skipping and the sequence split."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from inpaintseg import video
from inpaintseg.data.sources import Frame, ImageSequence, open_source, split_sequences
from inpaintseg.errors import DataError
from inpaintseg.video import VideoSequence

DAVIS_MINI = Path(__file__).parent / "data" / "davis_mini"

# Pixel values of the synthetic video: grey background, red square moving 4 px right per frame.
BG = 40
SQUARE = (250, 30, 30)


def square_left(i: int, w: int = 64) -> int:
    return (4 * i) % (w - 16)


def video_frame(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    img = np.full((h, w, 3), BG, np.uint8)
    x = square_left(i, w)
    img[16:32, x : x + 16] = SQUARE
    return img


def write_video(path: Path, n: int = 12, w: int = 64, h: int = 48, gop: int = 4) -> None:
    """Write n frames of ``video_frame`` with the mpeg4 encoder at 10 fps (keyframe every ``gop``)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "qscale": "2"}
        stream.codec_context.qmax = 3
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(video_frame(i, w, h), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def square_x(image: np.ndarray) -> int:
    """Leftmost column where the red square is (red channel clearly above the background)."""
    cols = np.nonzero((image[24, :, 0] > 150) & (image[24, :, 1] < 100))[0]
    return int(cols[0])


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


# -- DAVIS ------------------------------------------------------------------------------------------------


def test_davis_mini_root() -> None:
    src = open_source(DAVIS_MINI)
    assert src.kind == "davis"
    assert [s.name for s in src.sequences] == ["bear", "hike"]
    for seq in src.sequences:
        assert seq.frame_names == ["00000", "00001", "00002"]
        assert len(seq) == 3
        assert seq.has_masks
        assert seq.fps is None
        img = seq.read(0)
        assert img.shape == (240, 427, 3) and img.dtype == np.uint8
        mask = seq.read_mask(2)
        assert mask is not None and mask.shape == (240, 427) and mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 255}
    # Mask areas counted once by hand from the PNGs (foreground pixels).
    assert int((src.sequence("bear").read_mask(0) > 0).sum()) == 12420
    assert int((src.sequence("hike").read_mask(0) > 0).sum()) == 5203
    frames = list(src)
    assert [(f.sequence, f.name, f.index) for f in frames] == [
        (s, n, k) for s in ("bear", "hike") for k, n in enumerate(["00000", "00001", "00002"])
    ]
    assert isinstance(frames[0], Frame)
    assert np.array_equal(frames[4].image, src.sequence("hike").read(1))
    assert src.skipped == []


def test_davis_jpegimages_folder_and_missing_annotations(tmp_path: Path) -> None:
    src = open_source(DAVIS_MINI / "JPEGImages")
    assert src.kind == "davis"
    assert src.sequence("hike").has_masks
    assert src.sequence("hike").read_mask(1).shape == (240, 427)

    root = tmp_path / "davis"
    shutil.copytree(DAVIS_MINI / "JPEGImages", root / "JPEGImages")
    shutil.copytree(DAVIS_MINI / "Annotations" / "bear", root / "Annotations" / "bear")
    (root / "Annotations" / "bear" / "00001.png").unlink()
    src = open_source(root)
    bear, hike = src.sequences
    assert bear.has_masks and not hike.has_masks
    assert bear.read_mask(0) is not None and bear.read_mask(1) is None
    assert hike.read_mask(0) is None


def test_davis_resolution_level(tmp_path: Path) -> None:
    root = tmp_path / "davis2017"
    shutil.copytree(DAVIS_MINI / "JPEGImages", root / "JPEGImages" / "480p")
    shutil.copytree(DAVIS_MINI / "Annotations", root / "Annotations" / "480p")
    src = open_source(root)
    assert src.names == ["bear", "hike"]
    assert src.sequence("bear").has_masks


def test_max_side_downscales_frames_and_masks() -> None:
    src = open_source(DAVIS_MINI, max_side=200)
    seq = src.sequence("bear")
    # 427x240 scaled by 200/427: width 200, height round(112.41) = 112.
    assert seq.read(0).shape == (112, 200, 3)
    mask = seq.read_mask(0)
    assert mask.shape == (112, 200)
    assert set(np.unique(mask)) == {0, 255}


def test_single_image_file() -> None:
    src = open_source(DAVIS_MINI / "JPEGImages" / "bear" / "00001.jpg")
    assert src.kind == "images"
    assert [s.name for s in src.sequences] == ["bear"]
    assert src.sequences[0].frame_names == ["00001"]
    assert [f.name for f in src] == ["00001"]


def test_subset_and_sequence_lookup() -> None:
    src = open_source(DAVIS_MINI)
    sub = src.subset(["hike"])
    assert [s.name for s in sub.sequences] == ["hike"]
    assert sum(1 for _ in sub) == 3
    with pytest.raises(DataError, match="nope"):
        src.sequence("nope")
    with pytest.raises(DataError):
        src.subset(["bear", "nope"])


# -- folders of images ------------------------------------------------------------------------------------


def test_folder_of_images_converts_formats(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[2, 3] = (10, 20, 30)
    save(folder / "f1.jpg", np.full((8, 10, 3), 128, np.uint8))
    save(folder / "f2.png", rgb)
    gray = np.full((8, 10), 77, np.uint8)
    save(folder / "f3.png", gray)
    rgba = np.zeros((8, 10, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # fully transparent pixel: composited on black
    save(folder / "f10.png", rgba)
    g16 = np.full((8, 10), 257 * 100, np.uint16)  # 16-bit value 25700 = 100/255 of full scale
    g16[0, 0] = 65535
    Image.fromarray(g16).save(folder / "f11.png")
    assert Image.open(folder / "f11.png").mode.startswith("I")

    src = open_source(folder)
    assert src.kind == "images"
    assert [s.name for s in src.sequences] == ["clip"]
    seq = src.sequences[0]
    assert seq.frame_names == ["f1", "f2", "f3", "f10", "f11"]  # natural order
    assert not seq.has_masks and seq.read_mask(0) is None
    images = [f.image for f in src]
    for img in images:
        assert img.shape == (8, 10, 3) and img.dtype == np.uint8
    assert tuple(images[1][2, 3]) == (10, 20, 30)
    assert tuple(images[2][5, 5]) == (77, 77, 77)
    assert tuple(images[3][5, 5]) == (200, 100, 50)
    assert tuple(images[3][0, 0]) == (0, 0, 0)
    assert tuple(images[4][5, 5]) == (100, 100, 100)
    assert tuple(images[4][0, 0]) == (255, 255, 255)


def test_mixed_resolutions_and_hidden_files(tmp_path: Path) -> None:
    save(tmp_path / "a.png", np.zeros((10, 20, 3), np.uint8))
    save(tmp_path / "b.png", np.zeros((30, 15, 3), np.uint8))
    (tmp_path / "._a.png").write_bytes(b"AppleDouble junk")  # hidden: ignored
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(tmp_path)
    assert src.sequences[0].frame_names == ["a", "b"]
    assert [f.image.shape for f in src] == [(10, 20, 3), (30, 15, 3)]


def test_max_side_on_image_folder(tmp_path: Path) -> None:
    save(tmp_path / "big.png", np.zeros((50, 100, 3), np.uint8))
    assert open_source(tmp_path, max_side=40).sequences[0].read(0).shape == (20, 40, 3)
    assert open_source(tmp_path, max_side=None).sequences[0].read(0).shape == (50, 100, 3)


def test_nested_folders_give_several_sequences(tmp_path: Path) -> None:
    for seq, n in (("walk10", 2), ("walk2", 3), ("run", 1)):
        for k in range(n):
            save(tmp_path / seq / f"{k:03d}.png", np.full((4, 6, 3), k, np.uint8))
    (tmp_path / "empty").mkdir()
    src = open_source(tmp_path)
    assert src.kind == "images"
    assert [s.name for s in src.sequences] == ["run", "walk2", "walk10"]
    assert [len(s) for s in src.sequences] == [1, 3, 2]
    assert [(f.sequence, f.name) for f in src][:3] == [("run", "000"), ("walk2", "000"), ("walk2", "001")]
    assert src.num_frames() == 6


# -- videos -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # mkv headers carry no frame count
def test_video_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"clip{suffix}"
    write_video(path, n=12)
    src = open_source(path)
    assert src.kind == "video"
    seq = src.sequences[0]
    assert isinstance(seq, VideoSequence)
    assert seq.name == "clip"
    assert len(seq) == 12
    assert seq.frame_names == [f"{k:05d}" for k in range(12)]
    assert seq.fps == pytest.approx(10.0)
    assert not seq.has_masks

    frames = list(seq)
    assert [f.index for f in frames] == list(range(12))
    assert [f.name for f in frames] == seq.frame_names
    for f in frames:
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert abs(square_x(f.image) - square_left(f.index)) <= 1  # content is in the right order
        assert np.abs(f.image.astype(int) - video_frame(f.index)).mean() < 4  # lossy codec

    # Random access (backward jumps seek), then sequential reads, all match the streamed frames.
    for i in [5, 0, 11, 3, 4, 5, 6, 2, 9, 10]:
        diff = np.abs(seq.read(i).astype(int) - frames[i].image.astype(int))
        assert diff.mean() < 0.5, i
    with pytest.raises(IndexError):
        seq.read(12)
    seq.close()


def test_video_long_jump_and_pickle(tmp_path: Path) -> None:
    path = tmp_path / "long.avi"
    write_video(path, n=70, w=32 + 16, h=48, gop=10)
    seq = open_source(path).sequences[0]
    assert len(seq) == 70
    streamed = {f.index: f.image for f in seq}
    for i in [65, 3, 50, 51, 0, 69]:
        assert np.abs(seq.read(i).astype(int) - streamed[i].astype(int)).mean() < 0.5, i
    copy = pickle.loads(pickle.dumps(seq))
    assert np.abs(copy.read(40).astype(int) - streamed[40].astype(int)).mean() < 0.5


def test_video_sequential_reads_keep_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sequential read(i) reuses one open decoder; a backward jump seeks instead of reopening the file."""
    path = tmp_path / "clip.mp4"
    write_video(path, n=12, gop=4)
    calls = {"open": 0, "seek": 0}
    reader_init, reader_seek = video._VideoReader.__init__, video._VideoReader.seek

    def counting_init(self: video._VideoReader, seq: VideoSequence) -> None:
        calls["open"] += 1
        reader_init(self, seq)

    def counting_seek(self: video._VideoReader, pts: int) -> None:
        calls["seek"] += 1
        reader_seek(self, pts)

    monkeypatch.setattr(video._VideoReader, "__init__", counting_init)
    monkeypatch.setattr(video._VideoReader, "seek", counting_seek)
    seq = open_source(path).sequences[0]
    for i in range(12):
        assert abs(square_x(seq.read(i)) - square_left(i)) <= 1
    assert calls == {"open": 1, "seek": 0}
    assert abs(square_x(seq.read(6)) - square_left(6)) <= 1
    assert calls == {"open": 1, "seek": 1}


def test_video_max_side(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, n=3)
    seq = open_source(path, max_side=32).sequences[0]
    assert seq.read(1).shape == (24, 32, 3)
    assert next(iter(seq)).image.shape == (24, 32, 3)


def test_folder_of_videos(tmp_path: Path) -> None:
    write_video(tmp_path / "b_clip.avi", n=5)
    write_video(tmp_path / "a_clip.mp4", n=7)
    src = open_source(tmp_path)
    assert src.kind == "videos"
    assert [s.name for s in src.sequences] == ["a_clip", "b_clip"]
    assert [len(s) for s in src.sequences] == [7, 5]
    assert sum(1 for _ in src) == 12

    (tmp_path / "c_broken.mp4").write_bytes(b"this is not a video at all" * 10)
    with pytest.raises(DataError, match="c_broken.mp4"):
        open_source(tmp_path)
    src = open_source(tmp_path, on_error="skip")
    assert [s.name for s in src.sequences] == ["a_clip", "b_clip"]
    assert len(src.skipped) == 1 and src.skipped[0][0].endswith("c_broken.mp4")


def test_video_with_corrupt_packet(tmp_path: Path) -> None:
    good = tmp_path / "good.avi"
    write_video(good, n=30, gop=5)
    with av.open(str(good)) as c:
        packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(good.read_bytes())
    pos, size = packets[15]
    for k in range(pos + 4, pos + size - 2):  # scramble the payload of frame 15 (a P-frame)
        data[k] = (data[k] * 7 + 13) & 255
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))

    seq = open_source(bad).sequences[0]
    assert len(seq) == 30  # demuxing still sees every packet
    with pytest.raises(DataError, match="bad.avi"):
        list(seq)

    src = open_source(bad, on_error="skip")
    frames = list(src)
    indices = [f.index for f in frames]
    assert 25 <= len(frames) < 30
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] == 29
    assert 15 not in indices
    for f in frames[:15]:  # frames before the damage are intact
        assert abs(square_x(f.image) - square_left(f.index)) <= 1
    assert len(src.skipped) >= 1 and all(p.endswith("bad.avi") for p, _ in src.skipped)
    with pytest.raises(DataError, match="bad.avi"):
        src.sequences[0].read(15)


# -- errors -----------------------------------------------------------------------------------------------


def test_nonexistent_and_empty_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as e:
        open_source(tmp_path / "missing")
    assert "missing" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        open_source(tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="no images or videos") as e:
        open_source(tmp_path / "docs")
    assert "docs" in str(e.value)
    with pytest.raises(DataError, match="readme.txt"):
        open_source(tmp_path / "docs" / "readme.txt")
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="zero.mp4"):
        open_source(tmp_path / "zero.mp4")


def make_bad_folder(folder: Path) -> dict[str, Path]:
    real = (DAVIS_MINI / "JPEGImages" / "bear" / "00000.jpg").read_bytes()
    files = {
        "a_good": folder / "a_good.jpg",
        "b_zero": folder / "b_zero.jpg",
        "c_text": folder / "c_text.jpg",
        "d_trunc": folder / "d_trunc.jpg",
        "e_good": folder / "e_good.jpg",
    }
    folder.mkdir(parents=True, exist_ok=True)
    files["a_good"].write_bytes(real)
    files["b_zero"].write_bytes(b"")
    files["c_text"].write_text("I am not a JPEG\n")
    files["d_trunc"].write_bytes(real[: len(real) // 2])
    files["e_good"].write_bytes(real)
    return files


@pytest.mark.parametrize("bad", ["b_zero", "c_text", "d_trunc"])
def test_bad_image_raises_naming_file(tmp_path: Path, bad: str) -> None:
    files = make_bad_folder(tmp_path / "seq")
    seq = open_source(tmp_path / "seq").sequences[0]
    assert isinstance(seq, ImageSequence)
    k = seq.frame_names.index(bad)
    with pytest.raises(DataError) as e:
        seq.read(k)
    assert e.value.path == str(files[bad])
    assert bad in str(e.value)


def test_on_error_raise_and_skip(tmp_path: Path) -> None:
    files = make_bad_folder(tmp_path / "seq")
    with pytest.raises(DataError, match="b_zero.jpg"):
        list(open_source(tmp_path / "seq"))

    src = open_source(tmp_path / "seq", on_error="skip")
    frames = list(src)
    assert [(f.name, f.index) for f in frames] == [("a_good", 0), ("e_good", 4)]
    assert [p for p, _ in src.skipped] == [str(files[k]) for k in ("b_zero", "c_text", "d_trunc")]
    assert "0 bytes" in src.skipped[0][1]
    with pytest.raises(DataError, match="c_text.jpg"):  # read() raises even with skip
        src.sequences[0].read(2)


def test_bad_on_error_value() -> None:
    from inpaintseg.errors import ConfigError

    with pytest.raises(ConfigError):
        open_source(DAVIS_MINI, on_error="ignore")


# -- split ------------------------------------------------------------------------------------------------


def test_split_sequences() -> None:
    names = [f"seq{k}" for k in range(8)]
    train, val = split_sequences(names, 0.25, seed=3)
    assert len(val) == 2 and len(train) == 6
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(names)
    assert (train, val) == split_sequences(list(reversed(names)), 0.25, seed=3)  # order-independent
    assert (train, val) == split_sequences(names, 0.25, seed=3)  # deterministic
    vals = {tuple(split_sequences(names, 0.25, seed=s)[1]) for s in range(10)}
    assert len(vals) > 1  # the seed matters

    assert split_sequences(["a", "b"], 0.1) in ((["a"], ["b"]), (["b"], ["a"]))  # >= 1 val when n >= 2
    assert split_sequences(["a"], 0.5) == (["a"], [])  # at least one train
    assert split_sequences(["a", "b", "c"], 0.0) == (["a", "b", "c"], [])
    assert len(split_sequences(["a", "b", "c"], 1.0)[0]) == 1
    assert len(split_sequences([f"s{k}" for k in range(10)], 0.35)[1]) == 4  # round(3.5) = 4 (banker's)
