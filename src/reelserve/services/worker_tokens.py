"""Create worker tokens (shown once) and authenticate the workers that present them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from reelserve.core.errors import Unauthorized
from reelserve.core.worker_tokens import (
    TOKEN_PREFIX,
    WorkerTokenStore,
    digest_matches,
    lookup_prefix,
    token_digest,
)

# One message for every refusal: a caller learns nothing about which tokens exist.
REFUSED = "Authorization: a valid Bearer worker token is required"


@dataclass(frozen=True)
class NewWorkerToken:
    token: str
    token_id: str
    prefix: str


def create_worker_token(tokens: WorkerTokenStore, name: str | None = None) -> NewWorkerToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = lookup_prefix(token)
    token_id = tokens.add_worker_token(prefix, token_digest(token), name)
    return NewWorkerToken(token=token, token_id=token_id, prefix=prefix)


def authenticate_worker(tokens: WorkerTokenStore, authorization: str | None) -> str:
    """The id of the active worker token behind a ``Bearer`` header, or Unauthorized."""
    scheme, _, raw = (authorization or "").partition(" ")
    token = raw.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        raise Unauthorized(REFUSED)
    found = tokens.active_worker_token(lookup_prefix(token))
    if found is None or not digest_matches(token, found.digest):
        raise Unauthorized(REFUSED)
    return found.id
