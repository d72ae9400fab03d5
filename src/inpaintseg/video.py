"""Video files: reading them as sequences of frames (PyAV; :class:`VideoSequence`, random access by frame index
with a forward-decode window), writing overlay videos frame by frame (H.264, atomically) and concatenating
parts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from inpaintseg.data.image_io import resize_image
from inpaintseg.data.sources import Frame, Sequence, _fit_size
from inpaintseg.errors import DataError
from inpaintseg.io import atomic_open

# read(i) on a video decodes forward from the current position when frame i is at most this many frames
# ahead; further jumps (and any backward jump) seek to the nearest keyframe instead.
_MAX_FORWARD_DECODE = 48
DEFAULT_FPS = 24.0
"""Frame rate of overlay videos made from image sequences (DAVIS is 24 fps)."""


class _VideoProbe:
    """What one pass of demuxing (no decoding) tells about a video's frames."""

    def __init__(self, count: int, pts: list[int] | None, fps: float | None) -> None:
        self.count = count
        # Presentation timestamps of frames 0..count-1 (sorted), or None when packets lack unique pts.
        self.pts = pts
        self.pts_to_index = {p: k for k, p in enumerate(pts)} if pts is not None else None
        self.fps = fps
        self.names = [f"{k:05d}" for k in range(count)]


def _av_error_text(e: Exception) -> str:
    return f"{e.__class__.__name__}: {e}"


