"""The one schema, shared by SQLite and PostgreSQL. Times are epoch seconds (float)
taken from the database clock, so every replica and worker agrees on lease expiry."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Seconds = sa.Float(precision=53)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", Seconds, nullable=False),
    # Fair sharing: tasks running at once (NULL: the server default; 0: no cap), and
    # claim order between workspaces (higher first).
    sa.Column("max_running", sa.Integer),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200)),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("revoked_at", Seconds),
)

credit_buckets = sa.Table(
    "credit_buckets",
    metadata,
    sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("bucket", sa.String(20), primary_key=True),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("period_end", Seconds),
    sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("bucket", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("generation_id", sa.String(40)),
    # delta: the change to the bucket's balance; amount: the credits the entry is about
    # (a capture moves no balance: the reserve already did).
    sa.Column("delta", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.UniqueConstraint("generation_id", "kind", "bucket", name="one_entry_per_task_kind_bucket"),
)

generations = sa.Table(
    "generations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("model", sa.String(100), nullable=False),
    sa.Column("mode", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("input", JSON, nullable=False),
    sa.Column("plan", JSON, nullable=False),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("reserved_subscription", sa.BigInteger, nullable=False),
    sa.Column("reserved_permanent", sa.BigInteger, nullable=False),
    sa.Column("usage_subscription", sa.BigInteger, nullable=False),
    sa.Column("usage_permanent", sa.BigInteger, nullable=False),
    sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("lease_owner", sa.String(40)),
    sa.Column("lease_expires_at", Seconds),
    sa.Column("heartbeat_at", Seconds),
    sa.Column("not_before", Seconds, nullable=False),
    sa.Column("deadline_at", Seconds, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("error_code", sa.String(60)),
    sa.Column("error_message", sa.Text),
    sa.Column("data", JSON),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("started_at", Seconds),
    sa.Column("completed_at", Seconds),
    sa.Column("api_key_id", sa.String(40)),
    # Retention: when the task's output files / uploaded files were deleted.
    sa.Column("outputs_expired_at", Seconds),
    sa.Column("uploads_expired_at", Seconds),
    # The X-Request-ID of the create, so the worker's logs carry it too.
    sa.Column("request_id", sa.String(128)),
    sa.Index("generations_queue", "status", "model", "id"),
    sa.Index("generations_workspace", "workspace_id", "id"),
    sa.Index("generations_key_active", "api_key_id", "status"),
    sa.Index("generations_finished", "completed_at"),
    # The fair claim: each workspace's queue head and its running count.
    sa.Index("generations_workspace_status", "workspace_id", "status", "id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("generation_id", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("snapshot", JSON, nullable=False),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Index("events_generation", "generation_id", "seq"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("workspace_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("generation_id", sa.String(40), nullable=False),
    sa.Column("expires_at", Seconds, nullable=False),
)

# Fixed-window request counts per API key (window start on the database clock).
rate_windows = sa.Table(
    "rate_windows",
    metadata,
    sa.Column("key_id", sa.String(40), primary_key=True),
    sa.Column("window_start", Seconds, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("models", JSON, nullable=False),
    sa.Column("info", JSON, nullable=False),
    sa.Column("started_at", Seconds, nullable=False),
    sa.Column("last_seen_at", Seconds, nullable=False),
)

# Tokens of remote workers (internal routes): a lookup prefix and a SHA-256 digest.
worker_tokens = sa.Table(
    "worker_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("revoked_at", Seconds),
)

# Webhooks (0005): one signing secret per workspace (the previous one is honoured for a
# while after a rotation), and the delivery outbox, written with the terminal event.
webhook_secrets = sa.Table(
    "webhook_secrets",
    metadata,
    sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("previous_secret", sa.String(100)),
    sa.Column("previous_until", Seconds),
    sa.Column("created_at", Seconds, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("workspace_id", sa.String(40), nullable=False),
    sa.Column("generation_id", sa.String(40), nullable=False),
    sa.Column("event_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Seconds, nullable=False),
    sa.Column("lease_owner", sa.String(40)),
    sa.Column("lease_expires_at", Seconds),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.String(300)),
    sa.Column("created_at", Seconds, nullable=False),
    sa.Column("finished_at", Seconds),
    sa.Index("webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("webhook_deliveries_generation", "generation_id"),
)
