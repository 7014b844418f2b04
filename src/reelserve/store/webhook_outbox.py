"""The webhook outbox: deliveries written in the transaction of the terminal status
change (so a crash never loses one), claimed under a lease by any number of deliverers.

Claim takes one due row with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and under
``BEGIN IMMEDIATE`` on SQLite, and leases it: a deliverer that dies mid-send leaves the
row to be claimed again when the lease ends, with the same id (``webhook-id``), so the
receiver can drop the duplicate. Results are fenced by ``(id, lease_owner, attempts)``:
a deliverer whose lease ran out cannot record over the one that took over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from reelserve.core.records import Generation
from reelserve.core.webhooks import (
    DeliveryState,
    DueDelivery,
    new_message_id,
    new_secret,
)
from reelserve.store.clock import db_now
from reelserve.store.schema import events, webhook_deliveries, webhook_secrets

d = webhook_deliveries

PENDING = "pending"
DELIVERED = "delivered"
GAVE_UP = "failed"
# How long signatures also carry the previous secret after a rotation.
SECRET_OVERLAP_S = 24 * 3600.0
MAX_ERROR_CHARS = 300


def wants_webhook(gen: Generation) -> bool:
    return gen.status.terminal and isinstance(gen.input.get("webhook_url"), str)


def enqueue_delivery(conn: Connection, gen: Generation, event_seq: int, now: float) -> None:
    """The delivery of a terminal event, in the caller's transaction."""
    conn.execute(
        sa.insert(d).values(
            id=new_message_id(),
            workspace_id=gen.workspace_id,
            generation_id=gen.id,
            event_seq=event_seq,
            url=gen.input["webhook_url"],
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


class SqlWebhookOutbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @staticmethod
    def _now(conn: Connection) -> float:
        return float(conn.execute(sa.select(db_now())).scalar_one())

    # -- secrets ------------------------------------------------------------------------

    def webhook_secret(self, workspace_id: str, *, rotate: bool = False) -> str:
        """The workspace's signing secret, made on first use; ``rotate`` replaces it (the
        old one still signs alongside for a day, so receivers can switch over)."""
        with self._write() as conn:
            return self._secrets(conn, workspace_id, rotate=rotate)[0]

    def _secrets(self, conn: Connection, workspace_id: str, *, rotate: bool = False) -> list[str]:
        now = self._now(conn)
        upsert = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        # Made on first use; a concurrent first use by another deliverer or replica wins
        # or loses the insert, and both then read the one row.
        conn.execute(
            upsert(webhook_secrets)
            .values(workspace_id=workspace_id, secret=new_secret(), created_at=now)
            .on_conflict_do_nothing(index_elements=["workspace_id"])
        )
        row = conn.execute(
            sa.select(webhook_secrets)
            .where(webhook_secrets.c.workspace_id == workspace_id)
            .with_for_update()
        ).one()
        if rotate:
            secret = new_secret()
            conn.execute(
                sa.update(webhook_secrets)
                .where(webhook_secrets.c.workspace_id == workspace_id)
                .values(
                    secret=secret,
                    previous_secret=row.secret,
                    previous_until=now + SECRET_OVERLAP_S,
                    created_at=now,
                )
            )
            return [secret, row.secret]
        current = [row.secret]
        if row.previous_secret and row.previous_until and row.previous_until > now:
            current.append(row.previous_secret)
        return current

    # -- deliveries ---------------------------------------------------------------------

    @staticmethod
    def _due(now: Any) -> sa.Select[tuple[str]]:
        return (
            sa.select(d.c.id)
            .where(
                d.c.status == PENDING,
                d.c.next_attempt_at <= now,
                sa.or_(d.c.lease_expires_at.is_(None), d.c.lease_expires_at <= now),
            )
            .order_by(d.c.next_attempt_at)
            .limit(1)
        )

    def claim_delivery(self, owner: str, lease_s: float) -> DueDelivery | None:
        # A plain read first: an idle deliverer polling must not take SQLite's write lock.
        with self.engine.connect() as conn:
            if conn.execute(self._due(db_now())).first() is None:
                return None
        with self._write() as conn:
            now = self._now(conn)
            next_id = self._due(now).with_for_update(skip_locked=True).scalar_subquery()
            row = conn.execute(
                sa.update(d)
                .where(d.c.id == next_id, d.c.status == PENDING)
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + lease_s,
                    attempts=d.c.attempts + 1,
                )
                .returning(
                    d.c.id,
                    d.c.workspace_id,
                    d.c.generation_id,
                    d.c.url,
                    d.c.attempts,
                    d.c.created_at,
                    d.c.event_seq,
                )
            ).first()
            if row is None:
                return None
            snapshot = conn.execute(
                sa.select(events.c.snapshot).where(events.c.seq == row.event_seq)
            ).scalar_one()
            return DueDelivery(
                id=row.id,
                generation_id=row.generation_id,
                url=row.url,
                attempt=row.attempts,
                age_s=max(now - row.created_at, 0.0),
                snapshot=dict(snapshot),
                secrets=tuple(self._secrets(conn, row.workspace_id)),
            )

    def _record(
        self, delivery_id: str, owner: str, attempt: int, retry_in_s: float | None, **values: Any
    ) -> bool:
        """The outcome of one attempt: the next one in ``retry_in_s``, or finished (None)."""
        with self._write() as conn:
            now = self._now(conn)
            if retry_in_s is None:
                values["finished_at"] = now
            else:
                values["next_attempt_at"] = now + retry_in_s
            result = conn.execute(
                sa.update(d)
                .where(
                    d.c.id == delivery_id,
                    d.c.lease_owner == owner,
                    d.c.attempts == attempt,
                    d.c.status == PENDING,
                )
                .values(lease_owner=None, lease_expires_at=None, **values)
            )
            return result.rowcount == 1

    def delivery_succeeded(
        self, delivery_id: str, owner: str, attempt: int, status_code: int
    ) -> bool:
        return self._record(
            delivery_id,
            owner,
            attempt,
            None,
            status=DELIVERED,
            last_status_code=status_code,
            last_error=None,
        )

    def delivery_failed(
        self,
        delivery_id: str,
        owner: str,
        attempt: int,
        error: str,
        status_code: int | None,
        retry_in_s: float | None,
    ) -> bool:
        """Schedule the next attempt in ``retry_in_s``, or give up (None)."""
        outcome: dict[str, Any] = {
            "last_status_code": status_code,
            "last_error": error[:MAX_ERROR_CHARS],
        }
        if retry_in_s is None:
            outcome["status"] = GAVE_UP
        return self._record(delivery_id, owner, attempt, retry_in_s, **outcome)

    def deliveries_for(self, generation_id: str) -> list[DeliveryState]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(d).where(d.c.generation_id == generation_id).order_by(d.c.event_seq)
            ).all()
        return [
            DeliveryState(
                id=r.id,
                generation_id=r.generation_id,
                url=r.url,
                status=r.status,
                attempts=r.attempts,
                last_status_code=r.last_status_code,
                last_error=r.last_error,
            )
            for r in rows
        ]
