"""``reelserve webhooks``: the per-workspace secret that signs webhook deliveries."""

from __future__ import annotations

from typing import Annotated

import typer

from reelserve.cli.server_options import DatabaseUrl, DataDir, open_admin_store

app = typer.Typer(help="Webhooks (Standard Webhooks signatures).", no_args_is_help=True)


@app.command("secret")
def secret(
    workspace: Annotated[
        str, typer.Option("--workspace", "-w", help="Workspace name.")
    ] = "default",
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Make a new secret; the old one still signs alongside it for 24 hours.",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the workspace's signing secret (whsec_...), made on first use."""
    from reelserve.store.webhook_outbox import SqlWebhookOutbox

    store = open_admin_store(data_dir, database_url)
    found = store.find_workspace(workspace)
    if found is None:
        typer.echo(f"no workspace {workspace!r}", err=True)
        raise typer.Exit(1)
    typer.echo(SqlWebhookOutbox(store.engine).webhook_secret(found.id, rotate=rotate))
