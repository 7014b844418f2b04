"""``reelserve keys rotate``: a new key for the same workspace, the old one revoked."""

from __future__ import annotations

from typing import Annotated

import typer

from reelserve.cli.server_options import DatabaseUrl, DataDir, open_admin_store


def rotate(
    key: Annotated[str, typer.Argument(help="The old key's id or prefix (see `keys list`).")],
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            help="Seconds the old key keeps working, to roll the new one out (default 0).",
        ),
    ] = 0.0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a new key for the same workspace and revoke the old one (after --grace
    seconds); prints only the new key."""
    from reelserve.services.keys import rotate_key

    new = rotate_key(open_admin_store(data_dir, database_url), key, grace)
    if new is None:
        typer.echo(f"no active key {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(new.key)
