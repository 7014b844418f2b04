"""SqlStore: SQLite and PostgreSQL through SQLAlchemy Core, one schema, Alembic migrations.

Import rule: ``reelserve.store`` imports only ``reelserve.core`` of ours. Driver errors are
translated to core errors here.
"""

from reelserve.store.engine import connect
from reelserve.store.migrate import current_revision, head_revision, upgrade
from reelserve.store.sql_store import SqlStore
from reelserve.store.worker_tokens import SqlWorkerTokens

__all__ = [
    "SqlStore",
    "SqlWorkerTokens",
    "connect",
    "current_revision",
    "head_revision",
    "upgrade",
]
