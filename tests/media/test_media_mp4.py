"""The output MP4, checked from the written file rather than from what was asked for."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from reelserve.core.render import Audio, Frames
from reelserve.media.frames import fit_frame
from reelserve.media.mp4 import (
    OUTPUT_SAMPLE_RATE,
    OutputInfo,
    probe_output,
    source_index,
    stereo_48k,
    write_mp4,
)

# The size tests only care about geometry; the quickest x264 preset keeps them cheap.
QUICK = "ultrafast"


def tiny_frames(count: int = 9, width: int = 64, height: int = 36) -> Frames:
    """Smooth colour ramps that shift from frame to frame: easy to compare after encoding."""
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        shift = index / count
        frames[index, ..., 0] = 255 * ((x + shift) % 1)
        frames[index, ..., 1] = 255 * np.broadcast_to(y, (height, width))
        frames[index, ..., 2] = 40 + 200 * index // count
    return frames


def tone(seconds: float, rate: int, channels: int = 1) -> Audio:
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    wave = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.repeat(wave[None, :], channels, axis=0)


@dataclass(frozen=True)
class Measured:
    """What a decoder finds in the file."""

    video_codec: str
    pix_fmt: str
    width: int
    height: int
    frames: int
    first: Frames
    last: Frames
    audio_codec: str | None
    audio_channels: int | None
    audio_rate: int | None
    audio_seconds: float | None


def measure(path: Path) -> Measured:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        first = last = None
        count = 0
        for frame in container.decode(video):
            first = first or frame
            last = frame
            count += 1
        assert first is not None
        assert last is not None
    with av.open(str(path)) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = None
        if audio is not None:
            samples = sum(f.samples for f in container.decode(audio))
            audio_seconds = samples / audio.codec_context.sample_rate
        return Measured(
            video_codec=video.codec_context.name,
            pix_fmt=video.codec_context.pix_fmt or "",
            width=video.codec_context.width,
            height=video.codec_context.height,
            frames=count,
            first=first.to_ndarray(format="rgb24"),
            last=last.to_ndarray(format="rgb24"),
            audio_codec=audio.codec_context.name if audio else None,
            audio_channels=audio.codec_context.channels if audio else None,
            audio_rate=audio.codec_context.sample_rate if audio else None,
            audio_seconds=audio_seconds,
        )


def top_level_boxes(path: Path) -> list[str]:
    """The order of the MP4's top-level boxes (ISO/IEC 14496-12 framing)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


@dataclass(frozen=True)
class Written:
    path: Path
    info: OutputInfo
    source: Frames
    found: Measured


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """9 tiny frames and 1 s of 16 kHz mono, written as a 5 s 720p clip with default settings."""
    path = tmp_path_factory.mktemp("mp4") / "landscape.mp4"
    frames = tiny_frames()
    info = write_mp4(
        path, frames, tone(1.0, 16_000), 16_000, width=1280, height=720, num_frames=121, fps=24
    )
    return Written(path, info, frames, measure(path))


def test_landscape_clip_is_exactly_what_the_api_promises(
    landscape: Written,
) -> None:
    found = landscape.found
    assert (found.video_codec, found.pix_fmt) == ("h264", "yuv420p")
    assert (found.width, found.height) == (1280, 720)
    assert found.frames == 121
    assert (found.audio_codec, found.audio_channels, found.audio_rate) == ("aac", 2, 48_000)
    assert found.audio_seconds == pytest.approx(121 / 24, abs=0.03)


def test_probe_output_reads_the_file(landscape: Written) -> None:
    assert landscape.info == probe_output(landscape.path)
    assert landscape.info == OutputInfo(
        width=1280,
        height=720,
        duration=5.04,
        fps=24.0,
        has_audio=True,
        video_codec="h264",
        pix_fmt="yuv420p",
        audio_codec="aac",
        audio_channels=2,
        audio_sample_rate=48_000,
    )


