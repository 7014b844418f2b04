"""Identifiers: time-sortable ULIDs with a readable prefix (``gen_01J...``)."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_generation_id() -> str:
    return f"gen_{ulid()}"


def new_workspace_id() -> str:
    return f"ws_{ulid()}"


def new_key_id() -> str:
    return f"key_{ulid()}"


def new_worker_id() -> str:
    return f"wrk_{ulid()}"
