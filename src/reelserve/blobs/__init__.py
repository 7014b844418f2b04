"""Blob storage for uploads and outputs: a local folder or an S3-compatible bucket.

Import rule: ``reelserve.blobs`` imports only ``reelserve.core`` of ours.
"""

from reelserve.blobs.factory import open_blobs
from reelserve.blobs.links import FileLinks
from reelserve.blobs.local import LocalBlobs
from reelserve.blobs.signing import UrlSigning

__all__ = ["FileLinks", "LocalBlobs", "UrlSigning", "open_blobs"]