def test_moov_comes_before_mdat(landscape: Written) -> None:
    boxes = top_level_boxes(landscape.path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_first_and_last_frames_show_the_first_and_last_source_frames(
    landscape: Written,
) -> None:
    found, frames = landscape.found, landscape.source
    for decoded, source in ((found.first, frames[0]), (found.last, frames[-1])):
        expected = fit_frame(source, 1280, 720).astype(np.int16)
        assert np.abs(decoded.astype(np.int16) - expected).mean() < 6


def test_no_audio_gives_no_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    info = write_mp4(
        path,
        tiny_frames(),
        None,
        None,
        width=720,
        height=1280,
        num_frames=121,
        fps=24,
        preset=QUICK,
    )
    found = measure(path)
    assert (found.width, found.height, found.frames) == (720, 1280, 121)
    assert found.audio_codec is None
    assert not info.has_audio
    assert info.audio_codec is None
    assert info.duration == 5.04


def test_square_clip_with_long_stereo_audio_is_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "square.mp4"
    audio = tone(8.0, 44_100, channels=2)  # longer than the video: must be cut to 5.04 s
    info = write_mp4(
        path,
        tiny_frames(),
        audio,
        44_100,
        width=960,
        height=960,
        num_frames=121,
        fps=24,
        preset=QUICK,
    )
    found = measure(path)
    assert (found.width, found.height, found.frames) == (960, 960, 121)
    assert found.audio_seconds == pytest.approx(121 / 24, abs=0.03)
    assert (info.width, info.height, info.duration, info.audio_channels) == (960, 960, 5.04, 2)


def test_frame_count_and_rate_follow_the_request(tmp_path: Path) -> None:
    path = tmp_path / "ten.mp4"
    info = write_mp4(
        path,
        tiny_frames(count=30),
        None,
        None,
        width=64,
        height=64,
        num_frames=10,
        fps=30,
        preset=QUICK,
    )
    assert measure(path).frames == 10
    assert (info.fps, info.duration) == (30.0, 0.33)


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(av.FFmpegError):
        write_mp4(
            path,
            tiny_frames(),
            None,
            None,
            width=64,
            height=64,
            num_frames=5,
            fps=24,
            preset="no-such-preset",
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 1281}, "even"),
        ({"height": 0}, "even"),
        ({"num_frames": 0}, "positive"),
        ({"fps": 0}, "positive"),
    ],
)
def test_bad_arguments(kwargs: dict[str, int], message: str, tmp_path: Path) -> None:
    arguments = {"width": 64, "height": 64, "num_frames": 5, "fps": 24} | kwargs
    with pytest.raises(ValueError, match=message):
        write_mp4(tmp_path / "x.mp4", tiny_frames(), None, None, **arguments)


def test_frames_must_be_uint8_rgb(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(
            tmp_path / "x.mp4",
            tiny_frames().astype(np.float32),  # type: ignore[arg-type]
            None,
            None,
            width=64,
            height=64,
            num_frames=5,
            fps=24,
        )


def test_source_index_is_monotonic_and_aligned() -> None:
    indices = [source_index(i, 121, 9) for i in range(121)]
    assert indices[0] == 0
    assert indices[-1] == 8
    assert indices == sorted(indices)
    assert set(indices) == set(range(9))
    assert [source_index(i, 5, 5) for i in range(5)] == [0, 1, 2, 3, 4]
    assert [source_index(i, 3, 1) for i in range(3)] == [0, 0, 0]
    assert source_index(0, 1, 7) == 0


def test_stereo_48k_upmixes_mono_by_copying() -> None:
    mono = tone(1.0, OUTPUT_SAMPLE_RATE)
    stereo = stereo_48k(mono, OUTPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE)
    assert stereo.shape == (2, OUTPUT_SAMPLE_RATE)
    np.testing.assert_array_equal(stereo[0], mono[0])
    np.testing.assert_array_equal(stereo[1], mono[0])


def test_stereo_48k_resamples_pads_and_cleans() -> None:
    audio = tone(0.5, 16_000)
    audio[0, 10] = np.nan
    out = stereo_48k(audio, 16_000, OUTPUT_SAMPLE_RATE)  # 0.5 s of sound in 1 s
    assert out.shape == (2, OUTPUT_SAMPLE_RATE)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.abs(out[:, : OUTPUT_SAMPLE_RATE // 2 - 100]).max() > 0.3
    assert not out[:, OUTPUT_SAMPLE_RATE // 2 + 100 :].any()
