"""Worker tokens: what a remote worker shows the API's internal routes.

Distinct from API keys (another prefix, another table): a worker token can claim and
finish tasks of every workspace but cannot call the public API, and an API key cannot
call the internal routes. Stored as a lookup prefix and a SHA-256 digest, never in clear.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

TOKEN_PREFIX = "rsw_"
# Characters of the token kept in clear to find its row (and to name it in listings).
LOOKUP_CHARS = 12


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lookup_prefix(token: str) -> str:
    return token[:LOOKUP_CHARS]


def digest_matches(token: str, stored_digest: str) -> bool:
    """Constant-time comparison, so response times say nothing about the digest."""
    return hmac.compare_digest(token_digest(token), stored_digest)


@dataclass(frozen=True)
class WorkerTokenInfo:
    id: str
    prefix: str
    name: str | None
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class ActiveToken:
    id: str
    digest: str


class WorkerTokenStore(Protocol):
    def add_worker_token(self, prefix: str, digest: str, name: str | None) -> str: ...
    def active_worker_token(self, prefix: str) -> ActiveToken | None: ...
    def revoke_worker_token(self, prefix_or_id: str) -> bool: ...
    def list_worker_tokens(self) -> list[WorkerTokenInfo]: ...