def _open_container(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a video file and its first video stream; DataError naming the file on failure."""
    if not path.exists():
        raise DataError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DataError(path, f"cannot open video ({_av_error_text(e)})") from None
    if not container.streams.video:
        container.close()
        raise DataError(path, "file has no video stream")
    return container, container.streams.video[0]


class _VideoReader:
    """An open container plus a frame generator and its position, for O(1) sequential ``read``."""

    def __init__(self, seq: VideoSequence) -> None:
        self.seq = seq
        self.container, self.stream = _open_container(seq.path)
        self.frames = seq._decode(self.container, self.stream, on_bad=None)
        self.next_index = 0  # frame index the generator is positioned at (it yields frames >= this)

    def close(self) -> None:
        self.container.close()

    def seek(self, pts: int) -> None:
        """Jump to the keyframe at or before ``pts`` (decoder buffers are flushed by PyAV's seek)."""
        self.frames.close()
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        self.frames = self.seq._decode(self.container, self.stream, on_bad=None)
        self.next_index = 0  # unknown until the first decoded frame; only used as a lower bound

    def take(self, i: int) -> np.ndarray | None:
        """Decode forward until frame i; None if the stream passes i (or ends) without producing it."""
        for index, image in self.frames:
            self.next_index = index + 1
            if index == i:
                return image
            if index > i:
                return None
        self.next_index = self.seq._probe_result().count
        return None


class VideoSequence(Sequence):
    """A sequence stored as one video file, decoded with PyAV.

    The frame count comes from one pass of demuxing packets (container headers are often 0 or wrong);
    frames are named ``00000``, ``00001``, ... by their presentation order, so a frame that cannot be
    decoded leaves a gap instead of renaming the frames after it. ``__iter__`` decodes sequentially with
    constant memory; ``read(i)`` keeps an open decoder, so sequential reads cost one frame each and other
    jumps seek to the nearest keyframe. Rotation metadata of phone videos is not applied.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        max_side: int | None = 4096,
        on_error: str = "raise",
        skipped: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(name or path.stem, path, on_error, [] if skipped is None else skipped)
        self.max_side = max_side
        self._probe: _VideoProbe | None = None
        self._reader: _VideoReader | None = None
        container, stream = _open_container(path)  # fail early on files that are not videos
        with container:
            self.fps = _stream_fps(stream)

    # -- frame count ------------------------------------------------------------------------------------

    def _probe_result(self) -> _VideoProbe:
        if self._probe is None:
            try:
                self._probe = _probe_video(self.path)
            except DataError as e:
                if self.on_error == "raise":
                    raise
                self._record(e.path, e.problem)
                self._probe = _VideoProbe(0, [], self.fps)
        return self._probe

    @property
    def frame_names(self) -> list[str]:
        return self._probe_result().names

    def __len__(self) -> int:
        return self._probe_result().count

    # -- decoding ---------------------------------------------------------------------------------------

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        image = frame.to_ndarray(format="rgb24")
        h, w = image.shape[:2]
        new_w, new_h = _fit_size(w, h, self.max_side)
        if (new_w, new_h) != (w, h):
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image)

    def _decode(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        on_bad: Callable[[str], None] | None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame index, RGB uint8 (H, W, 3)) from the container's current position.

        Undecodable packets are reported to ``on_bad(problem)`` (which may raise) and decoding goes on
        with the next packet; ``on_bad=None`` ignores them.
        """
        probe = self._probe_result()
        count = probe.count
        last = -1
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as e:  # container damaged from here on
                if on_bad is not None:
                    on_bad(f"cannot demux after frame {last} ({_av_error_text(e)})")
                return
            try:
                decoded = packet.decode()
            except (av.FFmpegError, OSError) as e:
                if on_bad is not None:
                    on_bad(f"cannot decode a packet after frame {last} ({_av_error_text(e)})")
                continue
            for frame in decoded:
                index = None
                if probe.pts_to_index is not None and frame.pts is not None:
                    index = probe.pts_to_index.get(frame.pts)
                if index is None:
                    index = last + 1
                if index >= count:  # more frames than packets: cannot be named consistently
                    continue
                last = index
                yield index, self._to_rgb(frame)

    def __iter__(self) -> Iterator[Frame]:
        if len(self) == 0:
            return
        try:
            container, stream = _open_container(self.path)
        except DataError as e:
            if self.on_error == "raise":
                raise
            self._record(e.path, e.problem)
            return

        def on_bad(problem: str) -> None:
            if self.on_error == "raise":
                raise DataError(self.path, problem)
            self._record(self.path, problem)

        with container:
            for index, image in self._decode(container, stream, on_bad):
                yield Frame(self.name, f"{index:05d}", index, image)

    def read(self, i: int) -> np.ndarray:
        self._check_index(i)
        probe = self._probe_result()
        reader = self._reader
        if reader is None:
            reader = self._reader = _VideoReader(self)
        if i < reader.next_index or i - reader.next_index > _MAX_FORWARD_DECODE:
            try:
                if probe.pts is None:
                    raise ValueError("no timestamps to seek to")
                reader.seek(probe.pts[i])
            except (av.FFmpegError, OSError, ValueError):  # not seekable: decode again from the start
                reader.close()
                reader = self._reader = _VideoReader(self)
        image = reader.take(i)
        if image is None and probe.pts is not None and i < reader.next_index:
            # The seek landed after frame i (imprecise index) or frame i was not decodable: retry from the
            # start of the file, decoding sequentially.
            reader.close()
            reader = self._reader = _VideoReader(self)
            image = reader.take(i)
        if image is None:
            raise DataError(self.path, f"frame {i} cannot be decoded")
        return image

    def close(self) -> None:
        """Release the decoder kept open by ``read`` (reopened on the next read)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __getstate__(self) -> dict:
        # Open decoders cannot be pickled (DataLoader workers): each copy opens its own.
        state = self.__dict__.copy()
        state["_reader"] = None
        return state


def _stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


def _probe_video(path: Path) -> _VideoProbe:
    """Count a video's frames by demuxing its packets once (no decoding)."""
    container, stream = _open_container(path)
    pts: list[int] = []
    missing_pts = False
    count = 0
    with container:
        fps = _stream_fps(stream)
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # flush packet at the end
                    continue
                count += 1
                if packet.pts is None:
                    missing_pts = True
                else:
                    pts.append(int(packet.pts))
        except (av.FFmpegError, OSError):
            pass  # damaged tail: count what could be read; decoding reports the problem
    if count == 0:
        raise DataError(path, "video has no frames")
    unique = not missing_pts and len(set(pts)) == len(pts)
    return _VideoProbe(count, sorted(pts) if unique else None, fps)


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
        image = resize_image(image, self._size, cv2.INTER_AREA)
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
