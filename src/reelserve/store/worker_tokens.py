"""SqlWorkerTokens: the worker_tokens table, beside SqlStore on the same engine."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reelserve.core.ids import ulid
from reelserve.core.worker_tokens import ActiveToken, WorkerTokenInfo
from reelserve.store.clock import db_now
from reelserve.store.schema import worker_tokens

t = worker_tokens


class SqlWorkerTokens:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_worker_token(self, prefix: str, digest: str, name: str | None) -> str:
        token_id = f"wtk_{ulid()}"
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(t).values(
                    id=token_id, prefix=prefix, digest=digest, name=name, created_at=db_now()
                )
            )
        return token_id

    def active_worker_token(self, prefix: str) -> ActiveToken | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.id, t.c.digest).where(t.c.prefix == prefix, t.c.revoked_at.is_(None))
            ).first()
        return None if row is None else ActiveToken(id=row.id, digest=row.digest)

    def revoke_worker_token(self, prefix_or_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(t)
                .where(sa.or_(t.c.prefix == prefix_or_id, t.c.id == prefix_or_id))
                .where(t.c.revoked_at.is_(None))
                .values(revoked_at=db_now())
            )
            return result.rowcount > 0

    def list_worker_tokens(self) -> list[WorkerTokenInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.created_at, t.c.id)).all()
        return [
            WorkerTokenInfo(
                id=r.id,
                prefix=r.prefix,
                name=r.name,
                created_at=r.created_at,
                revoked_at=r.revoked_at,
            )
            for r in rows
        ]
