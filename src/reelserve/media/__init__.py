"""Media in and out: safe fetching of user URLs, probing and decoding inputs, MP4 output.

Import rule: ``reelserve.media`` imports only ``reelserve.core`` of reelserve (plus
Pillow, PyAV, numpy and httpx); never torch, so the API process can probe uploads
without loading a model stack.
"""

from reelserve.media.frames import fit_frame, load_image, read_audio, read_video
from reelserve.media.mp4 import OutputInfo, probe_output, write_mp4
from reelserve.media.probe import ImageInfo, VideoInfo, probe_image, probe_video
from reelserve.media.safe_fetch import FetchedFile, check_url, fetch_to_file

__all__ = [
    "FetchedFile",
    "ImageInfo",
    "OutputInfo",
    "VideoInfo",
    "check_url",
    "fetch_to_file",
    "fit_frame",
    "load_image",
    "probe_image",
    "probe_output",
    "probe_video",
    "read_audio",
    "read_video",
    "write_mp4",
]
