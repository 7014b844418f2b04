"""Opening user MP4/MOV files with FFmpeg, and reading facts every reader needs."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

# Forcing the mov demuxer (which reads MP4 too) means FFmpeg never guesses the format, so
# a file that is really a playlist (HLS, concat) cannot make it open URLs or other local
# files; external data references in the MOV itself stay off as well.
_DEMUX_FORMAT: Final = "mov"
_DEMUX_OPTIONS: Final = {
    "protocol_whitelist": "file",
    "enable_drefs": "0",
    "use_absolute_path": "0",
}


def open_mp4(path: Path) -> InputContainer:
    """Open an MP4/MOV file for reading; raises ``av.FFmpegError`` for anything else."""
    return av.open(str(path), mode="r", format=_DEMUX_FORMAT, options=dict(_DEMUX_OPTIONS))


def container_kind(container: InputContainer) -> str:
    """``"mov"`` for QuickTime files, ``"mp4"`` for the ISO family."""
    brand = container.metadata.get("major_brand", "").strip().lower()
    return "mov" if brand == "qt" else "mp4"


def stream_fps(stream: VideoStream) -> float:
    """Frames per second as declared by the stream (0.0 when it declares none)."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else 0.0


def stream_seconds(stream: VideoStream, container: InputContainer) -> float | None:
    """The video stream's length, falling back to the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def quarter_turns(frame: VideoFrame) -> int:
    """Counter-clockwise quarter turns that put the frame upright (phone videos).

    The display matrix says how far to rotate the stored picture counter-clockwise for
    display; ``numpy.rot90`` turns counter-clockwise for positive ``k``.
    """
    return round(frame.rotation / 90) % 4
