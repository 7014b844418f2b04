"""``reelserve workspaces``: fair sharing of the workers between workspaces.

``set`` gives a workspace a cap on its tasks running at once and a priority (higher is
claimed first; tasks of one priority are claimed oldest first); ``list`` shows every
workspace's settings with its queued and running tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelserve.cli.server_options import DatabaseUrl, DataDir, open_admin_store

if TYPE_CHECKING:
    from reelserve.core.ports import WorkspaceSharing
    from reelserve.store import SqlStore

app = typer.Typer(help="Workspaces: running caps and priorities.", no_args_is_help=True)

# Far inside the database's integer range; more levels than anyone needs.
MAX_PRIORITY = 1_000_000


def _store(data_dir: Path | None, database_url: str | None) -> SqlStore:
    return open_admin_store(data_dir, database_url)


def _cap(sharing: WorkspaceSharing) -> str:
    if sharing.max_running is None:
        return "default"
    return "none" if sharing.max_running == 0 else str(sharing.max_running)


def _line(sharing: WorkspaceSharing) -> str:
    return (
        f"{sharing.name}\tmax_running={_cap(sharing)}\tpriority={sharing.priority}"
        f"\tqueued={sharing.queued}\trunning={sharing.running}"
    )


@app.command("set")
def set_sharing(
    name: Annotated[str, typer.Argument(help="The workspace's name.")],
    max_running: Annotated[
        int | None,
        typer.Option(min=0, help="Tasks running at once (0: no cap for this workspace)."),
    ] = None,
    default_max_running: Annotated[
        bool,
        typer.Option(
            "--default-max-running", help="Use the server's cap (max_running_per_workspace)."
        ),
    ] = False,
    priority: Annotated[
        int | None,
        typer.Option(
            min=-MAX_PRIORITY, max=MAX_PRIORITY, help="Higher is claimed first (default 0)."
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a workspace's running cap and/or priority; prints its settings."""
    from reelserve.core.errors import NotFound

    if max_running is not None and default_max_running:
        raise typer.BadParameter("give --max-running or --default-max-running, not both")
    if max_running is None and priority is None and not default_max_running:
        raise typer.BadParameter("give --max-running, --default-max-running and/or --priority")
    store = _store(data_dir, database_url)
    try:
        if default_max_running:
            store.clear_max_running(name)
        sharing = store.set_sharing(name, max_running=max_running, priority=priority)
    except NotFound:
        typer.echo(f"no workspace {name!r}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_line(sharing))


@app.command("list")
def list_sharing(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every workspace, highest priority first: cap, priority, queued and running tasks."""
    for sharing in _store(data_dir, database_url).list_sharing():
        typer.echo(_line(sharing))
