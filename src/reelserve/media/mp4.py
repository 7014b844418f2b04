"""Encode an engine's frames (and audio) into the service's output MP4, and read it back.

Output (api.md §3, engines.md "Output"): H.264 ``yuv420p`` at the exact size and frame
count asked for, AAC stereo 48 kHz when there is audio, ``+faststart`` so players can
start before the whole file arrives. The clip is produced one output frame at a time:
a 10 s 720p clip would be ~670 MB as one uint8 array.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import numpy as np
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.reformatter import ColorRange, Colorspace

from reelserve.core.render import Audio, Frames
from reelserve.media.containers import open_mp4, stream_fps, stream_seconds
from reelserve.media.frames import fit_frame

OUTPUT_SAMPLE_RATE: Final = 48_000
DEFAULT_CRF: Final = 20
DEFAULT_PRESET: Final = "fast"
_AUDIO_BIT_RATE: Final = 192_000
_AAC_FRAME_SAMPLES: Final = 1024
# AVCOL_PRI_BT709, AVCOL_TRC_BT709 and AVCOL_SPC_BT709 all have the value 1; AVCOL_RANGE_MPEG
# (limited range) is 1 too. Tagging them stops players guessing BT.601 for HD video.
_BT709: Final = 1
_LIMITED_RANGE: Final = 1


@dataclass(frozen=True)
class OutputInfo:
    width: int
    height: int
    duration: float  # seconds, 2 decimals, from the video stream
    fps: float
    has_audio: bool
    video_codec: str
    pix_fmt: str
    audio_codec: str | None
    audio_channels: int | None
    audio_sample_rate: int | None


def source_index(index: int, num_frames: int, source_frames: int) -> int:
    """The source frame shown as output frame ``index``: nearest, first and last aligned."""
    if num_frames <= 1 or source_frames <= 1:
        return 0
    span_out, span_in = num_frames - 1, source_frames - 1
    # round(index * span_in / span_out), in integers so it is exact and monotonic.
    return (2 * index * span_in + span_out) // (2 * span_out)


def _check_arguments(
    frames: Frames,
    audio: Audio | None,
    sample_rate: int | None,
    *,
    width: int,
    height: int,
    num_frames: int,
    fps: int,
) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] < 1:
        raise ValueError("frames must hold at least one frame")
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be even and positive, got {width}x{height}")
    if num_frames < 1 or fps < 1:
        raise ValueError(f"num_frames and fps must be positive, got {num_frames}, {fps}")
    if audio is not None and (sample_rate is None or sample_rate <= 0):
        raise ValueError("audio needs a positive sample_rate")


def stereo_48k(audio: Audio, sample_rate: int, total_samples: int) -> Audio:
    """``audio`` as float32 (2, total_samples) at 48 kHz: upmixed, resampled, trimmed or padded."""
    pcm = np.asarray(audio, dtype=np.float32)
    if pcm.ndim == 1:
        pcm = pcm[None, :]
    if pcm.ndim != 2 or pcm.shape[0] < 1:
        raise ValueError(f"audio must be (channels, samples), got {pcm.shape}")
    pcm = np.clip(np.nan_to_num(pcm, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    if pcm.shape[0] == 1:
        # Copy mono to both sides; a mixer's mono->stereo would pan it 3 dB quieter.
        pcm = np.repeat(pcm, 2, axis=0)
    elif pcm.shape[0] > 2:
        pcm = pcm[:2]  # front left and right come first in every standard layout
    pcm = np.ascontiguousarray(pcm, dtype=np.float32)
    if sample_rate != OUTPUT_SAMPLE_RATE and pcm.shape[1] > 0:
        pcm = _resample(pcm, sample_rate)
    if pcm.shape[1] >= total_samples:
        return np.ascontiguousarray(pcm[:, :total_samples])
    padded = np.zeros((2, total_samples), dtype=np.float32)
    padded[:, : pcm.shape[1]] = pcm
    return padded


def _resample(pcm: Audio, sample_rate: int) -> Audio:
    frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
    frame.sample_rate = sample_rate
    frame.pts = 0
    resampler = AudioResampler(format="fltp", layout="stereo", rate=OUTPUT_SAMPLE_RATE)
    pieces = [f.to_ndarray() for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(pieces, axis=1).astype(np.float32, copy=False)


def _output_frames(frames: Frames, *, width: int, height: int, num_frames: int) -> Iterator[Frames]:
    """Each output frame at the exact size, resizing each source frame at most once in a row."""
    cached_index, cached = -1, frames[0]
    for index in range(num_frames):
        wanted = source_index(index, num_frames, frames.shape[0])
        if wanted != cached_index:
            cached_index = wanted
            cached = fit_frame(np.ascontiguousarray(frames[wanted]), width, height)
        yield cached


class _AudioTrack:
    """Feeds 48 kHz stereo PCM to the AAC encoder in step with the video."""

    def __init__(self, container: OutputContainer, pcm: Audio) -> None:
        stream = container.add_stream("aac", rate=OUTPUT_SAMPLE_RATE)
        stream.codec_context.layout = "stereo"
        stream.codec_context.bit_rate = _AUDIO_BIT_RATE
        self._stream: AudioStream = stream
        self._container = container
        self._pcm = pcm
        self._cursor = 0

    def write_until(self, sample: int) -> None:
        end = min(sample, self._pcm.shape[1])
        while self._cursor < end:
            stop = min(self._cursor + _AAC_FRAME_SAMPLES, self._pcm.shape[1])
            chunk = np.ascontiguousarray(self._pcm[:, self._cursor : stop])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = OUTPUT_SAMPLE_RATE
            frame.pts = self._cursor
            frame.time_base = Fraction(1, OUTPUT_SAMPLE_RATE)
            self._container.mux(self._stream.encode(frame))
            self._cursor = stop

    def finish(self) -> None:
        self.write_until(self._pcm.shape[1])
        self._container.mux(self._stream.encode(None))


def _encode(
    target: Path,
    frames: Frames,
    pcm: Audio | None,
    *,
    width: int,
    height: int,
    num_frames: int,
    fps: int,
    crf: int,
    preset: str,
) -> None:
    with av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        codec = video.codec_context
        codec.options = {"crf": str(crf), "preset": preset}
        codec.color_primaries = codec.color_trc = codec.colorspace = _BT709
        codec.color_range = _LIMITED_RANGE
        audio = _AudioTrack(out, pcm) if pcm is not None else None
        per_frame = Fraction(OUTPUT_SAMPLE_RATE, fps)
        rgb_frames = _output_frames(frames, width=width, height=height, num_frames=num_frames)
        for index, rgb in enumerate(rgb_frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
            )
            picture.pts = index
            picture.time_base = Fraction(1, fps)
            out.mux(video.encode(picture))
            if audio is not None:
                # Interleave: audio up to the end of this frame, so the muxer holds little.
                audio.write_until(int((index + 1) * per_frame))
        out.mux(video.encode(None))
        if audio is not None:
            audio.finish()


def write_mp4(
    path: Path,
    frames: Frames,
    audio: Audio | None,
    sample_rate: int | None,
    *,
    width: int,
    height: int,
    num_frames: int,
    fps: int,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
) -> OutputInfo:
    """Write the output MP4 and return what the written file says about itself.

    ``frames`` (TxHxWx3 uint8, any size and count) become exactly ``num_frames`` frames of
    ``width`` x ``height`` at ``fps``; ``audio`` (channels x samples float32 at
    ``sample_rate``) becomes AAC stereo 48 kHz lasting exactly ``num_frames / fps``.
    The file appears at ``path`` only once complete (written beside it, then renamed).
    """
    _check_arguments(
        frames, audio, sample_rate, width=width, height=height, num_frames=num_frames, fps=fps
    )
    pcm = None
    if audio is not None and sample_rate is not None:
        total = round(num_frames * OUTPUT_SAMPLE_RATE / fps)
        pcm = stereo_48k(audio, sample_rate, total)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        _encode(
            partial,
            frames,
            pcm,
            width=width,
            height=height,
            num_frames=num_frames,
            fps=fps,
            crf=crf,
            preset=preset,
        )
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return probe_output(path)


def probe_output(path: Path) -> OutputInfo:
    """Size, length, rate and tracks of an MP4, read from the file itself."""
    with open_mp4(path) as container:
        video = container.streams.video[0]
        seconds = stream_seconds(video, container) or 0.0
        audio = container.streams.audio[0] if container.streams.audio else None
        codec = video.codec_context
        return OutputInfo(
            width=codec.width,
            height=codec.height,
            duration=round(seconds, 2),
            fps=stream_fps(video),
            has_audio=audio is not None,
            video_codec=video.codec.canonical_name,
            pix_fmt=codec.pix_fmt or (codec.format.name if codec.format else ""),
            audio_codec=audio.codec.canonical_name if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        )
