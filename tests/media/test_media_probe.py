"""Input probing: types come from the bytes, limits give messages naming field and rule."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reelserve.core.errors import InputTooLarge, InvalidInput
from reelserve.media.probe import ImageInfo, VideoInfo, probe_image, probe_video

IMAGE = "image_url"
VIDEO = "video_url"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but carries no pixels: enough to trip a bomb check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def write_clip(
    path: Path, *, codec: str, width: int, height: int, frames: int, rotation: int = 0
) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            rgb = np.full((height, width, 3), index * 8 % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


# --- images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("landscape_640x360.png", ImageInfo("png", 640, 360)),
        ("square_480x480.jpg", ImageInfo("jpeg", 480, 480)),
        ("portrait_360x640.webp", ImageInfo("webp", 360, 640)),
    ],
)
def test_good_images_are_accepted(name: str, expected: ImageInfo, fixtures_dir: Path) -> None:
    assert probe_image(fixtures_dir / name, field=IMAGE) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("too_small_200x200.png", "image_url: image sides must be at least 300 px (got 200x200)"),
        (
            "too_wide_1000x300.png",
            "image_url: image aspect ratio must be between 1:2.5 and 2.5:1 (got 1000x300)",
        ),
        ("not_an_image.png", "image_url: must be a JPEG, PNG or WebP image"),
        ("truncated_480x480.jpg", "image_url: image could not be decoded (truncated or corrupt)"),
        ("clip_3.5s_av.mp4", "image_url: must be a JPEG, PNG or WebP image"),
    ],
)
def test_bad_images_are_refused(name: str, message: str, fixtures_dir: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        probe_image(fixtures_dir / name, field=IMAGE)
    assert caught.value.message == message
    assert caught.value.field == IMAGE


def test_image_over_the_byte_limit(fixtures_dir: Path) -> None:
    with pytest.raises(InputTooLarge) as caught:
        probe_image(fixtures_dir / "square_480x480.jpg", field="end_image_url", max_bytes=1000)
    assert caught.value.message == "end_image_url: file must be at most 1000 bytes"
    assert caught.value.field == "end_image_url"


@pytest.mark.parametrize(("width", "height"), [(1000, 400), (400, 1000)])
def test_ratio_limit_is_inclusive(width: int, height: int, tmp_path: Path) -> None:
    path = tmp_path / "edge.png"
    Image.new("RGB", (width, height), (10, 20, 30)).save(path)
    assert probe_image(path, field=IMAGE) == ImageInfo("png", width, height)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_refused(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "picture.png"  # the name lies; the bytes decide
    Image.new("RGB", (400, 400), (1, 2, 3)).save(path, format=fmt)
    with pytest.raises(InvalidInput, match="must be a JPEG, PNG or WebP image"):
        probe_image(path, field=IMAGE)


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(8000, 7000))  # 56 MP declared, 60 bytes on disk
    with pytest.raises(InvalidInput) as caught:
        probe_image(path, field=IMAGE)
    assert caught.value.message == "image_url: image must be at most 50 megapixels (got 8000x7000)"


def test_huge_bomb_caught_by_pillow_is_refused_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000))
    with pytest.raises(InvalidInput, match=r"^image_url: image must be at most 50 megapixels"):
        probe_image(path, field=IMAGE)


def test_exif_orientation_decides_the_reported_size(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated a quarter turn
    Image.new("RGB", (640, 360), (200, 100, 50)).save(path, exif=exif)
    assert probe_image(path, field=IMAGE) == ImageInfo("jpeg", 360, 640)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput, match="image_url: file is empty"):
        probe_image(path, field=IMAGE)


# --- videos --------------------------------------------------------------------------------


def test_clip_with_audio(fixtures_dir: Path) -> None:
    info = probe_video(
        fixtures_dir / "clip_3.5s_av.mp4", field=VIDEO, min_seconds=3, max_seconds=10
    )
    assert info == VideoInfo(
        container="mp4",
        codec="h264",
        width=320,
        height=240,
        fps=24.0,
        duration=3.5,
        has_audio=True,
        audio_sample_rate=44100,
    )


def test_silent_clip(fixtures_dir: Path) -> None:
    info = probe_video(
        fixtures_dir / "clip_4s_silent.mp4", field=VIDEO, min_seconds=3, max_seconds=30
    )
    assert (info.duration, info.has_audio, info.audio_sample_rate) == (4.0, False, None)


def test_mov_is_accepted(fixtures_dir: Path) -> None:
    info = probe_video(fixtures_dir / "clip_3s.mov", field=VIDEO, min_seconds=3, max_seconds=30)
    assert (info.container, info.codec, info.duration) == ("mov", "h264", 3.0)


def test_too_short_clip(fixtures_dir: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        probe_video(
            fixtures_dir / "clip_2s_too_short.mp4",
            field=VIDEO,
            min_seconds=3,
            max_seconds=10,
            length_context="with character_orientation=image",
        )
    assert caught.value.message == (
        "video_url: reference video must be 3–10 s long with character_orientation=image "
        "(got 2.0 s)"
    )
    assert caught.value.field == VIDEO


def test_too_long_clip(fixtures_dir: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        probe_video(fixtures_dir / "clip_4s_silent.mp4", field=VIDEO, min_seconds=1, max_seconds=3)
    assert caught.value.message == "video_url: reference video must be 1–3 s long (got 4.0 s)"


def test_video_over_the_byte_limit(fixtures_dir: Path) -> None:
    with pytest.raises(InputTooLarge, match=r"^video_url: file must be at most 1000 bytes$"):
        probe_video(
            fixtures_dir / "clip_3.5s_av.mp4",
            field=VIDEO,
            max_bytes=1000,
            min_seconds=3,
            max_seconds=10,
        )


@pytest.mark.parametrize(
    "name", ["landscape_640x360.png", "not_an_image.png", "truncated_480x480.jpg"]
)
def test_non_videos_are_refused(name: str, fixtures_dir: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        probe_video(fixtures_dir / name, field=VIDEO, min_seconds=3, max_seconds=10)
    assert caught.value.message == "video_url: must be an MP4 or MOV video"


def test_disguised_files_are_judged_by_their_bytes(fixtures_dir: Path, tmp_path: Path) -> None:
    png_named_mp4 = tmp_path / "clip.mp4"
    shutil.copy(fixtures_dir / "landscape_640x360.png", png_named_mp4)
    mp4_named_png = tmp_path / "photo.png"
    shutil.copy(fixtures_dir / "clip_3.5s_av.mp4", mp4_named_png)

    assert probe_image(png_named_mp4, field=IMAGE).format == "png"
    with pytest.raises(InvalidInput, match="must be an MP4 or MOV video"):
        probe_video(png_named_mp4, field=VIDEO, min_seconds=3, max_seconds=10)

    assert probe_video(mp4_named_png, field=VIDEO, min_seconds=3, max_seconds=10).codec == "h264"
    with pytest.raises(InvalidInput, match="must be a JPEG, PNG or WebP image"):
        probe_image(mp4_named_png, field=IMAGE)


def test_playlist_text_is_not_followed(tmp_path: Path) -> None:
    # FFmpeg's format guessing would open an HLS playlist and fetch what it names.
    path = tmp_path / "clip.mp4"
    path.write_text("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    with pytest.raises(InvalidInput, match="must be an MP4 or MOV video"):
        probe_video(path, field=VIDEO, min_seconds=3, max_seconds=10)


def test_unsupported_codec_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.mp4"
    write_clip(path, codec="mpeg4", width=64, height=48, frames=80)
    with pytest.raises(InvalidInput) as caught:
        probe_video(path, field=VIDEO, min_seconds=3, max_seconds=10)
    assert caught.value.message == "video_url: video codec must be H.264, H.265, VP9 or AV1"


def test_absurd_dimensions_are_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "wide.mp4"
    write_clip(path, codec="libx264", width=4160, height=16, frames=1)
    with pytest.raises(InvalidInput) as caught:
        probe_video(path, field=VIDEO, min_seconds=0, max_seconds=10)
    assert caught.value.message == "video_url: video sides must be at most 4096 px (got 4160x16)"


def test_rotated_phone_video_reports_its_displayed_size(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    write_clip(path, codec="libx264", width=96, height=64, frames=72, rotation=-90)
    info = probe_video(path, field=VIDEO, min_seconds=3, max_seconds=10)
    assert (info.width, info.height) == (64, 96)


def test_garbage_after_a_valid_header_is_refused(fixtures_dir: Path, tmp_path: Path) -> None:
    data = bytearray((fixtures_dir / "clip_4s_silent.mp4").read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4 :] = bytes(len(data) - mdat - 4)  # wipe every coded frame
    path = tmp_path / "broken.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput) as caught:
        probe_video(path, field=VIDEO, min_seconds=3, max_seconds=10)
    assert caught.value.field == VIDEO
    assert caught.value.message.startswith("video_url: ")


def test_image_bytes_helper_is_valid_png() -> None:
    with Image.open(io.BytesIO(png_header_only(320, 320))) as image:
        assert image.size == (320, 320)
