"""The progress display, the Ctrl-C decision and the help, in process: the rich renderer
is fed records and rendered to a terminal-like console writing into a string."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from reelserve.cli.main import app
from reelserve.cli.progress import LiveDisplay, PlainDisplay, open_display, plain_line, render
from reelserve.cli.remote import after_interrupt
from reelserve.client import Generation
from tests.cli.conftest import Account, clean_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def record(status: str, **fields: Any) -> Generation:
    return Generation.model_validate({"id": "gen_01TEST", "status": status, **fields})


def terminal() -> tuple[Console, StringIO]:
    out = StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def shown(renderable: Any) -> str:
    console, out = terminal()
    console.print(renderable)
    return ANSI.sub("", out.getvalue())


def test_render_a_queued_record_shows_its_queue_position() -> None:
    text = shown(render(record("IN_QUEUE", progress=0, queue_position=2), 3.0))

    assert "gen_01TEST" in text
    assert "IN_QUEUE" in text
    assert "2 ahead in queue" in text
    assert "0%" in text
    assert "0:03" in text


def test_render_a_running_record_shows_percent_and_elapsed_time() -> None:
    text = shown(render(record("IN_PROGRESS", progress=42, queue_position=None), 65.0))

    assert "IN_PROGRESS" in text
    assert "42%" in text
    assert "1:05" in text
    assert "ahead" not in text


def test_render_before_the_first_record_and_after_a_failure() -> None:
    assert "creating the generation" in shown(render(None, 0.5))
    failed = shown(render(record("FAILED", progress=30, code="E_ENGINE", message="it broke"), 9))
    assert "FAILED" in failed
    assert "E_ENGINE: it broke" in failed


def test_plain_display_writes_a_line_per_change() -> None:
    lines: list[str] = []
    display = PlainDisplay(lines.append, clock=lambda: 0.0)
    for state in (
        record("IN_QUEUE", progress=0, queue_position=1),
        record("IN_QUEUE", progress=0, queue_position=1),  # no change: no line
        record("IN_QUEUE", progress=0, queue_position=0),
        record("IN_PROGRESS", progress=40),
        record("COMPLETED", progress=100),
    ):
        display.update(state)
    display.close()

    assert lines == [
        "gen_01TEST IN_QUEUE 0% (1 ahead in queue) 0.0s",
        "gen_01TEST IN_QUEUE 0% (0 ahead in queue) 0.0s",
        "gen_01TEST IN_PROGRESS 40% 0.0s",
        "gen_01TEST COMPLETED 100% 0.0s",
    ]
    assert plain_line(record("COMPLETED"), 1.25) == "gen_01TEST COMPLETED 100% 1.2s"


def test_the_live_display_on_a_terminal_and_plain_lines_elsewhere() -> None:
    console, out = terminal()
    display = open_display(console)
    assert isinstance(display, LiveDisplay)
    display.update(record("IN_PROGRESS", progress=75))
    display.close()
    assert "75%" in ANSI.sub("", out.getvalue())

    pipe = Console(file=StringIO())
    assert isinstance(open_display(pipe), PlainDisplay)


def test_ctrl_c_asks_then_cancels_or_leaves_it_running(
    queued: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    questions: list[str] = []

    def yes(question: str) -> bool:
        questions.append(question)
        return True

    with queued.client() as client:
        kept = client.generations.create(prompt="keep me")
        dropped = client.generations.create(prompt="drop me")

        assert after_interrupt(client, kept, ask=None) == 130  # no terminal: no question
        assert after_interrupt(client, kept, ask=lambda _: False) == 130
        assert client.generations.get(kept.id).status == "IN_QUEUE"
        assert f"reelserve status {kept.id}" in capsys.readouterr().err

        assert after_interrupt(client, dropped, ask=yes, as_json=True) == 130
        assert questions == [f"Cancel generation {dropped.id}?"]
        assert client.generations.get(dropped.id).status == "CANCELED"
        out = capsys.readouterr()
        assert f"{dropped.id} CANCELED" in out.err
        assert '"status": "CANCELED"' in out.out

        assert after_interrupt(client, None, ask=yes) == 130  # before the first record
        assert "list --running" in capsys.readouterr().err


def test_help_lists_the_commands_and_the_exit_codes() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"], terminal_width=100)
    assert top.exit_code == 0
    for name in ("generate", "status", "cancel", "list", "credits", "serve", "keys"):
        assert name in top.output
    assert "Exit codes" in top.output
    assert "130 interrupted" in top.output
    generate = runner.invoke(app, ["generate", "--help"], terminal_width=100)
    assert "Exit codes" in generate.output
    assert "REELSERVE_API_KEY" in generate.output
    credits = runner.invoke(app, ["credits", "--help"], terminal_width=100)
    assert "grant" in credits.output
    assert "show" in credits.output


SERVER_PACKAGES = {
    "api",
    "blobs",
    "core",
    "engines",
    "media",
    "models",
    "services",
    "settings",
    "store",
    "worker",
}


def test_client_commands_load_no_server_package(queued: Account) -> None:
    script = (
        "import sys\n"
        "from reelserve.cli.main import app\n"
        "for args in (['credits'], ['list', '--running'], ['status', 'gen_nope']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('reelserve.'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(queued.env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = result.stdout.splitlines()[-1].split()  # after the commands' own output
    assert "reelserve.client" in loaded
    assert [m for m in loaded if m.split(".")[1] in SERVER_PACKAGES] == []
