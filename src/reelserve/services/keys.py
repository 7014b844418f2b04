"""API keys: shown once, stored as a prefix and a SHA-256 digest, never in clear.

Every refused key (malformed, mistyped, unknown, revoked) gets the same error, so a
caller learns nothing about which keys exist. Malformed keys (including a failed
checksum, see ``core.key_format``) are refused before the database is asked.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from reelserve.core.errors import Unauthorized
from reelserve.core.key_format import KEY_PREFIX, new_key, shown_prefix, well_formed
from reelserve.core.ports import Caller, Store

__all__ = ["KEY_PREFIX", "NewKey", "authenticate", "create_key", "digest", "rotate_key"]

INVALID_KEY = "Authorization: the API key is not valid"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: str
    key_id: str
    prefix: str


def create_key(store: Store, workspace_name: str, name: str | None = None) -> NewKey:
    """A new key for the workspace (created, with no credits, if it does not exist)."""
    workspace = store.ensure_workspace(workspace_name)
    key = new_key()
    prefix = shown_prefix(key)
    key_id = store.add_key(workspace.id, prefix, digest(key), name)
    return NewKey(key=key, key_id=key_id, prefix=prefix)


def rotate_key(store: Store, prefix_or_id: str, grace_s: float = 0.0) -> NewKey | None:
    """A new key for the same workspace; the old one stops working after ``grace_s``
    seconds (at once for 0). None when no active key has that prefix or id."""
    key = new_key()
    prefix = shown_prefix(key)
    key_id = store.rotate_key(prefix_or_id, prefix, digest(key), max(grace_s, 0.0))
    if key_id is None:
        return None
    return NewKey(key=key, key_id=key_id, prefix=prefix)


def authenticate(store: Store, authorization: str | None) -> Caller:
    """The caller behind a ``Bearer`` key; every kind of bad key fails the same way."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Authorization: a Bearer API key is required")
    if not well_formed(token):
        raise Unauthorized(INVALID_KEY)
    stored = store.key_by_prefix(shown_prefix(token))
    # Constant-time: how much of the digest matched must not show in the response time.
    if stored is None or not hmac.compare_digest(stored.digest, digest(token)):
        raise Unauthorized(INVALID_KEY)
    return stored.caller
