"""Initial schema: workspaces, keys, credits and ledger, generations, events, workers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Seconds = sa.Float(precision=53)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", Seconds, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False, unique=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("created_at", Seconds, nullable=False),
        sa.Column("revoked_at", Seconds),
    )
    op.create_table(
        "credit_buckets",
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("bucket", sa.String(20), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("period_end", Seconds),
        sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("bucket", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("generation_id", sa.String(40)),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
        sa.UniqueConstraint(
            "generation_id", "kind", "bucket", name="one_entry_per_task_kind_bucket"
        ),
    )
    op.create_table(
        "generations",
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
    )
    op.create_index("generations_queue", "generations", ["status", "model", "id"])
    op.create_index("generations_workspace", "generations", ["workspace_id", "id"])
    op.create_table(
        "events",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("generation_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("snapshot", JSON, nullable=False),
        sa.Column("created_at", Seconds, nullable=False),
    )
    op.create_index("events_generation", "events", ["generation_id", "seq"])
    op.create_table(
        "idempotency_keys",
        sa.Column("workspace_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("generation_id", sa.String(40), nullable=False),
        sa.Column("expires_at", Seconds, nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("models", JSON, nullable=False),
        sa.Column("info", JSON, nullable=False),
        sa.Column("started_at", Seconds, nullable=False),
        sa.Column("last_seen_at", Seconds, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "workers",
        "idempotency_keys",
        "events",
        "generations",
        "ledger_entries",
        "credit_buckets",
        "api_keys",
        "workspaces",
    ):
        op.drop_table(table)
