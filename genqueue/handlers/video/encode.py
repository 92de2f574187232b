"""MP4 in and out, with PyAV (its wheels bundle FFmpeg and libx264, so nothing to install).

Encoding writes what every browser plays: H.264 High profile, yuv420p, the ``moov`` atom up
front (``+faststart``) so playback starts before the download ends. Probing reads a file back to
measure it (size, rate, frame count, duration), for our own videos and the cloud's alike.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class VideoInfo:
    """A video as measured from its file."""

    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    codec: str


class NotAVideoError(ValueError):
    """The bytes are not a video FFmpeg can read."""


def encode_mp4(
    frames: Iterable[U8],
    *,
    width: int,
    height: int,
    fps: int,
    on_frame: Callable[[int], None] | None = None,
    crf: int = 23,
) -> bytes:
    """Encode RGB frames to an H.264 MP4 and return its bytes. Deterministic: the same frames
    give the same bytes (mbtree off, see _yuv_frame; no creation time is written)."""
    # A real file, not a BytesIO: +faststart rewrites the file by reopening it by name.
    with tempfile.TemporaryDirectory(prefix="genqueue-video-") as folder:
        path = Path(folder) / "video.mp4"
        _encode_to(path, frames, width, height, fps, on_frame, crf)
        return path.read_bytes()


def _encode_to(
    path: Path,
    frames: Iterable[U8],
    width: int,
    height: int,
    fps: int,
    on_frame: Callable[[int], None] | None,
    crf: int,
) -> None:
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # mbtree=0: x264's macroblock-tree rate control makes the same frames come out as
        # different bytes from run to run (measured); without it the output is repeatable.
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "profile": "high",
            "x264-params": "mbtree=0",
        }
        for index, rgb in enumerate(frames):
            out.mux(stream.encode(_yuv_frame(rgb, index, fps)))
            if on_frame is not None:
                on_frame(index + 1)
        out.mux(stream.encode(None))  # flush the encoder's delayed frames


def _yuv_frame(rgb: U8, index: int, fps: int) -> av.VideoFrame:
    """One frame as x264 takes it, made repeatable: explicit timestamps (else its rate control
    sees undefined ones) and the row padding of each plane filled by repeating the edge pixel
    (x264 reads it, and FFmpeg leaves it uninitialised when the width is not aligned)."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    for plane in frame.planes:
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        rows[:, plane.width :] = rows[:, plane.width - 1 : plane.width]
    frame.pts, frame.time_base = index, Fraction(1, fps)
    return frame


def probe_mp4(data: bytes) -> VideoInfo:
    """Measure a video file's first video stream; raise NotAVideoError if there is none."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise NotAVideoError("the file has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / av.time_base
            return VideoInfo(
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                fps=round(float(rate), 3),
                frames=frames,
                duration_s=round(duration, 3),
                codec=stream.codec_context.name,
            )
    except av.FFmpegError as exc:
        raise NotAVideoError(f"not a readable video: {exc}") from exc


def decode_frames(data: bytes) -> list[U8]:
    """Every frame of a video as RGB arrays (for tests and checks; loads it all in memory)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        return [
            np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in container.decode(video=0)
        ]
