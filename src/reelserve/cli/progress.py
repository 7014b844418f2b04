"""Following a generation on screen, on stderr: a rich live display (id, status, queue
position while queued, percent bar, elapsed time) when stderr is a terminal, one plain
line per change otherwise (logs, pipes, CI)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from reelserve.client import APIResponseError, Generation, Status

STATUS_STYLES = {
    Status.IN_QUEUE.value: "yellow",
    Status.IN_PROGRESS.value: "cyan",
    Status.COMPLETED.value: "green",
    Status.FAILED.value: "red",
    Status.CANCELED.value: "magenta",
}
BAR_WIDTH = 30

Clock = Callable[[], float]


class Interrupted(Exception):
    """Ctrl-C while following; ``last`` is the last record seen (None before the first)."""

    def __init__(self, last: Generation | None) -> None:
        super().__init__("interrupted")
        self.last = last


def percent_of(record: Generation) -> int:
    if record.progress is None:
        return 100 if record.status == Status.COMPLETED else 0
    return max(0, min(100, record.progress))


def queue_text(record: Generation) -> str | None:
    """``"2 ahead in queue"`` while IN_QUEUE (the position is 0-based: tasks ahead)."""
    if record.status != Status.IN_QUEUE or record.queue_position is None:
        return None
    return f"{record.queue_position} ahead in queue"


def clock_text(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def render(record: Generation | None, elapsed: float) -> RenderableType:
    """One frame of the live display."""
    grid = Table.grid(padding=(0, 1))
    if record is None:
        grid.add_row(
            Text("creating the generation…"),
            ProgressBar(width=BAR_WIDTH, pulse=True),
            Text(clock_text(elapsed), style="dim"),
        )
        return grid
    percent = percent_of(record)
    waiting = record.status == Status.IN_QUEUE
    cells: list[RenderableType] = [
        Text(record.id, style="bold"),
        Text(record.status, style=STATUS_STYLES.get(record.status, "")),
        ProgressBar(total=100, completed=percent, width=BAR_WIDTH, pulse=waiting),
        Text(f"{percent:>3d}%"),
        Text(clock_text(elapsed), style="dim"),
    ]
    queue = queue_text(record)
    if queue is not None:
        cells.append(Text(queue, style="yellow"))
    grid.add_row(*cells)
    if record.status == Status.FAILED and (record.code or record.message):
        grid.add_row(Text(f"{record.code or 'FAILED'}: {record.message or ''}", style="red"))
    return grid


def plain_line(record: Generation, elapsed: float) -> str:
    """One line of the plain display: ``gen_… IN_PROGRESS 40% 3.2s``."""
    queue = queue_text(record)
    extra = f" ({queue})" if queue is not None else ""
    return f"{record.id} {record.status} {percent_of(record)}%{extra} {elapsed:.1f}s"


class Display(Protocol):
    def update(self, record: Generation) -> None: ...

    def close(self) -> None: ...


class PlainDisplay:
    """A line each time the status, percent or queue position changes."""

    def __init__(self, write: Callable[[str], None], clock: Clock = time.monotonic) -> None:
        self._write = write
        self._clock = clock
        self._start = clock()
        self._shown: tuple[str, int, int | None] | None = None

    def update(self, record: Generation) -> None:
        state = (record.status, percent_of(record), record.queue_position)
        if state != self._shown:
            self._shown = state
            self._write(plain_line(record, self._clock() - self._start))

    def close(self) -> None:
        return None


class LiveDisplay:
    """``render`` redrawn four times a second (so the elapsed time ticks) and on change."""

    def __init__(self, console: Console, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._record: Generation | None = None
        self._live = Live(
            console=console,
            get_renderable=self._frame,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def _frame(self) -> RenderableType:
        return render(self._record, self._clock() - self._start)

    def update(self, record: Generation) -> None:
        self._record = record
        self._live.refresh()

    def close(self) -> None:
        self._live.stop()


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def open_display(console: Console | None = None) -> Display:
    """The live display when ``console`` (default: stderr) is a terminal, else plain."""
    console = console if console is not None else Console(stderr=True)
    if console.is_terminal and not console.is_dumb_terminal:
        return LiveDisplay(console)
    return PlainDisplay(_to_stderr)


def watch(records: Iterator[Generation], display: Display) -> Generation:
    """Show each record as it comes; the last one (terminal, for the SDK's streams).
    Ctrl-C raises ``Interrupted``; the display is closed in every case."""
    last: Generation | None = None
    try:
        for record in records:
            last = record
            display.update(record)
    except KeyboardInterrupt:
        raise Interrupted(last) from None
    finally:
        display.close()
        close = getattr(records, "close", None)
        if callable(close):
            close()
    if last is None:
        raise APIResponseError("the event stream ended before the first record")
    return last
