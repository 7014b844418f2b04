"""API key hardening: checksum before lookup, identical refusals, rotation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from reelserve.core.key_format import KEY_PREFIX, new_key, shown_prefix
from reelserve.services.keys import create_key, digest, rotate_key
from reelserve.store import SqlStore
from tests.api.conftest import Service


@contextmanager
def counted_queries(store: SqlStore) -> Iterator[list[str]]:
    """Every SQL statement the store sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def _typo(key: str) -> str:
    index = len(key) // 2
    return key[:index] + ("A" if key[index] != "A" else "B") + key[index + 1 :]


def _refusal(service: Service, key: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    response = service.client.get("/api/v1/credits", headers={"Authorization": f"Bearer {key}"})
    # Date and X-Request-ID differ on every response, whatever the key.
    varying = ("date", "x-request-id")
    headers = sorted((k, v) for k, v in response.headers.items() if k.lower() not in varying)
    return response.status_code, response.content, headers


def test_a_one_character_typo_is_refused_without_a_database_lookup(
    queued_service: Service,
) -> None:
    good = queued_service.key
    with counted_queries(queued_service.store) as queries:
        status, _, _ = _refusal(queued_service, _typo(good))
    assert status == 401
    assert queries == []
    with counted_queries(queued_service.store) as queries:
        ok = queued_service.client.get("/api/v1/credits", headers=queued_service.auth)
    assert ok.status_code == 200
    assert any("api_keys" in q for q in queries)


def test_unknown_malformed_and_revoked_keys_fail_byte_for_byte_alike(
    make_service: Any,
) -> None:
    service: Service = make_service(worker=False)
    revoked = rotate_key(service.store, shown_prefix(service.key))
    assert revoked is not None
    old_key, service.key = service.key, revoked.key
    unknown = create_key(service.store, "other").key
    assert service.store.revoke_key(shown_prefix(unknown))
    never_stored = KEY_PREFIX + "x" * 32
    refusals = {
        "revoked": _refusal(service, old_key),
        "revoked-by-revoke": _refusal(service, unknown),
        "typo": _refusal(service, _typo(service.key)),
        "malformed": _refusal(service, "rs_wrong"),
        "not ours": _refusal(service, "sk-" + secrets.token_hex(20)),
        "unknown legacy-shaped": _refusal(service, KEY_PREFIX + secrets.token_urlsafe(32)),
        "unknown with checksum": _refusal(service, new_key()),
        "no checksum": _refusal(service, never_stored),
    }
    first = next(iter(refusals.values()))
    assert first[0] == 401
    assert b"UNAUTHORIZED" in first[1]
    for name, refusal in refusals.items():
        assert refusal == first, name


def test_keys_of_the_older_format_keep_working(queued_service: Service) -> None:
    store = queued_service.store
    legacy = KEY_PREFIX + secrets.token_urlsafe(32)
    store.add_key(queued_service.workspace_id, shown_prefix(legacy), digest(legacy), "old")
    response = queued_service.client.get(
        "/api/v1/credits", headers={"Authorization": f"Bearer {legacy}"}
    )
    assert response.status_code == 200, response.text


def test_rotate_issues_a_new_key_and_revokes_the_old(queued_service: Service) -> None:
    old = queued_service.key
    new = rotate_key(queued_service.store, shown_prefix(old))
    assert new is not None
    assert new.key != old
    credits = queued_service.client.get(
        "/api/v1/credits", headers={"Authorization": f"Bearer {new.key}"}
    )
    assert credits.status_code == 200
    assert credits.json()["workspace"] == "acme"
    assert _refusal(queued_service, old)[0] == 401
    assert rotate_key(queued_service.store, shown_prefix(old)) is None  # nothing to rotate


def test_rotate_with_a_grace_period_keeps_the_old_key_until_it_ends(
    queued_service: Service,
) -> None:
    old = queued_service.key
    new = rotate_key(queued_service.store, shown_prefix(old), grace_s=0.5)
    assert new is not None
    for key in (old, new.key):
        assert _refusal(queued_service, key)[0] == 200
    time.sleep(0.6)
    assert _refusal(queued_service, old)[0] == 401
    assert _refusal(queued_service, new.key)[0] == 200
