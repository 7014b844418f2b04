"""``open_blobs``: the one place that turns settings into a blob store.

Both composition roots (``create_app`` and ``cli.embedded``) call it, so the API and the
workers always agree on where files live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from reelserve.blobs.local import LocalBlobs
from reelserve.core.ports import Blobs


class BlobSettings(Protocol):
    """What ``open_blobs`` reads; ``reelserve.settings.Settings`` has all of it."""

    @property
    def blob_url(self) -> str | None: ...
    @property
    def blobs_dir(self) -> Path: ...
    @property
    def s3_endpoint_url(self) -> str | None: ...
    @property
    def s3_public_url(self) -> str | None: ...
    @property
    def s3_region(self) -> str | None: ...
    @property
    def s3_access_key_id(self) -> str | None: ...
    @property
    def s3_secret_access_key(self) -> str | None: ...
    @property
    def s3_addressing_style(self) -> str: ...


def open_blobs(settings: BlobSettings) -> Blobs:
    """S3Blobs for an ``s3://bucket/prefix`` URL, else the local folder ``blobs_dir``."""
    url = settings.blob_url
    if not url:
        return LocalBlobs(settings.blobs_dir)
    if url.startswith("file://"):
        return LocalBlobs(Path(url.removeprefix("file://")))
    if not url.startswith("s3://"):
        raise ValueError(f"blob_url: expected s3://bucket[/prefix] or file:///path, got {url!r}")
    # Imported here: boto3 loads only where S3 is used.
    from reelserve.blobs.s3 import ADDRESSING_STYLES, S3Blobs, S3Options

    style = ADDRESSING_STYLES.get(settings.s3_addressing_style)
    if style is None:
        raise ValueError(
            f"s3_addressing_style: expected auto, path or virtual, "
            f"got {settings.s3_addressing_style!r}"
        )
    return S3Blobs.open(
        url,
        S3Options(
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style=style,
        ),
    )
