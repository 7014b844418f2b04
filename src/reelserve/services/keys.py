"""API keys: shown once, stored as a prefix and a SHA-256 digest, never in clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from reelserve.core.errors import Unauthorized
from reelserve.core.ports import Caller, Store

KEY_PREFIX = "rs_"


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
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key[:12]
    key_id = store.add_key(workspace.id, prefix, digest(key), name)
    return NewKey(key=key, key_id=key_id, prefix=prefix)


def authenticate(store: Store, authorization: str | None) -> Caller:
    """The caller behind a ``Bearer`` key; unknown and revoked keys fail the same way."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization: a Bearer API key is required")
    caller = store.caller_for_key(digest(token.strip()))
    if caller is None:
        raise Unauthorized("Authorization: the API key is not valid")
    return caller
