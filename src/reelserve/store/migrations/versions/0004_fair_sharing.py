"""Fair sharing: per-workspace running caps and priorities; request ids on generations.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("max_running", sa.Integer))
    op.add_column(
        "workspaces", sa.Column("priority", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("generations", sa.Column("request_id", sa.String(128)))
    op.create_index("generations_workspace_status", "generations", ["workspace_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("generations_workspace_status", "generations")
    op.drop_column("generations", "request_id")
    op.drop_column("workspaces", "priority")
    op.drop_column("workspaces", "max_running")
