"""Retention: when stored files expired.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("outputs_expired_at", sa.Float(precision=53)))
    op.add_column("generations", sa.Column("uploads_expired_at", sa.Float(precision=53)))
    # The retention job looks for finished tasks by age.
    op.create_index("generations_finished", "generations", ["completed_at"])


def downgrade() -> None:
    op.drop_index("generations_finished", "generations")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("uploads_expired_at")
        batch.drop_column("outputs_expired_at")
