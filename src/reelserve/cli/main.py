"""``reelserve``: the server side (serve, worker, keys, credits grant/show, db) and the
client side over the HTTP API (generate, status, cancel, list, credits; see
``reelserve.cli.remote``, exit codes in ``reelserve.cli.exits``)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelserve.cli import remote
from reelserve.cli.exits import EPILOG

if TYPE_CHECKING:
    from reelserve.cli.embedded import FirstStart
    from reelserve.settings import Settings
    from reelserve.store import SqlStore

CLIENT = "Client commands (over the API)"
SERVER = "Server and admin commands"

app = typer.Typer(
    help="reelserve: self-hosted video generation.", no_args_is_help=True, epilog=EPILOG
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
credits_app = typer.Typer(
    help="Credit balances: yours over the API, or grant/show on the database.",
    invoke_without_command=True,
    epilog=EPILOG,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

app.command("generate", epilog=EPILOG, rich_help_panel=CLIENT)(remote.generate)
app.command("status", epilog=EPILOG, rich_help_panel=CLIENT)(remote.status)
app.command("cancel", epilog=EPILOG, rich_help_panel=CLIENT)(remote.cancel)
app.command("list", epilog=EPILOG, rich_help_panel=CLIENT)(remote.list_generations)
credits_app.callback()(remote.credits_balance)
app.add_typer(credits_app, name="credits", rich_help_panel=CLIENT)
app.add_typer(keys_app, name="keys", rich_help_panel=SERVER)
app.add_typer(db_app, name="db", rich_help_panel=SERVER)

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
Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]


def _settings(data_dir: Path | None, database_url: str | None, **extra: object) -> Settings:
    from reelserve.settings import from_env

    return from_env(None, data_dir=data_dir, database_url=database_url, **extra)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _banner(
    first: FirstStart | None, host: str, port: int, profile: str, random_weights: bool
) -> None:
    base = f"http://{host}:{port}/api/v1"
    typer.echo(f"reelserve listening on {base} (profile {profile!r})", err=True)
    if random_weights:
        typer.echo(
            f"  profile {profile!r} runs RANDOM WEIGHTS: its videos are noise, for tests only",
            err=True,
        )
    if first is not None:
        typer.echo(
            f"\nFirst start: workspace {first.workspace!r} with {first.credits} credits.\n"
            f"API key (shown once): {first.key}\n\n"
            f"  curl -s {base}/generation/kling-ai/kling-v2.6 \\\n"
            f"    -H 'Authorization: Bearer {first.key}' -H 'Content-Type: application/json' \\\n"
            f'    -d \'{{"prompt": "a cat walking through neon rain"}}\'\n',
            err=True,
        )


@app.command(rich_help_panel=SERVER)
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(envvar="REELSERVE_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="REELSERVE_PORT")] = 8000,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run a worker in this process.")
    ] = True,
    profile: Annotated[str | None, typer.Option(envvar="REELSERVE_PROFILE")] = None,
    log_level: str = "INFO",
) -> None:
    """Run the API, the reaper and (unless --no-worker) one worker, in one process."""
    import uvicorn

    from reelserve.api import create_app
    from reelserve.cli.embedded import background, bootstrap, build_worker, load_engines, open_store

    _logging(log_level)
    settings = _settings(data_dir, database_url, host=host, port=port, profile=profile)
    store = open_store(settings, listen=True)
    first = bootstrap(store, settings)
    the_worker = None
    random_weights = False
    if worker:
        engines, random_weights = load_engines(settings)
        the_worker = build_worker(settings, store, engines, random_weights)
    api = create_app(settings, store=store)
    with background(store, settings, the_worker):
        _banner(first, settings.host, settings.port, settings.profile, random_weights)
        uvicorn.run(
            api,
            host=settings.host,
            port=settings.port,
            log_level=log_level.lower(),
            timeout_graceful_shutdown=5,
        )


@app.command("worker", rich_help_panel=SERVER)
def worker_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    profile: Annotated[str | None, typer.Option(envvar="REELSERVE_PROFILE")] = None,
    log_level: str = "INFO",
) -> None:
    """Run one worker (one per GPU) against the same database and data folder."""
    import signal
    import threading

    from reelserve.cli.embedded import build_worker, load_engines, open_store
    from reelserve.core.wakeups import QUEUE

    _logging(log_level)
    settings = _settings(data_dir, database_url, profile=profile)
    store = open_store(settings, listen=True)
    engines, random_weights = load_engines(settings)
    the_worker = build_worker(settings, store, engines, random_weights)
    # Tests only: REELSERVE_FAULT arms a crash point (see cli/faults.py); unset, it is a no-op.
    from reelserve.cli.faults import arm_from_env

    arm_from_env(the_worker, store.engine)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stop.set()
        store.wakeups.publish(QUEUE)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    the_worker.run(stop)


@keys_app.command("create")
def keys_create(
    workspace: Workspace,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key (and the workspace, with no credits, if needed); prints only the key."""
    from reelserve.cli.embedded import open_store
    from reelserve.services.keys import create_key

    settings = _settings(data_dir, database_url)
    typer.echo(create_key(open_store(settings), workspace, name).key)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (see `keys list`).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key by id or prefix."""
    from reelserve.cli.embedded import open_store

    settings = _settings(data_dir, database_url)
    if not open_store(settings).revoke_key(key):
        typer.echo(f"no active key {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key}")


def _existing_workspace(
    name: str, data_dir: Path | None, database_url: str | None
) -> tuple[SqlStore, str]:
    """The store and the id of workspace ``name``; exit 1 when there is none."""
    from reelserve.cli.embedded import open_store

    store = open_store(_settings(data_dir, database_url))
    found = store.find_workspace(name)
    if found is None:
        typer.echo(f"no workspace {name!r}", err=True)
        raise typer.Exit(1)
    return store, found.id


@keys_app.command("list")
def keys_list(
    workspace: Workspace, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List a workspace's keys (prefixes only; keys are never stored)."""
    store, workspace_id = _existing_workspace(workspace, data_dir, database_url)
    for info in store.list_keys(workspace_id):
        state = "revoked" if info.revoked_at else "active"
        created = datetime.fromtimestamp(info.created_at, UTC).isoformat(timespec="seconds")
        typer.echo(f"{info.id}\t{info.prefix}…\t{state}\t{created}\t{info.name or ''}")


