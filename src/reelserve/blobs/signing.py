"""HMAC-signed, expiring download URLs: ``/files/{key}?expires=...&signature=...``.

No Bearer token is needed, so a ``<video>`` tag can play the file; the signature binds
the key and the expiry, and is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class UrlSigning:
    secret: bytes
    ttl_s: float

    def _digest(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, key: str, now: float | None = None) -> tuple[str, datetime]:
        """The signed URL under ``base_url`` (ending in ``/api/v1``) and its expiry."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        query = urlencode({"expires": expires, "signature": self._digest(key, expires)})
        url = f"{base_url.rstrip('/')}/files/{quote(key)}?{query}"
        return url, datetime.fromtimestamp(expires, UTC)

    def verify(self, key: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (time.time() if now is None else now):
            return False
        # Bytes, not str: compare_digest refuses non-ASCII text, and a query string can carry
        # any character; a signature that is not our hex simply does not match.
        expected = self._digest(key, expires).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))
