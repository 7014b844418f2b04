"""``reelserve``: the server side (serve, worker, keys, credits grant/show, db) and the
client side over the HTTP API (generate, status, cancel, list, credits; see
``reelserve.cli.remote``, exit codes in ``reelserve.cli.exits``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelserve.cli import key_rotation, remote, webhooks, workspaces
from reelserve.cli.exits import EPILOG
from reelserve.cli.models_cmd import models_app
from reelserve.cli.server_options import DatabaseUrl, DataDir
from reelserve.cli.workers_cmd import workers_app

if TYPE_CHECKING:
    from reelserve.cli.embedded import FirstStart, LoadedEngines
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
keys_app.command("rotate")(key_rotation.rotate)
app.add_typer(webhooks.app, name="webhooks", rich_help_panel=SERVER)
app.add_typer(db_app, name="db", rich_help_panel=SERVER)
app.add_typer(workers_app, name="workers", rich_help_panel=SERVER)
app.add_typer(workspaces.app, name="workspaces", rich_help_panel=SERVER)
app.add_typer(models_app, name="models", rich_help_panel=SERVER)

Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace name.")]
BlobUrl = Annotated[
    str | None,
    typer.Option(
        "--blob-url",
        help="s3://bucket/prefix for S3-compatible storage; default the data folder.",
        envvar="REELSERVE_BLOB_URL",
        show_envvar=True,
    ),
]


def _settings(data_dir: Path | None, database_url: str | None, **extra: object) -> Settings:
    from reelserve.settings import from_env

    return from_env(None, data_dir=data_dir, database_url=database_url, **extra)


LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="text, or json: one JSON object per line (default text).",
        envvar="REELSERVE_LOG_FORMAT",
        show_envvar=True,
    ),
]


def _logging(level: str = "INFO", log_format: str = "text") -> None:
    from reelserve.observability.logs import FORMATS, configure

    if log_format not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--log-format")
    configure(level, log_format, sys.stderr)


def _banner(
    first: FirstStart | None,
    host: str,
    port: int,
    profile: str,
    random_weights: bool,
    err: bool = True,
) -> None:
    base = f"http://{host}:{port}/api/v1"
    typer.echo(f"reelserve listening on {base} (profile {profile!r})", err=err)
    if random_weights:
        typer.echo(
            f"  profile {profile!r} runs RANDOM WEIGHTS: its videos are noise, for tests only",
            err=err,
        )
    if first is not None:
        typer.echo(
            f"\nFirst start: workspace {first.workspace!r} with {first.credits} credits.\n"
            f"API key (shown once): {first.key}\n\n"
            f"  curl -s {base}/generation/kling-ai/kling-v2.6 \\\n"
            f"    -H 'Authorization: Bearer {first.key}' -H 'Content-Type: application/json' \\\n"
            f'    -d \'{{"prompt": "a cat walking through neon rain"}}\'\n',
            err=err,
        )


def _engines(load: Callable[[Settings], LoadedEngines], settings: Settings) -> LoadedEngines:
    """The profile's engines; an invalid profile is a start-up error naming the key."""
    from reelserve.engines import ProfileError

    try:
        return load(settings)
    except ProfileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


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
    blob_url: BlobUrl = None,
    log_level: str = "INFO",
    log_format: LogFormat = None,
) -> None:
    """Run the API, the reaper and (unless --no-worker) one worker, in one process."""
    import uvicorn

    from reelserve.api import create_app
    from reelserve.cli.embedded import (
        background,
        bootstrap,
        build_metrics,
        build_worker,
        load_engines,
        open_store,
    )

    settings = _settings(
        data_dir,
        database_url,
        host=host,
        port=port,
        profile=profile,
        blob_url=blob_url,
        log_format=log_format,
    )
    _logging(log_level, settings.log_format)
    store = open_store(settings, listen=True)
    first = bootstrap(store, settings)
    metrics = build_metrics(store)
    the_worker = None
    random_weights = False
    if worker:
        loaded = _engines(load_engines, settings)
        random_weights = loaded.random_weights
        the_worker = build_worker(
            settings,
            store,
            loaded.engines,
            random_weights,
            metrics=metrics,
            capabilities=loaded.capabilities,
        )
    api = create_app(settings, store=store, prometheus=metrics)
    with background(store, settings, the_worker, metrics):
        # With JSON logs on stderr the banner (and a first start's key) goes to stdout.
        banner_on_stderr = settings.log_format != "json"
        _banner(
            first, settings.host, settings.port, settings.profile, random_weights, banner_on_stderr
        )
        uvicorn.run(
            api,
            host=settings.host,
            port=settings.port,
            log_level=log_level.lower(),
            log_config=None,  # uvicorn's lines go through our handler and format too
            timeout_graceful_shutdown=5,
        )
    metrics.close()


@app.command("worker", rich_help_panel=SERVER)
def worker_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    profile: Annotated[str | None, typer.Option(envvar="REELSERVE_PROFILE")] = None,
    blob_url: BlobUrl = None,
    log_level: str = "INFO",
    api_url: Annotated[
        str | None,
        typer.Option(
            help="Work for this API over its internal routes (no database needed).",
            envvar="REELSERVE_API_URL",
        ),
    ] = None,
    worker_token: Annotated[
        str | None,
        typer.Option(
            help="Token from `reelserve workers token create`.", envvar="REELSERVE_WORKER_TOKEN"
        ),
    ] = None,
    log_format: LogFormat = None,
) -> None:
    """Run one worker (one per GPU) against the same database and data folder, or, with
    --api-url and --worker-token, against a remote API."""
    import os
    import signal
    import threading

    from reelserve.cli.embedded import build_metrics, build_worker, load_engines, open_store
    from reelserve.core.metrics import NO_METRICS
    from reelserve.core.wakeups import QUEUE

    settings = _settings(
        data_dir,
        database_url,
        profile=profile,
        blob_url=blob_url,
        api_url=api_url,
        worker_token=worker_token,
        log_format=log_format,
    )
    _logging(log_level, settings.log_format)
    if settings.api_url:
        from reelserve.cli.remote_worker import run_remote_worker

        if not settings.worker_token:
            raise typer.BadParameter("--api-url needs --worker-token", param_hint="--worker-token")
        run_remote_worker(settings)
        return
    store = open_store(settings, listen=True)
    loaded = _engines(load_engines, settings)
    # Its counts reach /metrics only through a PROMETHEUS_MULTIPROC_DIR shared with the API
    # on this host; without one they would be seen by nobody.
    shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics = build_metrics(store) if shared else None
    the_worker = build_worker(
        settings,
        store,
        loaded.engines,
        loaded.random_weights,
        metrics=metrics or NO_METRICS,
        capabilities=loaded.capabilities,
    )
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
    if metrics is not None:
        metrics.close()


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
        if info.revoked_at and info.revoked_at > datetime.now(UTC).timestamp():
            # Rotated with a grace period: works until then.
            until = datetime.fromtimestamp(info.revoked_at, UTC).isoformat(timespec="seconds")
            state = f"active until {until}"
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
