"""How records look on stdout: JSON for scripts, aligned lines for one record, a table
(on a terminal) or tab-separated lines (otherwise) for several, a line for the balance."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from reelserve.cli.progress import percent_of, queue_text
from reelserve.client import Credits, Generation, RunningItem

_SPACES = re.compile(r"\s+")


def raw(record: Generation | RunningItem | Credits) -> dict[str, Any]:
    """The record as the server sent it (fields it did not send stay out)."""
    return record.model_dump(mode="json", by_alias=True, exclude_unset=True)


def print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def one_line(text: object) -> str:
    return _SPACES.sub(" ", str(text)).strip() if text is not None else ""


def _settings(values: dict[str, Any]) -> str:
    parts: list[str] = []
    if values.get("duration") is not None:
        parts.append(f"{values['duration']} s")
    for key in ("aspect_ratio", "quality"):
        if values.get(key) is not None:
            parts.append(str(values[key]))
    if values.get("generate_audio") is False:
        parts.append("no audio")
    if values.get("seed") is not None:
        parts.append(f"seed {values['seed']}")
    return ", ".join(parts)


def details(record: Generation) -> list[tuple[str, str]]:
    """The fields of one record worth reading, as (label, value) pairs."""
    rows = [("id", record.id), ("status", record.status), ("progress", f"{percent_of(record)}%")]
    queue = queue_text(record)
    if queue is not None:
        rows.append(("queue", queue))
    source = record.input
    for label, key in (("prompt", "prompt"), ("feature", "feature")):
        if source.get(key):
            rows.append((label, one_line(source[key])))
    settings = _settings(source)
    if settings:
        rows.append(("settings", settings))
    if record.usage is not None:
        rows.append(("credits", str(record.usage.total)))
    for label, stamp in (
        ("created", record.created_at),
        ("started", record.started_at),
        ("completed", record.completed_at),
    ):
        if stamp is not None:
            rows.append((label, when(stamp)))
    for video in record.videos:
        size = f"{video.width}x{video.height}" if video.width and video.height else "video"
        length = f", {video.duration:g} s" if video.duration is not None else ""
        sound = {True: ", audio", False: ", silent", None: ""}[video.has_audio]
        rows.append(("video", f"{size}{length}{sound} ({video.file_name or 'mp4'})"))
        if video.url is None and video.expired_at is not None:
            rows.append(("url", f"expired {when(video.expired_at)} (file deleted)"))
        else:
            rows.append(("url", video.url or ""))
    if record.code or record.message:
        rows.append(("error", f"{record.code or 'ERROR'}: {record.message or ''}"))
    return rows


def print_details(record: Generation) -> None:
    rows = details(record)
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        typer.echo(f"{label:<{width}}{value}")


HISTORY_COLUMNS = ("ID", "STATUS", "PROGRESS", "CREATED", "PROMPT")
RUNNING_COLUMNS = ("ID", "STATUS", "CREDITS", "PROMPT")


def history_rows(records: Sequence[Generation]) -> list[tuple[str, ...]]:
    return [
        (
            r.id,
            r.status,
            f"{percent_of(r)}%",
            when(r.created_at),
            one_line(r.input.get("prompt")),
        )
        for r in records
    ]


def running_rows(items: Sequence[RunningItem]) -> list[tuple[str, ...]]:
    return [
        (
            item.id,
            item.status,
            str(item.usage.total) if item.usage is not None else "",
            one_line(item.input.get("prompt")),
        )
        for item in items
    ]


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[str]], console: Console) -> None:
    """A table on a terminal; tab-separated lines without a header otherwise."""
    if console.is_terminal:
        table = Table(*columns, box=None, header_style="bold", pad_edge=False)
        table.columns[-1].overflow = "ellipsis"
        table.columns[-1].no_wrap = True
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    for row in rows:
        typer.echo("\t".join(row))


def credits_line(balance: Credits) -> str:
    """As ``reelserve credits show`` prints it."""
    end = when(balance.subscription_period_end) or "none"
    return (
        f"workspace {balance.workspace or '?'}: subscription {balance.subscription} "
        f"(period end {end}), permanent {balance.permanent}, total {balance.total}"
    )
