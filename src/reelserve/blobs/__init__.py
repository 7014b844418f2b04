"""Blob storage for uploads and outputs.

Import rule: ``reelserve.blobs`` imports only ``reelserve.core`` of ours.
"""

from reelserve.blobs.local import LocalBlobs
from reelserve.blobs.signing import UrlSigning

__all__ = ["LocalBlobs", "UrlSigning"]
