"""Public links to stored files: the blob store's own presigned URL where it has one
(S3), else an HMAC-signed ``/files`` link served by the API (local folder)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from reelserve.blobs.signing import UrlSigning
from reelserve.core.ports import Blobs

# SigV4 presigned URLs live at most 7 days; a longer TTL is cut to that.
MAX_PRESIGN_S = 7 * 24 * 3600


@dataclass(frozen=True)
class FileLinks:
    blobs: Blobs
    signing: UrlSigning

    def sign(self, base_url: str, key: str) -> tuple[str, datetime]:
        """A link to ``key`` valid for the signing TTL, and when it expires."""
        issued = time.time()
        ttl_s = min(self.signing.ttl_s, MAX_PRESIGN_S)
        direct = self.blobs.presigned_get(key, ttl_s)
        if direct is None:
            return self.signing.sign(base_url, key, now=issued)
        return direct, datetime.fromtimestamp(int(issued + ttl_s), UTC)
