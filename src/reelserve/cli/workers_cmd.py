"""``reelserve workers token create|list|revoke``: tokens for remote workers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelserve.cli.server_options import DatabaseUrl, DataDir

if TYPE_CHECKING:
    from reelserve.store import SqlWorkerTokens

workers_app = typer.Typer(help="Remote workers.", no_args_is_help=True)
token_app = typer.Typer(
    help="Worker tokens: what `reelserve worker --api-url` shows the API.", no_args_is_help=True
)
workers_app.add_typer(token_app, name="token")


def _tokens(data_dir: Path | None, database_url: str | None) -> SqlWorkerTokens:
    from reelserve.cli.embedded import open_store
    from reelserve.settings import from_env
    from reelserve.store import SqlWorkerTokens

    settings = from_env(None, data_dir=data_dir, database_url=database_url)
    return SqlWorkerTokens(open_store(settings).engine)


@token_app.command("create")
def token_create(
    name: Annotated[str | None, typer.Option(help="A label, e.g. the GPU host.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a worker token; prints only the token, once (it is never stored)."""
    from reelserve.services.worker_tokens import create_worker_token

    typer.echo(create_worker_token(_tokens(data_dir, database_url), name).token)


@token_app.command("list")
def token_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List worker tokens (prefixes only)."""
    for info in _tokens(data_dir, database_url).list_worker_tokens():
        state = "revoked" if info.revoked_at else "active"
        created = datetime.fromtimestamp(info.created_at, UTC).isoformat(timespec="seconds")
        typer.echo(f"{info.id}\t{info.prefix}…\t{state}\t{created}\t{info.name or ''}")


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="The token's prefix or id (see `token list`).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a worker token: its workers get 401 from their next call."""
    if not _tokens(data_dir, database_url).revoke_worker_token(token):
        typer.echo(f"no active worker token {token!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token}")
