"""Writing videos: overlay videos frame by frame (H.264, atomically) and the concatenation of parts."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from inpaintseg.io import atomic_open

DEFAULT_FPS = 24.0
"""Frame rate of overlay videos made from image sequences (DAVIS is 24 fps)."""


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
        if (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
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
