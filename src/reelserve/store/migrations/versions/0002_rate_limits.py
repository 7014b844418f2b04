"""Per-key limits: which key created a task, and request counts per time window.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("api_key_id", sa.String(40)))
    op.create_index("generations_key_active", "generations", ["api_key_id", "status"])
    op.create_table(
        "rate_windows",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("window_start", sa.Float(precision=53), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
    op.drop_index("generations_key_active", "generations")
    op.drop_column("generations", "api_key_id")
