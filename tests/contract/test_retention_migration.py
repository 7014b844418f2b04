"""Migration 0006 on SQLite and PostgreSQL: a database at 0005 with finished tasks
upgrades in place, and the new columns match the schema the store uses."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from reelserve.core.retention import FileKind
from reelserve.store import SqlStore, connect, current_revision, upgrade
from reelserve.store.migrate import _config
from reelserve.store.schema import generations


def _columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("generations")}


def test_0006_adds_the_expiry_marks_and_back(database_url: str) -> None:
    engine = connect(database_url)
    try:
        upgrade(engine, "0005")
        assert "outputs_expired_at" not in _columns(engine)
        upgrade(engine)
        assert current_revision(engine) == "0006"
        assert {"outputs_expired_at", "uploads_expired_at"} <= _columns(engine)
        assert {c.name for c in generations.columns} <= _columns(engine)
        indexes = {index["name"] for index in sa.inspect(engine).get_indexes("generations")}
        assert "generations_finished" in indexes
        # The store's retention query runs against the migrated table.
        assert SqlStore(engine).expirable(FileKind.OUTPUTS, 0, 10) == []
        command.downgrade(_config(engine), "0005")
        assert "outputs_expired_at" not in _columns(engine)
        assert current_revision(engine) == "0005"
    finally:
        engine.dispose()
