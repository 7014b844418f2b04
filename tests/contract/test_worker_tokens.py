"""Worker tokens on SQLite and PostgreSQL: stored as digests, revocable, never API keys."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reelserve.core.errors import Unauthorized
from reelserve.services.keys import create_key
from reelserve.services.worker_tokens import REFUSED, authenticate_worker, create_worker_token
from reelserve.store import SqlStore, SqlWorkerTokens
from reelserve.store.schema import worker_tokens


@pytest.fixture
def tokens(store: SqlStore) -> SqlWorkerTokens:
    return SqlWorkerTokens(store.engine)


def test_a_new_token_authenticates_and_is_never_stored_in_clear(
    tokens: SqlWorkerTokens,
) -> None:
    new = create_worker_token(tokens, "gpu-1")
    assert new.token.startswith("rsw_")
    assert authenticate_worker(tokens, f"Bearer {new.token}") == new.token_id
    with tokens.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(sa.select(worker_tokens))]
    assert len(rows) == 1
    assert all(new.token not in str(value) for value in rows[0].values())
    assert rows[0]["prefix"] == new.prefix == new.token[:12]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic abc",
        "Bearer ",
        "Bearer rsw_",
        "Bearer rsw_not-a-real-token",
    ],
)
def test_missing_or_unknown_tokens_are_refused_alike(
    tokens: SqlWorkerTokens, header: str | None
) -> None:
    create_worker_token(tokens)
    with pytest.raises(Unauthorized) as caught:
        authenticate_worker(tokens, header)
    assert caught.value.message == REFUSED


def test_the_right_prefix_with_a_wrong_secret_is_refused(tokens: SqlWorkerTokens) -> None:
    new = create_worker_token(tokens)
    forged = new.token[:-1] + ("A" if new.token[-1] != "A" else "B")
    with pytest.raises(Unauthorized):
        authenticate_worker(tokens, f"Bearer {forged}")


def test_an_api_key_is_not_a_worker_token(store: SqlStore, tokens: SqlWorkerTokens) -> None:
    key = create_key(store, "acme").key
    with pytest.raises(Unauthorized) as caught:
        authenticate_worker(tokens, f"Bearer {key}")
    assert caught.value.message == REFUSED


def test_revoked_tokens_stop_working_and_stay_listed(tokens: SqlWorkerTokens) -> None:
    kept = create_worker_token(tokens, "kept")
    gone = create_worker_token(tokens, "gone")
    assert tokens.revoke_worker_token(gone.prefix)
    assert not tokens.revoke_worker_token(gone.prefix)  # already revoked
    assert not tokens.revoke_worker_token("rsw_nothing")
    with pytest.raises(Unauthorized):
        authenticate_worker(tokens, f"Bearer {gone.token}")
    assert authenticate_worker(tokens, f"Bearer {kept.token}") == kept.token_id
    listed = {info.name: info for info in tokens.list_worker_tokens()}
    assert listed["gone"].revoked_at is not None
    assert listed["kept"].revoked_at is None
    assert listed["kept"].prefix == kept.prefix
    assert tokens.revoke_worker_token(kept.token_id)  # by id too
    with pytest.raises(Unauthorized):
        authenticate_worker(tokens, f"Bearer {kept.token}")
