"""Exit codes of the client-side commands (``generate``, ``status``, ``cancel``, ``list``,
``credits``), and the translation of the SDK's exceptions into them.

====  ===================================================================================
0     success: the generation ended COMPLETED, or the command did what it said
1     the generation ended FAILED or CANCELED (``cancel``: it ended otherwise first)
2     usage error: a bad option, a missing input file or output folder, no API key, an
      output that cannot be written
3     API error: the server answered 4xx or 5xx (its message, which names the field, is
      printed)
4     could not connect to the server
130   interrupted (Ctrl-C); a generation being followed keeps running unless canceled
====  ===================================================================================

Messages go to stderr; stdout carries only the result (a path, a record, or with
``--json`` the raw record(s) as JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from reelserve.client import APIStatusError

OK = 0
ENDED_BADLY = 1
USAGE = 2
API_ERROR = 3
NO_CONNECTION = 4
INTERRUPTED = 130

EPILOG = (
    "Exit codes: 0 success (COMPLETED, or the command did what it said); "
    "1 the generation ended FAILED or CANCELED; 2 usage error; "
    "3 API error (4xx/5xx, the server's message is printed); "
    "4 could not connect; 130 interrupted."
)

API_SUFFIX = "/api/v1"


def say(message: str) -> None:
    """A message for the person at the terminal: always stderr."""
    typer.echo(message, err=True)


def fail(code: int, message: str) -> NoReturn:
    say(message)
    raise typer.Exit(code)


@contextmanager
def reporting(base_url: str | None) -> Iterator[None]:
    """Turn the SDK's exceptions (and Ctrl-C) raised inside into a message on stderr and
    the documented exit code."""
    from reelserve.client import (
        APIConnectionError,
        APIResponseError,
        APIStatusError,
        AuthenticationError,
        ReelserveError,
    )

    try:
        yield
    except AuthenticationError as exc:
        fail(API_ERROR, f"error: {_status_line(exc)} (check --api-key or REELSERVE_API_KEY)")
    except APIStatusError as exc:
        hint = ""
        if exc.status == 404 and base_url and not base_url.rstrip("/").endswith(API_SUFFIX):
            hint = f" (the base URL usually ends in {API_SUFFIX})"
        fail(API_ERROR, f"error: {_status_line(exc)}{hint}")
    except APIConnectionError as exc:
        fail(NO_CONNECTION, f"error: could not connect to the server: {exc}")
    except APIResponseError as exc:
        fail(API_ERROR, f"error: unexpected answer from the server: {exc}")
    except ReelserveError as exc:
        fail(USAGE, f"error: {exc}")
    except KeyboardInterrupt:
        fail(INTERRUPTED, "interrupted")


def _status_line(exc: APIStatusError) -> str:
    code = f" {exc.code}" if exc.code else ""
    return f"{exc.status}{code}: {exc.message}"
