"""Decoding inputs into engine arrays: size, orientation, crop, audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reelserve.core.errors import InvalidInput
from reelserve.media.frames import fit_frame, load_image, read_audio, read_video


def test_load_image_has_the_exact_size(fixtures_dir: Path) -> None:
    frame = load_image(fixtures_dir / "landscape_640x360.png", width=1280, height=720)
    assert frame.shape == (720, 1280, 3)
    assert frame.dtype == np.uint8
    # The fixture's red rises left to right and green top to bottom; nothing got flipped.
    assert frame[360, 10, 0] < frame[360, -10, 0]
    assert frame[10, 640, 1] < frame[-10, 640, 1]


def test_load_image_centre_crops_to_the_ratio(fixtures_dir: Path) -> None:
    frame = load_image(fixtures_dir / "landscape_640x360.png", width=960, height=960)
    assert frame.shape == (960, 960, 3)
    # The middle 360x360 of a 640-wide ramp keeps columns 140..499: red from ~56 to ~199.
    assert frame[480, 0, 0] == pytest.approx(255 * 140 / 639, abs=4)
    assert frame[480, -1, 0] == pytest.approx(255 * 499 / 639, abs=4)


@pytest.mark.parametrize("name", ["square_480x480.jpg", "portrait_360x640.webp"])
def test_load_image_other_formats(name: str, fixtures_dir: Path) -> None:
    assert load_image(fixtures_dir / name, width=720, height=1280).shape == (1280, 720, 3)


def test_load_image_applies_exif_orientation(fixtures_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored turned a quarter clockwise
    with Image.open(fixtures_dir / "landscape_640x360.png") as source:
        source.save(path, quality=95, exif=exif)
    frame = load_image(path, width=360, height=640)
    assert frame.shape == (640, 360, 3)
    # Turned clockwise: the red ramp now runs top to bottom, the green one right to left.
    assert frame[20, 180, 0] < frame[-20, 180, 0]
    assert frame[320, 20, 1] > frame[320, -20, 1]


def test_load_image_flattens_transparency_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (400, 400), (0, 0, 0, 0)).save(path)
    frame = load_image(path, width=64, height=64)
    assert (frame == 255).all()


def test_load_image_refuses_undecodable(fixtures_dir: Path) -> None:
    with pytest.raises(InvalidInput):
        load_image(fixtures_dir / "truncated_480x480.jpg", width=64, height=64)
    with pytest.raises(InvalidInput):
        load_image(fixtures_dir / "not_an_image.png", width=64, height=64)


def test_fit_frame_keeps_a_frame_of_the_right_size() -> None:
    frame = np.zeros((36, 64, 3), dtype=np.uint8)
    assert fit_frame(frame, 64, 36) is frame
    assert fit_frame(frame, 32, 32).shape == (32, 32, 3)


def test_read_video_all_frames(fixtures_dir: Path) -> None:
    frames, fps = read_video(fixtures_dir / "clip_3.5s_av.mp4", max_frames=1000)
    assert frames.shape == (84, 240, 320, 3)
    assert frames.dtype == np.uint8
    assert fps == 24.0


def test_read_video_caps_and_resizes(fixtures_dir: Path) -> None:
    frames, fps = read_video(fixtures_dir / "clip_3s.mov", max_frames=10, width=64, height=64)
    assert frames.shape == (10, 64, 64, 3)
    assert fps == 24.0


def test_read_video_needs_both_sides(fixtures_dir: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        read_video(fixtures_dir / "clip_3s.mov", max_frames=1, width=64)


def test_read_video_refuses_non_video(fixtures_dir: Path) -> None:
    with pytest.raises(InvalidInput):
        read_video(fixtures_dir / "landscape_640x360.png", max_frames=1)


def test_read_video_turns_phone_video_upright(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    stored = np.zeros((64, 96, 3), dtype=np.uint8)
    stored[:16, :16] = 255  # a white mark in the stored top-left corner
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.options = {"crf": "10"}
        stream.set_display_rotation(-90)  # what a phone writes for portrait: turn clockwise
        frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
        frame.pts, frame.time_base = 0, Fraction(1, 24)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    frames, _ = read_video(path, max_frames=1)
    assert frames.shape == (1, 96, 64, 3)
    # A clockwise quarter turn takes the top-left corner to the top-right.
    assert frames[0, :12, -12:].mean() > 200
    assert frames[0, :12, :12].mean() < 50


def test_read_audio(fixtures_dir: Path) -> None:
    result = read_audio(fixtures_dir / "clip_3.5s_av.mp4")
    assert result is not None
    audio, rate = result
    assert rate == 44100
    assert audio.dtype == np.float32
    assert audio.shape == (2, round(3.5 * 44100))
    spectrum = np.abs(np.fft.rfft(audio[0]))
    assert np.argmax(spectrum) * rate / audio.shape[1] == pytest.approx(440, abs=2)


def test_read_audio_without_audio(fixtures_dir: Path) -> None:
    assert read_audio(fixtures_dir / "clip_4s_silent.mp4") is None
