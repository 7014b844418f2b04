"""Turn input files into the arrays engines take (``reelserve.core.render`` types).

Call the matching ``probe_*`` first: these readers assume the limits were checked and
only guard against what would exhaust memory.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.audio.resampler import AudioResampler
from av.container import InputContainer
from PIL import Image, ImageOps, UnidentifiedImageError

from reelserve.core.errors import InvalidInput
from reelserve.core.render import Audio, Frames
from reelserve.media.containers import open_mp4, quarter_turns, stream_fps
from reelserve.media.probe import MAX_IMAGE_PIXELS, open_image


def _open_video(path: Path) -> InputContainer:
    try:
        return open_mp4(path)
    except FileNotFoundError:
        raise
    except av.FFmpegError:
        raise InvalidInput("video could not be opened as MP4 or MOV") from None


# Transparent pixels are shown over white, as a browser would show the upload.
_BACKGROUND = (255, 255, 255)


def fit_frame(rgb: Frames, width: int, height: int) -> Frames:
    """Centre-crop ``rgb`` (HxWx3) to the ``width:height`` ratio and resize to exactly that.

    Returns the input unchanged when it already has the size.
    """
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    picture = Image.fromarray(rgb, "RGB")
    fitted = ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS)
    return np.array(fitted, dtype=np.uint8)  # a writable copy, unlike np.asarray


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def load_image(path: Path, *, width: int, height: int) -> Frames:
    """An image as HxWx3 RGB, upright, centre-cropped and resized to ``width`` x ``height``.

    Raises :class:`InvalidInput` (without a field: the caller knows which one) when the
    file cannot be decoded.
    """
    try:
        with open_image(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise InvalidInput("image is too large to decode")
            upright = ImageOps.exif_transpose(image)
            rgb = np.array(_flatten_to_rgb(upright), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InvalidInput("image could not be decoded") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidInput("image could not be decoded (truncated or corrupt)") from None
    return fit_frame(rgb, width, height)


def read_video(
    path: Path, *, max_frames: int, width: int | None = None, height: int | None = None
) -> tuple[Frames, float]:
    """Up to ``max_frames`` upright RGB frames (TxHxWx3) and the stream's fps.

    With ``width`` and ``height`` each frame is centre-cropped and resized as it is
    decoded, so a long high-resolution reference never sits in memory at full size.
    """
    if (width is None) != (height is None):
        raise ValueError("give both width and height, or neither")
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    frames: list[Frames] = []
    with _open_video(path) as container:
        if not container.streams.video:
            raise InvalidInput("video has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = stream_fps(stream)
        try:
            for frame in container.decode(stream):
                rgb = np.rot90(frame.to_ndarray(format="rgb24"), k=quarter_turns(frame))
                if width is not None and height is not None:
                    rgb = fit_frame(np.ascontiguousarray(rgb), width, height)
                frames.append(np.ascontiguousarray(rgb, dtype=np.uint8))
                if len(frames) == max_frames:
                    break
        except av.FFmpegError:
            if not frames:
                raise InvalidInput("video could not be decoded") from None
            # A damaged tail: keep what decoded, as players do.
    if not frames:
        raise InvalidInput("video could not be decoded")
    return np.stack(frames), fps


def read_audio(path: Path) -> tuple[Audio, int] | None:
    """The first audio stream as float32 ``(channels, samples)`` and its rate, or None."""
    with _open_video(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        # Same layout and rate, planar float: whatever the codec decodes to.
        resampler = AudioResampler(format="fltp")
        chunks: list[Audio] = []
        rate = stream.codec_context.sample_rate
        declared = None
        if stream.duration is not None and stream.time_base is not None and rate:
            declared = round(stream.duration * stream.time_base * rate)
        try:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    rate = converted.sample_rate
                    chunks.append(converted.to_ndarray().astype(np.float32, copy=False))
            for converted in resampler.resample(None):
                chunks.append(converted.to_ndarray().astype(np.float32, copy=False))
        except av.FFmpegError:
            if not chunks:
                return None
    if not chunks or not rate:
        return None
    pcm = np.concatenate(chunks, axis=1)
    if declared is not None:
        # AAC decodes whole 1024-sample frames; the container knows where the sound ends.
        pcm = pcm[:, : max(declared, 1)]
    return pcm, rate
