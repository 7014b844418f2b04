"""Client-side commands: ``generate``, ``status``, ``cancel``, ``list`` and ``credits``
(without a subcommand: the caller's balance). They reach a server over its HTTP API
through ``reelserve.client`` only, never the server packages, and import it inside the
commands so that ``reelserve --help`` stays fast.

The server and key come from ``--base-url``/``--api-key`` or ``REELSERVE_BASE_URL``/
``REELSERVE_API_KEY``. Progress and messages go to stderr; stdout carries the result
only (with ``--json``, the raw record(s)). Exit codes are listed in
``reelserve.cli.exits``: 0 success, 1 the generation ended FAILED or CANCELED, 2 usage
error, 3 API error, 4 could not connect, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reelserve.cli import exits
from reelserve.cli.exits import say

if TYPE_CHECKING:
    from reelserve.client import Client, Generation, MediaInput

DEFAULT_MODEL = "kling-ai/kling-v2.6"  # reelserve.client.DEFAULT_MODEL, without importing it
CONNECTION = "Connection"
BODY = "Generation options"
MOTION = "Motion control"

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="The API's base URL (default http://127.0.0.1:8000/api/v1).",
        envvar="REELSERVE_BASE_URL",
        show_envvar=True,
        rich_help_panel=CONNECTION,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key (see `reelserve keys create`).",
        envvar="REELSERVE_API_KEY",
        show_envvar=True,
        show_default=False,
        rich_help_panel=CONNECTION,
    ),
]
Json = Annotated[
    bool,
    typer.Option("--json", help="Print the raw record(s) as JSON on stdout, nothing else."),
]


class StatusName(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


BAD_ENDINGS = frozenset({StatusName.FAILED.value, StatusName.CANCELED.value})


def _client(base_url: str | None, api_key: str | None) -> Client:
    from reelserve.client import Client

    if not api_key:
        exits.fail(exits.USAGE, "error: no API key: pass --api-key or set REELSERVE_API_KEY")
    return Client(base_url=base_url, api_key=api_key)


def _media(value: str | None, flag: str) -> MediaInput | None:
    """A URL as is; anything else is a local file, which must exist."""
    if value is None:
        return None
    if value.startswith(("http://", "https://")):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {value}", param_hint=flag)
    return path


def _destination(output: Path | None) -> Path:
    """Where the MP4 goes, checked before anything is created (and charged)."""
    if output is None:
        return Path.cwd()
    if output.is_dir():
        return output
    if not output.parent.is_dir():
        raise typer.BadParameter(f"no such folder: {output.parent}", param_hint="--output")
    return output


def _exit_code(record: Generation) -> int:
    return exits.ENDED_BADLY if record.status in BAD_ENDINGS else exits.OK


def _ending(record: Generation) -> str:
    """A one-line account of a finished (or not) generation, for stderr."""
    if record.status == StatusName.FAILED:
        return f"{record.id} FAILED ({record.code or 'no code'}): {record.message or ''}"
    if record.status == StatusName.COMPLETED:
        video = record.video
        facts = []
        if video is not None and video.width and video.height:
            facts.append(f"{video.width}x{video.height}")
        if video is not None and video.duration is not None:
            facts.append(f"{video.duration:g} s")
        if record.usage is not None:
            facts.append(f"{record.usage.total} credits")
        return f"{record.id} COMPLETED" + (f" ({', '.join(facts)})" if facts else "")
    return f"{record.id} {record.status}"


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(question: str) -> bool:
    """Ask on the terminal; no (the default) on Ctrl-C or end of input."""
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:
        return False


def stop(client: Client, generation_id: str) -> Generation:
    """Cancel and wait for the terminal record (a running task stops at its next step).
    A task that already ended raises ``ConflictError``."""
    record = client.generations.cancel(generation_id)
    if not record.done:
        say(f"cancel requested; waiting for {generation_id} to stop…")
        for record in client.generations.follow(generation_id):
            if record.done:
                break
    return record


def after_interrupt(
    client: Client,
    last: Generation | None,
    *,
    ask: Callable[[str], bool] | None,
    as_json: bool = False,
) -> int:
    """Ctrl-C while following a new generation: ``ask`` (None without a terminal) whether
    to cancel it; leave it running otherwise. The exit code (130)."""
    from reelserve.client import ConflictError

    if last is None:
        say("interrupted before the server answered; see `reelserve list --running`")
        return exits.INTERRUPTED
    if ask is not None and not last.done and ask(f"Cancel generation {last.id}?"):
        try:
            final = stop(client, last.id)
        except ConflictError as exc:
            if exc.record is None:
                raise
            final = exc.record
        say(_ending(final))
        if as_json:
            from reelserve.cli.views import print_json, raw

            print_json(raw(final))
        return exits.INTERRUPTED
    say(f"{last.id} keeps running; follow it with: reelserve status {last.id} --follow")
    return exits.INTERRUPTED


def generate(
    prompt: Annotated[
        str | None,
        typer.Argument(help="What to film (optional in motion control).", show_default=False),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="provider/model.", rich_help_panel=BODY)
    ] = DEFAULT_MODEL,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            "-i",
            metavar="FILE|URL",
            help="Start frame (image-to-video); the character in motion control.",
            rich_help_panel=BODY,
        ),
    ] = None,
    end_image: Annotated[
        str | None,
        typer.Option(
            "--end-image",
            metavar="FILE|URL",
            help="Last frame (needs --image).",
            rich_help_panel=BODY,
        ),
    ] = None,
    video: Annotated[
        str | None,
        typer.Option(
            "--video",
            metavar="FILE|URL",
            help="Motion reference video: makes it motion control (needs --image).",
            rich_help_panel=MOTION,
        ),
    ] = None,
    aspect: Annotated[
        str | None,
        typer.Option(
            "--aspect",
            help="16:9 (default), 9:16 or 1:1.",
            show_default=False,
            rich_help_panel=BODY,
        ),
    ] = None,
    duration: Annotated[
        int | None,
        typer.Option(help="Seconds: 5 (default) or 10.", show_default=False, rich_help_panel=BODY),
    ] = None,
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="No generated sound.", rich_help_panel=BODY)
    ] = False,
    quality: Annotated[
        str | None,
        typer.Option(help="standard (default) or pro.", show_default=False, rich_help_panel=BODY),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="For reproducible runs.", rich_help_panel=BODY)
    ] = None,
    negative_prompt: Annotated[
        str | None, typer.Option(help="What to keep out.", rich_help_panel=BODY)
    ] = None,
    orientation: Annotated[
        str | None,
        typer.Option(
            help="image or video (default): whose framing the character follows.",
            show_default=False,
            rich_help_panel=MOTION,
        ),
    ] = None,
    no_original_sound: Annotated[
        bool,
        typer.Option(
            "--no-original-sound",
            help="Do not copy the reference video's sound.",
            rich_help_panel=MOTION,
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File or folder for the MP4 (default: the server's file name, here).",
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Create a video, follow it live and download the MP4 once it is COMPLETED.

    Ctrl-C asks whether to cancel it; without a terminal it keeps running.

    `reelserve status ID --follow` picks a running generation up again.
    """
    from reelserve.cli.progress import Interrupted, open_display, watch
    from reelserve.cli.views import print_json, raw

    start, end, reference = (
        _media(image, "--image"),
        _media(end_image, "--end-image"),
        _media(video, "--video"),
    )
    target = _destination(output)
    options: dict[str, Any] = {
        "aspect_ratio": aspect,
        "duration": duration,
        "quality": quality,
        "seed": seed,
        "negative_prompt": negative_prompt,
        "character_orientation": orientation,
        "generate_audio": False if no_audio else None,
        "keep_original_sound": False if no_original_sound else None,
    }
    body = {name: value for name, value in options.items() if value is not None}
    saved: Path | None = None
    with exits.reporting(base_url), _client(base_url, api_key) as client:
        records = client.generations.stream(
            model, prompt=prompt, image=start, end_image=end, video=reference, **body
        )
        try:
            record = watch(records, open_display())
        except Interrupted as stopped:
            ask = confirm if _interactive() else None
            code = after_interrupt(client, stopped.last, ask=ask, as_json=as_json)
            raise typer.Exit(code) from None
        say(_ending(record))
        if record.status == StatusName.COMPLETED:
            try:
                saved = client.generations.download(record, target)
            except OSError as exc:
                exits.fail(exits.USAGE, f"error: could not save the video: {exc}")
            if as_json:
                say(f"saved {saved}")
    if as_json:
        print_json(raw(record))
    elif saved is not None:
        typer.echo(str(saved))
    raise typer.Exit(_exit_code(record))


