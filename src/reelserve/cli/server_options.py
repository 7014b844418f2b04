"""Options shared by the admin commands that open the database directly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from reelserve.store import SqlStore

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data folder (default ./reelserve-data).",
        envvar="REELSERVE_DATA_DIR",
        show_envvar=True,
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; default SQLite in the data folder.",
        envvar="REELSERVE_DATABASE_URL",
        show_envvar=True,
    ),
]


def open_admin_store(data_dir: Path | None, database_url: str | None) -> SqlStore:
    """The store of the configured deployment, migrated to the current schema."""
    from reelserve.cli.embedded import open_store
    from reelserve.settings import from_env

    return open_store(from_env(None, data_dir=data_dir, database_url=database_url))
