"""Decide what an input file is by decoding its bytes, and check the input media limits.

Names and Content-Type headers are never trusted (api.md §2): a PNG called ``.mp4`` is a
PNG. Every refusal is an :class:`InvalidInput` (or :class:`InputTooLarge`) whose message
names the field and the rule, and whose ``field`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import av
from PIL import Image, UnidentifiedImageError

from reelserve.media.containers import (
    container_kind,
    open_mp4,
    quarter_turns,
    stream_fps,
    stream_seconds,
)
from reelserve.media.refusals import refusal, too_large

ImageFormat = Literal["jpeg", "png", "webp"]

# Pillow format id -> the name we report.
IMAGE_FORMATS: Final[dict[str, ImageFormat]] = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
MAX_IMAGE_PIXELS: Final = 50_000_000
MIN_IMAGE_SIDE: Final = 300
# Allowed aspect ratios are 1:2.5 .. 2.5:1, i.e. 2 * long side <= 5 * short side.
_RATIO_NUM, _RATIO_DEN = 5, 2

VIDEO_CODECS: Final = frozenset({"h264", "hevc", "vp9", "av1"})
MAX_VIDEO_SIDE: Final = 4096
# Container and frame timestamps round; a "3 s" clip may measure 2.99 s.
_DURATION_SLACK_S: Final = 0.05

# EXIF orientations that swap width and height when applied.
_SIDEWAYS_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION: Final = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int  # as displayed, after the EXIF orientation
    height: int


@dataclass(frozen=True)
class VideoInfo:
    container: str  # "mp4" or "mov"
    codec: str  # one of VIDEO_CODECS
    width: int  # as displayed, after any rotation
    height: int
    fps: float
    duration: float  # seconds
    has_audio: bool
    audio_sample_rate: int | None


def _check_file_size(path: Path, field: str, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise too_large(field, max_bytes)
    if size == 0:
        raise refusal(field, "file is empty")


def open_image(path: Path) -> Image.Image:
    """Open (header only) a JPEG, PNG or WebP file.

    Raises ``UnidentifiedImageError`` for any other format and Pillow's
    ``DecompressionBombError`` for absurd sizes.
    """
    return Image.open(path, formats=list(IMAGE_FORMATS))


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as displayed once the EXIF orientation is applied.

    For PNG this decodes the image (its EXIF may follow the pixels): check size first.
    """
    width, height = image.size
    if image.getexif().get(_EXIF_ORIENTATION) in _SIDEWAYS_ORIENTATIONS:
        return height, width
    return width, height


def probe_image(path: Path, *, field: str, max_bytes: int = 10_000_000) -> ImageInfo:
    """Check an image against the input limits and decode it fully once."""
    _check_file_size(path, field, max_bytes)
    too_many_pixels = f"image must be at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    try:
        image = open_image(path)
    except UnidentifiedImageError:
        raise refusal(field, "must be a JPEG, PNG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard fires above ~89 MP (the warning only when warnings are errors).
        raise refusal(field, too_many_pixels) from None
    with image:
        # Every size rule is symmetric in width and height, so all are checked on the
        # stored header size before any pixel is decoded (PNG's getexif() would decode).
        width, height = image.size
        got = f"(got {width}x{height})"
        if width * height > MAX_IMAGE_PIXELS:
            raise refusal(field, f"{too_many_pixels} {got}")
        if min(width, height) < MIN_IMAGE_SIDE:
            raise refusal(field, f"image sides must be at least {MIN_IMAGE_SIDE} px {got}")
        if _RATIO_DEN * max(width, height) > _RATIO_NUM * min(width, height):
            raise refusal(field, f"image aspect ratio must be between 1:2.5 and 2.5:1 {got}")
        try:
            image.load()
            width, height = oriented_size(image)
        except (OSError, SyntaxError, ValueError, EOFError):
            raise refusal(field, "image could not be decoded (truncated or corrupt)") from None
        image_format = IMAGE_FORMATS[image.format or ""]
    return ImageInfo(format=image_format, width=width, height=height)


def probe_video(
    path: Path,
    *,
    field: str,
    max_bytes: int = 100_000_000,
    min_seconds: float,
    max_seconds: float,
    length_context: str = "",
) -> VideoInfo:
    """Check a reference video against the input limits and decode its first frame.

    ``length_context`` finishes the duration rule's sentence, e.g.
    ``"with character_orientation=image"``.
    """
    _check_file_size(path, field, max_bytes)
    try:
        container = open_mp4(path)
    except (av.FFmpegError, OSError):
        raise refusal(field, "must be an MP4 or MOV video") from None
    with container:
        name = container.format.name
        if "mp4" not in name and "mov" not in name:
            raise refusal(field, "must be an MP4 or MOV video")
        if not container.streams.video:
            raise refusal(field, "video has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec.canonical_name
        if codec not in VIDEO_CODECS:
            raise refusal(field, "video codec must be H.264, H.265, VP9 or AV1")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not 0 < max(width, height) <= MAX_VIDEO_SIDE or min(width, height) <= 0:
            raise refusal(
                field, f"video sides must be at most {MAX_VIDEO_SIDE} px (got {width}x{height})"
            )
        seconds = stream_seconds(stream, container)
        if seconds is None:
            raise refusal(field, "video duration could not be determined")
        lowest, highest = min_seconds - _DURATION_SLACK_S, max_seconds + _DURATION_SLACK_S
        if not lowest <= seconds <= highest:
            context = f" {length_context}" if length_context else ""
            raise refusal(
                field,
                f"reference video must be {min_seconds:g}–{max_seconds:g} s long{context} "
                f"(got {seconds:.1f} s)",
            )
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError:
            first = None
        if first is None:
            raise refusal(field, "video could not be decoded")
        if quarter_turns(first) % 2:
            width, height = height, width
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            container=container_kind(container),
            codec=codec,
            width=width,
            height=height,
            fps=stream_fps(stream),
            duration=round(seconds, 3),
            has_audio=audio is not None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        )