def status(
    generation_id: Annotated[str, typer.Argument(metavar="ID", help="gen_…")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow it live until it ends.")
    ] = False,
    as_json: Json = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Show a generation (exit 1 when it ended FAILED or CANCELED)."""
    from reelserve.cli.progress import Interrupted, open_display, watch
    from reelserve.cli.views import print_details, print_json, raw

    with exits.reporting(base_url), _client(base_url, api_key) as client:
        if follow:
            try:
                record = watch(client.generations.follow(generation_id), open_display())
            except Interrupted:
                say(f"stopped following {generation_id}; it keeps running")
                raise typer.Exit(exits.INTERRUPTED) from None
        else:
            record = client.generations.get(generation_id)
    if as_json:
        print_json(raw(record))
    else:
        print_details(record)
    raise typer.Exit(_exit_code(record))


def cancel(
    generation_id: Annotated[str, typer.Argument(metavar="ID", help="gen_…")],
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait until a running generation has stopped."),
    ] = True,
    as_json: Json = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Cancel a generation; its reserved credits are released.

    A queued one is CANCELED at once, a running one at its next step.

    One that already ended is an API error (409, exit 3).
    """
    from reelserve.cli.views import print_details, print_json, raw

    with exits.reporting(base_url), _client(base_url, api_key) as client:
        record = stop(client, generation_id) if wait else client.generations.cancel(generation_id)
    if as_json:
        print_json(raw(record))
    else:
        print_details(record)
    if record.done and record.status != StatusName.CANCELED:
        exits.fail(exits.ENDED_BADLY, f"{_ending(record)}: it ended before the cancel")


def list_generations(
    running: Annotated[
        bool, typer.Option("--running", help="Only queued and running ones.")
    ] = False,
    status_name: Annotated[
        StatusName | None,
        typer.Option("--status", help="Only this status.", case_sensitive=False),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 20,
    as_json: Json = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Your generations, newest first (a table on a terminal, tab-separated otherwise)."""
    from rich.console import Console

    from reelserve.cli.views import (
        HISTORY_COLUMNS,
        RUNNING_COLUMNS,
        history_rows,
        print_json,
        print_rows,
        raw,
        running_rows,
    )

    if running and status_name is not None:
        raise typer.BadParameter("--status filters the history; leave it out with --running")
    wanted = status_name.value if status_name is not None else None
    with exits.reporting(base_url), _client(base_url, api_key) as client:
        if running:
            items = client.generations.running(limit=limit)
            records: list[Generation] = []
            more = False
        else:
            page = client.generations.list(limit=limit, status=wanted)
            items, records, more = [], page.items, page.has_more
    if as_json:
        print_json([raw(item) for item in (items if running else records)])
    elif running:
        if items:
            print_rows(RUNNING_COLUMNS, running_rows(items), Console())
        else:
            say("no queued or running generations")
    elif records:
        print_rows(HISTORY_COLUMNS, history_rows(records), Console())
        if more:
            say(f"(more than {limit}; --limit goes up to 100)")
    else:
        say("no generations")


def credits_balance(
    ctx: typer.Context,
    as_json: Json = False,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Your workspace's balance, over the API.

    `grant` and `show` are admin commands: they open the server's database directly.
    """
    if ctx.invoked_subcommand is not None:
        return
    from reelserve.cli.views import credits_line, print_json, raw

    with exits.reporting(base_url), _client(base_url, api_key) as client:
        balance = client.credits()
    if as_json:
        print_json(raw(balance))
    else:
        typer.echo(credits_line(balance))
