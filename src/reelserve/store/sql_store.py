"""SqlStore: every use case's transaction, on SQLite or PostgreSQL.

Writers open ``BEGIN IMMEDIATE`` on SQLite (one writer at a time, no lock upgrades that a
busy timeout cannot resolve) and lock rows with ``FOR UPDATE`` on PostgreSQL. Every change
of a generation is fenced by ``(id, attempt, status, lease_owner)``; every ledger row is
unique per ``(generation, kind, bucket)``, so nothing can finish or charge twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from reelserve.core.capabilities import LiveWorker
from reelserve.core.errors import (
    Conflict,
    InsufficientCredits,
    LeaseLost,
    NotFound,
    RateLimited,
)
from reelserve.core.ids import new_key_id, new_workspace_id
from reelserve.core.ledger import ZERO, Bucket, EntryKind, Split, split_capture, split_reserve
from reelserve.core.ports import (
    ApiKeyInfo,
    Balances,
    Caller,
    Event,
    Heartbeat,
    IdempotencyClaim,
    NewGeneration,
    ReapReport,
    StoredKey,
    Workspace,
    WorkspaceSharing,
)
from reelserve.core.records import Generation, expire_snapshot, snapshot
from reelserve.core.retention import FileKind
from reelserve.core.status import Status
from reelserve.core.wakeups import QUEUE, Wakeups, task_channel
from reelserve.core.webhooks import WEBHOOKS
from reelserve.store.clock import db_now
from reelserve.store.schema import (
    api_keys,
    credit_buckets,
    events,
    generations,
    idempotency_keys,
    ledger_entries,
    rate_windows,
    workers,
    workspaces,
)
from reelserve.store.webhook_outbox import enqueue_delivery, wants_webhook

g = generations


def _generation(row: Row[Any], queue_position: int | None = None) -> Generation:
    m = row._mapping
    return Generation(
        id=m["id"],
        workspace_id=m["workspace_id"],
        model=m["model"],
        mode=m["mode"],
        status=Status(m["status"]),
        input=m["input"],
        plan=m["plan"],
        price=m["price"],
        reserved=Split(m["reserved_subscription"], m["reserved_permanent"]),
        usage=Split(m["usage_subscription"], m["usage_permanent"]),
        progress=m["progress"],
        attempt=m["attempt"],
        max_attempts=m["max_attempts"],
        cancel_requested=bool(m["cancel_requested"]),
        created_at=m["created_at"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
        error_code=m["error_code"],
        error_message=m["error_message"],
        data=m["data"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        queue_position=queue_position,
        outputs_expired_at=m["outputs_expired_at"],
        uploads_expired_at=m["uploads_expired_at"],
        request_id=m["request_id"],
    )


def _running_of(workspace_id: Any) -> sa.ScalarSelect[Any]:
    """The number of a workspace's tasks in progress (an id, or a column to correlate)."""
    return (
        sa.select(sa.func.count())
        .select_from(g)
        .where(g.c.workspace_id == workspace_id, g.c.status == Status.IN_PROGRESS.value)
        .scalar_subquery()
    )


# Picks per claim before giving up (each retry follows a race with another claimer).
CLAIM_TRIES = 8
# What Retry-After suggests when a key is at its cap of active tasks.
ACTIVE_CAP_RETRY_S = 5.0
# PostgreSQL NOTIFY channel that carries the wake-up channels as payloads.
PG_CHANNEL = "reelserve"