def _parse_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            "use an ISO date, e.g. 2026-12-31", param_hint="--period-end"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@credits_app.command("grant")
def credits_grant(
    workspace: Workspace,
    subscription: Annotated[int | None, typer.Option(min=0)] = None,
    period_end: Annotated[
        str | None,
        typer.Option(help="End of the subscription period (ISO date); starts a new period."),
    ] = None,
    permanent: Annotated[int | None, typer.Option(min=0)] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Grant subscription and/or permanent credits."""
    from reelserve.cli.embedded import open_store
    from reelserve.core.ledger import Bucket

    if subscription is None and permanent is None:
        raise typer.BadParameter("give --subscription and/or --permanent")
    if period_end is not None and subscription is None:
        raise typer.BadParameter("--period-end goes with --subscription")
    settings = _settings(data_dir, database_url)
    store = open_store(settings)
    ws = store.ensure_workspace(workspace)
    if subscription is not None:
        store.grant(ws.id, Bucket.SUBSCRIPTION, subscription, _parse_date(period_end))
    if permanent is not None:
        store.grant(ws.id, Bucket.PERMANENT, permanent)
    _show(store, ws.id, workspace)


def _show(store: SqlStore, workspace_id: str, name: str) -> None:
    from reelserve.core.records import iso

    b = store.balances(workspace_id)
    typer.echo(
        f"workspace {name}: subscription {b.subscription} "
        f"(period end {iso(b.subscription_period_end) or 'none'}), "
        f"permanent {b.permanent}, total {b.total}"
    )


@credits_app.command("show")
def credits_show(
    workspace: Workspace, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Show a workspace's balances."""
    store, workspace_id = _existing_workspace(workspace, data_dir, database_url)
    _show(store, workspace_id, workspace)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply pending migrations."""
    from reelserve.cli.embedded import open_store
    from reelserve.store import current_revision

    settings = _settings(data_dir, database_url)
    store = open_store(settings)
    typer.echo(f"database at revision {current_revision(store.engine)}")


def main() -> None:
    app()
