"""Retention: which stored files a finished task owns, by kind.

Outputs (the MP4s of a COMPLETED task) and uploads (the files sent with a create) are
kept for their own ages; past that the files are deleted and the task is marked, so its
record says the file expired instead of handing out a dead link.
"""

from __future__ import annotations

from enum import StrEnum

from reelserve.core.records import Generation
from reelserve.core.spec import BLOB_REF_PREFIX, MEDIA_FIELDS


class FileKind(StrEnum):
    OUTPUTS = "outputs"
    UPLOADS = "uploads"


def stored_keys(gen: Generation, kind: FileKind) -> list[str]:
    """The blob keys of ``gen``'s files of ``kind``."""
    if kind is FileKind.OUTPUTS:
        videos = (gen.data or {}).get("videos", [])
        return [video["key"] for video in videos if isinstance(video.get("key"), str)]
    keys = []
    for name in MEDIA_FIELDS:
        value = gen.input.get(name)
        if isinstance(value, str) and value.startswith(BLOB_REF_PREFIX):
            keys.append(value.removeprefix(BLOB_REF_PREFIX))
    return keys