class SqlStore:
    def __init__(
        self, engine: Engine, wakeups: Wakeups | None = None, *, clock_offset_s: float = 0.0
    ) -> None:
        self.engine = engine
        self.wakeups = wakeups or Wakeups()
        self._notify_pg = engine.dialect.name == "postgresql"
        # Seconds added to the database clock: tests move time forward (lease expiry,
        # deadlines) without sleeping. Always 0 in the service.
        self.clock_offset_s = clock_offset_s

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            pending: set[str] = set()
            conn.info["wakeups"] = pending
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("wakeups", None)
            # Only after the commit: a woken reader must find the change.
            for channel in pending:
                self.wakeups.publish(channel)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _now(self, conn: Connection) -> float:
        return float(conn.execute(sa.select(db_now())).scalar_one()) + self.clock_offset_s

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- workspaces and keys ------------------------------------------------------------

    def ensure_workspace(self, name: str) -> Workspace:
        existing = self.find_workspace(name)
        if existing is not None:
            return existing
        try:
            with self._write() as conn:
                now = self._now(conn)
                ws = Workspace(id=new_workspace_id(), name=name)
                conn.execute(sa.insert(workspaces).values(id=ws.id, name=name, created_at=now))
                for bucket in Bucket:
                    conn.execute(
                        sa.insert(credit_buckets).values(
                            workspace_id=ws.id, bucket=bucket.value, balance=0
                        )
                    )
                return ws
        except sa.exc.IntegrityError:
            # Another process created it between our read and our write.
            found = self.find_workspace(name)
            assert found is not None
            return found

    def find_workspace(self, name: str) -> Workspace | None:
        with self._read() as conn:
            row = conn.execute(sa.select(workspaces).where(workspaces.c.name == name)).first()
        return Workspace(id=row.id, name=row.name) if row else None

    def count_workspaces(self) -> int:
        with self._read() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(workspaces)).scalar_one()
            )

    def add_key(self, workspace_id: str, prefix: str, digest: str, name: str | None) -> str:
        key_id = new_key_id()
        with self._write() as conn:
            conn.execute(
                sa.insert(api_keys).values(
                    id=key_id,
                    workspace_id=workspace_id,
                    prefix=prefix,
                    digest=digest,
                    name=name,
                    created_at=self._now(conn),
                )
            )
        return key_id

    def caller_for_key(self, digest: str) -> Caller | None:
        query = (
            sa.select(workspaces.c.id, workspaces.c.name, api_keys.c.id.label("key_id"))
            .join(api_keys, api_keys.c.workspace_id == workspaces.c.id)
            .where(api_keys.c.digest == digest, _key_active())
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Caller(Workspace(id=row.id, name=row.name), row.key_id)

    def key_by_prefix(self, prefix: str) -> StoredKey | None:
        """The active key named by ``prefix``; the caller compares digests in constant time."""
        query = (
            sa.select(
                workspaces.c.id,
                workspaces.c.name,
                api_keys.c.id.label("key_id"),
                api_keys.c.digest,
            )
            .join(api_keys, api_keys.c.workspace_id == workspaces.c.id)
            .where(api_keys.c.prefix == prefix, _key_active())
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredKey(Caller(Workspace(id=row.id, name=row.name), row.key_id), row.digest)

    def rotate_key(
        self, prefix_or_id: str, new_prefix: str, new_digest: str, grace_s: float
    ) -> str | None:
        """A new key for the workspace of an active key, which stops working after
        ``grace_s`` seconds (at once for 0). None when there is no such active key."""
        key_id = new_key_id()
        with self._write() as conn:
            now = self._now(conn)
            old = conn.execute(
                sa.select(api_keys)
                .where(
                    sa.or_(api_keys.c.prefix == prefix_or_id, api_keys.c.id == prefix_or_id),
                    _key_active(),
                )
                .with_for_update()
            ).first()
            if old is None:
                return None
            conn.execute(
                sa.insert(api_keys).values(
                    id=key_id,
                    workspace_id=old.workspace_id,
                    prefix=new_prefix,
                    digest=new_digest,
                    name=old.name,
                    created_at=now,
                )
            )
            # An earlier grace period is never extended by a second rotation.
            conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == old.id)
                .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, now + grace_s))
            )
        return key_id

    def workspace_for_key(self, digest: str) -> Workspace | None:
        caller = self.caller_for_key(digest)
        return caller.workspace if caller else None

    def admit(self, key_id: str, window_s: float, limit: int) -> float | None:
        """Count one request of ``key_id`` in the current fixed window.

        Returns None when within ``limit``, else the seconds until the window ends (for
        ``Retry-After``). Every replica counts in the same rows, on the database clock.
        """
        upsert = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        with self._write() as conn:
            now = self._now(conn)
            window = math.floor(now / window_s) * window_s
            counted = (
                upsert(rate_windows)
                .values(key_id=key_id, window_start=window, count=1)
                .on_conflict_do_update(
                    index_elements=["key_id", "window_start"],
                    set_={"count": rate_windows.c.count + 1},
                )
                .returning(rate_windows.c.count)
            )
            count = int(conn.execute(counted).scalar_one())
            conn.execute(
                sa.delete(rate_windows).where(
                    rate_windows.c.key_id == key_id, rate_windows.c.window_start < window
                )
            )
        return None if count <= limit else max(window + window_s - now, 0.001)

    def revoke_key(self, prefix_or_id: str) -> bool:
        with self._write() as conn:
            result = conn.execute(
                sa.update(api_keys)
                .where(
                    sa.or_(api_keys.c.prefix == prefix_or_id, api_keys.c.id == prefix_or_id),
                    _key_active(),
                )
                .values(revoked_at=db_now())
            )
            return result.rowcount > 0

    def list_keys(self, workspace_id: str) -> list[ApiKeyInfo]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.workspace_id == workspace_id)
                .order_by(api_keys.c.created_at)
            ).all()
        return [
            ApiKeyInfo(
                id=r.id,
                workspace_id=r.workspace_id,
                prefix=r.prefix,
                name=r.name,
                created_at=r.created_at,
                revoked_at=r.revoked_at,
            )
            for r in rows
        ]

    # -- credits ------------------------------------------------------------------------

    def _locked_buckets(self, conn: Connection, workspace_id: str) -> dict[Bucket, Row[Any]]:
        rows = conn.execute(
            sa.select(credit_buckets)
            .where(credit_buckets.c.workspace_id == workspace_id)
            .with_for_update()
        ).all()
        return {Bucket(r.bucket): r for r in rows}

    def _move(
        self,
        conn: Connection,
        workspace_id: str,
        bucket: Bucket,
        kind: EntryKind,
        generation_id: str | None,
        delta: int,
        amount: int,
        now: float,
    ) -> None:
        """One ledger row and the matching balance change, never below zero."""
        result = conn.execute(
            sa.update(credit_buckets)
            .where(
                credit_buckets.c.workspace_id == workspace_id,
                credit_buckets.c.bucket == bucket.value,
                credit_buckets.c.balance + delta >= 0,
            )
            .values(balance=credit_buckets.c.balance + delta)
        )
        if result.rowcount != 1:
            raise InsufficientCredits()
        conn.execute(
            sa.insert(ledger_entries).values(
                workspace_id=workspace_id,
                bucket=bucket.value,
                kind=kind.value,
                generation_id=generation_id,
                delta=delta,
                amount=amount,
                created_at=now,
            )
        )

    def grant(
        self,
        workspace_id: str,
        bucket: Bucket,
        amount: int,
        period_end: float | None = None,
    ) -> Balances:
        if amount < 0:
            raise ValueError("amount must not be negative")
        with self._write() as conn:
            now = self._now(conn)
            current = self._locked_buckets(conn, workspace_id)
            if bucket not in current:
                raise NotFound(f"workspace {workspace_id!r} does not exist")
            if bucket is Bucket.SUBSCRIPTION and period_end is not None:
                # A new billing period: what is left of the old one does not roll over.
                left = int(current[bucket].balance)
                if left:
                    self._move(conn, workspace_id, bucket, EntryKind.EXPIRE, None, -left, left, now)
                conn.execute(
                    sa.update(credit_buckets)
                    .where(
                        credit_buckets.c.workspace_id == workspace_id,
                        credit_buckets.c.bucket == bucket.value,
                    )
                    .values(period_end=period_end)
                )
            self._move(conn, workspace_id, bucket, EntryKind.GRANT, None, amount, amount, now)
        return self.balances(workspace_id)

    def balances(self, workspace_id: str) -> Balances:
        with self._read() as conn:
            now = self._now(conn)
            rows = conn.execute(
                sa.select(credit_buckets).where(credit_buckets.c.workspace_id == workspace_id)
            ).all()
        if not rows:
            raise NotFound(f"workspace {workspace_id!r} does not exist")
        by_bucket = {Bucket(r.bucket): r for r in rows}
        sub = by_bucket[Bucket.SUBSCRIPTION]
        return Balances(
            workspace_id=workspace_id,
            subscription=_usable_subscription(sub, now),
            permanent=int(by_bucket[Bucket.PERMANENT].balance),
            subscription_period_end=sub.period_end,
        )

    def ledger_sums(self, workspace_id: str) -> dict[Bucket, int]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(ledger_entries.c.bucket, sa.func.sum(ledger_entries.c.delta))
                .where(ledger_entries.c.workspace_id == workspace_id)
                .group_by(ledger_entries.c.bucket)
            ).all()
        sums = {bucket: 0 for bucket in Bucket}
        sums.update({Bucket(b): int(total) for b, total in rows})
        return sums

    def raw_balances(self, workspace_id: str) -> dict[Bucket, int]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(credit_buckets.c.bucket, credit_buckets.c.balance).where(
                    credit_buckets.c.workspace_id == workspace_id
                )
            ).all()
        return {Bucket(b): int(balance) for b, balance in rows}

    def ledger_for(self, generation_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(ledger_entries)
                .where(ledger_entries.c.generation_id == generation_id)
                .order_by(ledger_entries.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def _release(self, conn: Connection, gen: Generation, now: float) -> None:
        for bucket in Bucket:
            amount = gen.reserved.get(bucket)
            if amount:
                self._move(
                    conn, gen.workspace_id, bucket, EntryKind.RELEASE, gen.id, amount, amount, now
                )

    # -- generations: API side ----------------------------------------------------------

    def submit(
        self, new: NewGeneration, idempotency: IdempotencyClaim | None
    ) -> tuple[Generation, bool]:
        try:
            return self._submit(new, idempotency)
        except sa.exc.IntegrityError:
            if idempotency is None:
                raise
            # A concurrent request with the same key won the insert: answer with its task.
            return self._submit(new, idempotency)

    def _submit(
        self, new: NewGeneration, idempotency: IdempotencyClaim | None
    ) -> tuple[Generation, bool]:
        with self._write() as conn:
            now = self._now(conn)
            if idempotency is not None:
                found = self._idempotent_hit(conn, new.workspace_id, idempotency, now)
                if found is not None:
                    return found, False
            buckets = self._locked_buckets(conn, new.workspace_id)
            # Counted under the workspace's bucket lock, so racing creates of one key
            # cannot both slip under the cap.
            self._check_active_cap(conn, new)
            sub_available = _usable_subscription(buckets[Bucket.SUBSCRIPTION], now)
            permanent = int(buckets[Bucket.PERMANENT].balance)
            try:
                reserve = split_reserve(sub_available, permanent, new.price)
            except ValueError:
                raise InsufficientCredits(
                    f"this generation costs {new.price} credits; the workspace has "
                    f"{sub_available + permanent}"
                ) from None
            conn.execute(
                sa.insert(g).values(
                    id=new.id,
                    workspace_id=new.workspace_id,
                    model=new.model,
                    mode=new.mode,
                    status=Status.IN_QUEUE.value,
                    input=new.input,
                    plan=new.plan,
                    price=new.price,
                    reserved_subscription=reserve.subscription,
                    reserved_permanent=reserve.permanent,
                    usage_subscription=reserve.subscription,
                    usage_permanent=reserve.permanent,
                    progress=0,
                    attempt=0,
                    max_attempts=new.max_attempts,
                    not_before=now,
                    deadline_at=now + new.deadline_s,
                    cancel_requested=False,
                    created_at=now,
                    api_key_id=new.api_key_id,
                    request_id=new.request_id,
                )
            )
            for bucket in Bucket:
                amount = reserve.get(bucket)
                if amount:
                    self._move(
                        conn,
                        new.workspace_id,
                        bucket,
                        EntryKind.RESERVE,
                        new.id,
                        -amount,
                        amount,
                        now,
                    )
            if idempotency is not None:
                conn.execute(
                    sa.insert(idempotency_keys).values(
                        workspace_id=new.workspace_id,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                        generation_id=new.id,
                        expires_at=now + idempotency.ttl_s,
                    )
                )
            gen = self._load(conn, new.id)
            self._emit(conn, gen, now)
            return gen, True

    def _check_active_cap(self, conn: Connection, new: NewGeneration) -> None:
        if new.max_active_per_key is None or new.api_key_id is None:
            return
        active = conn.execute(
            sa.select(sa.func.count())
            .select_from(g)
            .where(
                g.c.api_key_id == new.api_key_id,
                g.c.status.in_([Status.IN_QUEUE.value, Status.IN_PROGRESS.value]),
            )
        ).scalar_one()
        if active >= new.max_active_per_key:
            raise RateLimited(
                f"this API key already has {active} generations queued or running "
                f"(at most {new.max_active_per_key}); retry when one finishes",
                retry_after_s=ACTIVE_CAP_RETRY_S,
            )

    def _idempotent_hit(
        self, conn: Connection, workspace_id: str, claim: IdempotencyClaim, now: float
    ) -> Generation | None:
        where = (
            idempotency_keys.c.workspace_id == workspace_id,
            idempotency_keys.c.key == claim.key,
        )
        row = conn.execute(sa.select(idempotency_keys).where(*where)).first()
        if row is None:
            return None
        if row.expires_at <= now:
            conn.execute(sa.delete(idempotency_keys).where(*where))
            return None
        if row.request_hash != claim.request_hash:
            raise Conflict("Idempotency-Key: this key was already used with a different body")
        return self._load(conn, row.generation_id)

    def _queue_position(self, conn: Connection, gen_id: str, workspace_id: str) -> int:
        """Queued tasks claimed before this one: higher priorities, then older tasks of the
        same priority. Running caps can let other workspaces' tasks go first."""
        w = workspaces
        mine = sa.select(w.c.priority).where(w.c.id == workspace_id).scalar_subquery()
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(g.join(w, w.c.id == g.c.workspace_id))
                .where(
                    g.c.status == Status.IN_QUEUE.value,
                    sa.or_(w.c.priority > mine, sa.and_(w.c.priority == mine, g.c.id < gen_id)),
                )
            ).scalar_one()
        )

    def _load(self, conn: Connection, gen_id: str, *, lock: bool = False) -> Generation:
        query = sa.select(g).where(g.c.id == gen_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound()
        position = (
            self._queue_position(conn, gen_id, row.workspace_id)
            if row.status == Status.IN_QUEUE.value
            else None
        )
        return _generation(row, position)

    def _emit(self, conn: Connection, gen: Generation, now: float) -> None:
        channels = {task_channel(gen.id)}
        if gen.status is Status.IN_QUEUE or gen.status.terminal:
            # New work, or a running place freed under a workspace's cap: wake the workers.
            channels.add(QUEUE)
        webhook = wants_webhook(gen)
        if webhook:
            channels.add(WEBHOOKS)
        conn.info["wakeups"].update(channels)
        if self._notify_pg:
            # Delivered by PostgreSQL at commit, to every LISTENing process.
            for channel in channels:
                conn.execute(sa.select(sa.func.pg_notify(PG_CHANNEL, channel)))
        seq = conn.execute(
            sa.insert(events)
            .values(
                generation_id=gen.id,
                status=gen.status.value,
                snapshot=snapshot(gen),
                created_at=now,
            )
            .returning(events.c.seq)
        ).scalar_one()
        if webhook:
            # The outbox row commits with the status change, or neither does.
            enqueue_delivery(conn, gen, seq, now)

    def get(self, generation_id: str) -> Generation | None:
        with self._read() as conn:
            try:
                return self._load(conn, generation_id)
            except NotFound:
                return None

    def list_for_workspace(
        self,
        workspace_id: str,
        statuses: Iterable[Status] | None,
        limit: int,
        before_id: str | None = None,
    ) -> list[Generation]:
        query = sa.select(g).where(g.c.workspace_id == workspace_id)
        if statuses is not None:
            query = query.where(g.c.status.in_([s.value for s in statuses]))
        if before_id is not None:
            query = query.where(g.c.id < before_id)
        query = query.order_by(g.c.id.desc()).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
            return [
                _generation(
                    r,
                    self._queue_position(conn, r.id, r.workspace_id)
                    if r.status == Status.IN_QUEUE.value
                    else None,
                )
                for r in rows
            ]

    def cancel(self, workspace_id: str, generation_id: str) -> Generation:
        with self._write() as conn:
            now = self._now(conn)
            gen = self._load(conn, generation_id, lock=True)
            if gen.workspace_id != workspace_id:
                raise NotFound()
            if gen.status.terminal:
                raise Conflict(f"generation is already {gen.status.value}", record=snapshot(gen))
            if gen.status is Status.IN_QUEUE:
                self._finish(conn, gen, Status.CANCELED, now, usage=ZERO)
                self._release(conn, gen, now)
            else:
                conn.execute(
                    sa.update(g)
                    .where(g.c.id == gen.id, g.c.status == Status.IN_PROGRESS.value)
                    .values(cancel_requested=True)
                )
            gen = self._load(conn, generation_id)
            if gen.status.terminal:
                self._emit(conn, gen, now)
            return gen

    def events_after(self, generation_id: str, after_seq: int) -> list[Event]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(events.c.generation_id == generation_id, events.c.seq > after_seq)
                .order_by(events.c.seq)
            ).all()
        return [
            Event(
                seq=r.seq,
                generation_id=r.generation_id,
                status=Status(r.status),
                snapshot=r.snapshot,
            )
            for r in rows
        ]

    # -- generations: worker side -------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        models: Iterable[str],
        lease_s: float,
        *,
        default_max_running: int | None = None,
    ) -> Generation | None:
        """The next task by workspace priority, then age, skipping workspaces at their cap.

        The pick looks at the head of each workspace's queue, so its cost follows the number
        of workspaces, never the queue's length. SQLite: one ``UPDATE ... RETURNING`` with
        the pick inside, under ``BEGIN IMMEDIATE`` (one writer at a time). PostgreSQL: one
        transaction that picks, takes the task with ``FOR UPDATE SKIP LOCKED`` and, for a
        capped workspace, first locks its row (``SKIP LOCKED``) and counts its running tasks
        again, since the pick's snapshot may predate a claim committed just before the lock.
        """
        models = list(models)
        default_cap = default_max_running or 0
        with self._write() as conn:
            now = self._now(conn)
            if self.engine.dialect.name == "postgresql":
                gen_id = self._take_postgres(conn, worker_id, models, lease_s, now, default_cap)
            else:
                pick = self._pick(models, now, default_cap, set(), set()).subquery()
                chosen = sa.select(pick.c.gen_id).scalar_subquery()
                gen_id = conn.execute(self._start(chosen, worker_id, lease_s, now)).scalar()
            if gen_id is None:
                return None
            gen = self._load(conn, gen_id)
            self._emit(conn, gen, now)
            return gen

    def _take_postgres(
        self,
        conn: Connection,
        worker_id: str,
        models: list[str],
        lease_s: float,
        now: float,
        default_cap: int,
    ) -> str | None:
        skip_workspaces: set[str] = set()
        skip_tasks: set[str] = set()
        for _ in range(CLAIM_TRIES):
            picked = conn.execute(
                self._pick(models, now, default_cap, skip_workspaces, skip_tasks)
            ).first()
            if picked is None:
                return None
            if picked.cap > 0 and not self._lock_under_cap(conn, picked):
                skip_workspaces.add(picked.ws)
                continue
            taken = conn.execute(
                self._start(self._lock_queued(picked.gen_id), worker_id, lease_s, now)
            ).scalar()
            if taken is not None:
                return str(taken)
            # Another claimer holds it, or it left the queue after our snapshot.
            skip_tasks.add(picked.gen_id)
        return None

    @staticmethod
    def _start(
        chosen: sa.ScalarSelect[Any], worker_id: str, lease_s: float, now: float
    ) -> sa.Update:
        """Queued → in progress, for the task ``chosen`` names (a subquery); returns its id."""
        return (
            sa.update(g)
            .where(g.c.id == chosen, g.c.status == Status.IN_QUEUE.value)
            .values(
                status=Status.IN_PROGRESS.value,
                attempt=g.c.attempt + 1,
                lease_owner=worker_id,
                lease_expires_at=now + lease_s,
                heartbeat_at=now,
                started_at=sa.func.coalesce(g.c.started_at, now),
            )
            .returning(g.c.id)
        )

    @staticmethod
    def _pick(
        models: list[str],
        now: float,
        default_cap: int,
        skip_workspaces: set[str],
        skip_tasks: set[str],
    ) -> sa.Select[Any]:
        """(workspace, its oldest claimable task, its cap) of the first workspace in
        priority order that has such a task and is under its cap (cap 0: none)."""
        w = workspaces
        head = sa.select(g.c.id).where(
            g.c.workspace_id == w.c.id,
            g.c.status == Status.IN_QUEUE.value,
            g.c.model.in_(models),
            g.c.not_before <= now,
            g.c.deadline_at > now,
        )
        if skip_tasks:
            head = head.where(g.c.id.not_in(skip_tasks))
        head_id = head.order_by(g.c.id).limit(1).scalar_subquery()
        cap = sa.func.coalesce(w.c.max_running, default_cap)
        gen_id = head_id.label("gen_id")
        query = (
            sa.select(w.c.id.label("ws"), gen_id, cap.label("cap"))
            .where(head_id.is_not(None), sa.or_(cap <= 0, _running_of(w.c.id) < cap))
            .order_by(w.c.priority.desc(), gen_id)
            .limit(1)
        )
        if skip_workspaces:
            query = query.where(w.c.id.not_in(skip_workspaces))
        return query

    def _lock_under_cap(self, conn: Connection, picked: Row[Any]) -> bool:
        """Lock a capped workspace's row and count its running tasks afresh; False when
        another claimer holds it or the cap is reached."""
        locked = conn.execute(
            sa.select(workspaces.c.id)
            .where(workspaces.c.id == picked.ws)
            .with_for_update(skip_locked=True)
        ).first()
        if locked is None:
            return False
        running = conn.execute(sa.select(_running_of(picked.ws))).scalar_one()
        return int(running) < int(picked.cap)

    @staticmethod
    def _lock_queued(gen_id: str) -> sa.ScalarSelect[Any]:
        return (
            sa.select(g.c.id)
            .where(g.c.id == gen_id, g.c.status == Status.IN_QUEUE.value)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )

    def _fenced(self, conn: Connection, gen_id: str, attempt: int, worker_id: str) -> Generation:
        row = conn.execute(
            sa.select(g)
            .where(
                g.c.id == gen_id,
                g.c.attempt == attempt,
                g.c.status == Status.IN_PROGRESS.value,
                g.c.lease_owner == worker_id,
            )
            .with_for_update()
        ).first()
        if row is None:
            raise LeaseLost()
        return _generation(row)

    def _finish(
        self,
        conn: Connection,
        gen: Generation,
        status: Status,
        now: float,
        *,
        usage: Split,
        **values: Any,
    ) -> None:
        result = conn.execute(
            sa.update(g)
            .where(g.c.id == gen.id, g.c.attempt == gen.attempt, g.c.status == gen.status.value)
            .values(
                status=status.value,
                usage_subscription=usage.subscription,
                usage_permanent=usage.permanent,
                completed_at=now,
                lease_owner=None,
                lease_expires_at=None,
                **values,
            )
        )
        if result.rowcount != 1:
            raise LeaseLost()

    def heartbeat(
        self, generation_id: str, attempt: int, worker_id: str, progress: int, lease_s: float
    ) -> Heartbeat:
        with self._write() as conn:
            now = self._now(conn)
            gen = self._fenced(conn, generation_id, attempt, worker_id)
            new_progress = max(gen.progress, min(progress, 99))
            conn.execute(
                sa.update(g)
                .where(g.c.id == gen.id, g.c.attempt == attempt)
                .values(lease_expires_at=now + lease_s, heartbeat_at=now, progress=new_progress)
            )
            if new_progress != gen.progress:
                self._emit(conn, self._load(conn, gen.id), now)
            # A busy worker is a present one: keeps its models "served" during long jobs.
            conn.execute(
                sa.update(workers).where(workers.c.id == worker_id).values(last_seen_at=now)
            )
            return Heartbeat(cancel_requested=gen.cancel_requested)

    def complete(
        self,
        generation_id: str,
        attempt: int,
        worker_id: str,
        data: dict[str, Any],
        charge: int,
    ) -> Generation:
        with self._write() as conn:
            now = self._now(conn)
            gen = self._fenced(conn, generation_id, attempt, worker_id)
            captured, released = split_capture(gen.reserved, charge)
            for bucket in Bucket:
                if captured.get(bucket):
                    amount = captured.get(bucket)
                    self._move(
                        conn, gen.workspace_id, bucket, EntryKind.CAPTURE, gen.id, 0, amount, now
                    )
                if released.get(bucket):
                    amount = released.get(bucket)
                    self._move(
                        conn,
                        gen.workspace_id,
                        bucket,
                        EntryKind.RELEASE,
                        gen.id,
                        amount,
                        amount,
                        now,
                    )
            self._finish(conn, gen, Status.COMPLETED, now, usage=captured, data=data, progress=100)
            done = self._load(conn, gen.id)
            self._emit(conn, done, now)
            return done

    def fail(
        self,
        generation_id: str,
        attempt: int,
        worker_id: str,
        code: str,
        message: str,
        retry_in_s: float | None = None,
    ) -> Generation:
        with self._write() as conn:
            now = self._now(conn)
            gen = self._fenced(conn, generation_id, attempt, worker_id)
            if retry_in_s is not None and gen.attempt < gen.max_attempts:
                self._requeue(conn, gen, now + retry_in_s)
            else:
                self._finish(
                    conn,
                    gen,
                    Status.FAILED,
                    now,
                    usage=ZERO,
                    error_code=code,
                    error_message=message,
                )
                self._release(conn, gen, now)
            done = self._load(conn, gen.id)
            self._emit(conn, done, now)
            return done

    def _requeue(self, conn: Connection, gen: Generation, not_before: float) -> None:
        result = conn.execute(
            sa.update(g)
            .where(g.c.id == gen.id, g.c.attempt == gen.attempt, g.c.status == gen.status.value)
            .values(
                status=Status.IN_QUEUE.value,
                lease_owner=None,
                lease_expires_at=None,
                not_before=not_before,
            )
        )
        if result.rowcount != 1:
            raise LeaseLost()

    def finish_canceled(self, generation_id: str, attempt: int, worker_id: str) -> Generation:
        with self._write() as conn:
            now = self._now(conn)
            gen = self._fenced(conn, generation_id, attempt, worker_id)
            self._finish(conn, gen, Status.CANCELED, now, usage=ZERO)
            self._release(conn, gen, now)
            done = self._load(conn, gen.id)
            self._emit(conn, done, now)
            return done

    def reap(self, backoff_s: float) -> ReapReport:
        """Expired leases back to the queue (or FAILED when out of attempts or time)."""
        requeued = timed_out = canceled = 0
        ended: list[Generation] = []
        with self._write() as conn:
            now = self._now(conn)
            stale = conn.execute(
                sa.select(g)
                .where(
                    sa.or_(
                        sa.and_(g.c.status == Status.IN_PROGRESS.value, g.c.lease_expires_at < now),
                        sa.and_(g.c.status == Status.IN_QUEUE.value, g.c.deadline_at <= now),
                    )
                )
                .with_for_update(skip_locked=True)
            ).all()
            for row in stale:
                gen = _generation(row)
                if gen.status is Status.IN_PROGRESS and gen.cancel_requested:
                    self._finish(conn, gen, Status.CANCELED, now, usage=ZERO)
                    canceled += 1
                elif (
                    gen.status is Status.IN_QUEUE
                    or gen.attempt >= gen.max_attempts
                    or (row.deadline_at <= now)
                ):
                    self._finish(
                        conn,
                        gen,
                        Status.FAILED,
                        now,
                        usage=ZERO,
                        error_code="VIDEO_GENERATION_TIMEOUT",
                        error_message="The generation did not finish in time; no credits "
                        "were charged.",
                    )
                    timed_out += 1
                else:
                    self._requeue(conn, gen, now + backoff_s * 2 ** max(gen.attempt - 1, 0))
                    requeued += 1
                    self._emit(conn, self._load(conn, gen.id), now)
                    continue
                self._release(conn, gen, now)
                done = self._load(conn, gen.id)
                ended.append(done)
                self._emit(conn, done, now)
        return ReapReport(
            requeued=requeued, timed_out=timed_out, canceled=canceled, ended=tuple(ended)
        )

    # -- retention ----------------------------------------------------------------------

    def _expired_column(self, kind: FileKind) -> sa.Column[Any]:
        return g.c.outputs_expired_at if kind is FileKind.OUTPUTS else g.c.uploads_expired_at

    def expirable(self, kind: FileKind, older_than_s: float, limit: int) -> list[Generation]:
        """Finished tasks whose ``kind`` files are older than ``older_than_s``, oldest first.

        Outputs belong to COMPLETED tasks only; uploads to every finished task.
        """
        statuses = (
            [Status.COMPLETED]
            if kind is FileKind.OUTPUTS
            else [Status.COMPLETED, Status.FAILED, Status.CANCELED]
        )
        with self._read() as conn:
            cutoff = self._now(conn) - older_than_s
            rows = conn.execute(
                sa.select(g)
                .where(
                    g.c.status.in_([s.value for s in statuses]),
                    g.c.completed_at <= cutoff,
                    self._expired_column(kind).is_(None),
                )
                .order_by(g.c.completed_at)
                .limit(limit)
            ).all()
        return [_generation(row) for row in rows]

    def mark_expired(self, generation_id: str, kind: FileKind) -> bool:
        """Record that ``kind`` files are gone; False when already marked (idempotent).

        The task's stored events are rewritten alike, so a replayed stream shows the
        expiry too instead of links to deleted files; no new event is sent.
        """
        column = self._expired_column(kind)
        with self._write() as conn:
            result = conn.execute(
                sa.update(g)
                .where(g.c.id == generation_id, column.is_(None))
                .values({column.name: db_now()})
            )
            if result.rowcount != 1:
                return False
            gen = self._load(conn, generation_id)
            rows = conn.execute(
                sa.select(events.c.seq, events.c.snapshot).where(
                    events.c.generation_id == generation_id
                )
            ).all()
            for row in rows:
                expired = expire_snapshot(
                    row.snapshot, gen.outputs_expired_at, gen.uploads_expired_at
                )
                conn.execute(
                    sa.update(events).where(events.c.seq == row.seq).values(snapshot=expired)
                )
        return True

    # -- workers ------------------------------------------------------------------------

    def register_worker(
        self, worker_id: str, name: str, models: list[str], info: dict[str, Any]
    ) -> None:
        with self._write() as conn:
            now = self._now(conn)
            conn.execute(
                sa.insert(workers).values(
                    id=worker_id,
                    name=name,
                    models=models,
                    info=info,
                    started_at=now,
                    last_seen_at=now,
                )
            )

    def touch_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(workers).where(workers.c.id == worker_id).values(last_seen_at=db_now())
            )

    def remove_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(workers).where(workers.c.id == worker_id))

    def served_models(self, fresh_within_s: float) -> dict[str, dict[str, Any]]:
        """Models that a worker seen recently serves, with that worker's info."""
        with self._read() as conn:
            now = self._now(conn)
            rows = conn.execute(
                sa.select(workers).where(workers.c.last_seen_at >= now - fresh_within_s)
            ).all()
        served: dict[str, dict[str, Any]] = {}
        for row in rows:
            for model in row.models:
                served.setdefault(model, dict(row.info))
        return served

    def worker_info(self, worker_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            info = conn.execute(
                sa.select(workers.c.info).where(workers.c.id == worker_id)
            ).scalar_one_or_none()
        return dict(info) if info is not None else None

    # -- fair sharing and gauges --------------------------------------------------------

    def set_sharing(
        self, name: str, *, max_running: int | None = None, priority: int | None = None
    ) -> WorkspaceSharing:
        """Set a workspace's cap (0: no cap) and/or priority; None leaves one as it is."""
        values: dict[str, Any] = {}
        if max_running is not None:
            values["max_running"] = max_running
        if priority is not None:
            values["priority"] = priority
        return self._update_sharing(name, values)

    def clear_max_running(self, name: str) -> WorkspaceSharing:
        """Back to the server's default cap."""
        return self._update_sharing(name, {"max_running": None})

    def _update_sharing(self, name: str, values: dict[str, Any]) -> WorkspaceSharing:
        if values:
            with self._write() as conn:
                result = conn.execute(
                    sa.update(workspaces).where(workspaces.c.name == name).values(**values)
                )
                if result.rowcount != 1:
                    raise NotFound(f"workspace: no workspace {name!r}", field="workspace")
        for sharing in self._sharing_rows(workspaces.c.name == name):
            return sharing
        raise NotFound(f"workspace: no workspace {name!r}", field="workspace")

    def list_sharing(self) -> list[WorkspaceSharing]:
        return self._sharing_rows(sa.true())

    def _sharing_rows(self, where: sa.ColumnElement[bool]) -> list[WorkspaceSharing]:
        w = workspaces

        def count(status: Status) -> sa.ScalarSelect[Any]:
            return (
                sa.select(sa.func.count())
                .where(g.c.workspace_id == w.c.id, g.c.status == status.value)
                .scalar_subquery()
            )

        query: sa.Select[Any] = (
            sa.select(
                w.c.name,
                w.c.max_running,
                w.c.priority,
                count(Status.IN_QUEUE).label("queued"),
                count(Status.IN_PROGRESS).label("running"),
            )
            .where(where)
            .order_by(w.c.priority.desc(), w.c.name)
        )
        with self._read() as conn:
            return [_sharing(row) for row in conn.execute(query).all()]

    def active_counts(self) -> dict[tuple[str, Status], int]:
        """Queued and running tasks per (model, status): the queue gauges."""
        active = [Status.IN_QUEUE.value, Status.IN_PROGRESS.value]
        query = (
            sa.select(g.c.model, g.c.status, sa.func.count())
            .where(g.c.status.in_(active))
            .group_by(g.c.model, g.c.status)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return {(model, Status(status)): int(n) for model, status, n in rows}

    def live_workers(self, fresh_within_s: float) -> list[LiveWorker]:
        """Every worker seen recently, oldest first, with what it registered."""
        with self._read() as conn:
            now = self._now(conn)
            rows = conn.execute(
                sa.select(workers)
                .where(workers.c.last_seen_at >= now - fresh_within_s)
                .order_by(workers.c.started_at, workers.c.id)
            ).all()
        return [LiveWorker(row.name, list(row.models), dict(row.info)) for row in rows]


def _sharing(row: Row[Any]) -> WorkspaceSharing:
    return WorkspaceSharing(
        name=row.name,
        max_running=row.max_running,
        priority=int(row.priority),
        queued=int(row.queued or 0),
        running=int(row.running or 0),
    )


def _key_active() -> sa.ColumnElement[bool]:
    """Not revoked, or revoked for a later time (the grace period of a rotation)."""
    return sa.or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > db_now())


def _usable_subscription(row: Row[Any], now: float) -> int:
    """Subscription credits count only until their period ends."""
    if row.period_end is not None and row.period_end <= now:
        return 0
    return int(row.balance)
