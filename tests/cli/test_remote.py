"""The client-side commands through the real entry point (``python -m reelserve`` in a
subprocess, no terminal attached) against real servers on loopback (see conftest.py)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from reelserve.media import probe_output
from tests.cli.conftest import Account, Cli, clean_env, command
from tests.fixtures import LANDSCAPE_PNG

pytestmark = pytest.mark.slow  # real processes

# A plain progress line: "gen_… IN_PROGRESS 47% 0.7s".
PROGRESS_LINE = re.compile(r"^(gen_\w+) (IN_QUEUE|IN_PROGRESS|COMPLETED) (\d+)%", re.MULTILINE)


def test_generate_follows_and_downloads_the_mp4(cli: Cli, live: Account) -> None:
    result = cli("generate", "a cat walking through neon rain", account=live)

    assert result.returncode == 0, result.stderr
    saved = Path(result.stdout.strip())  # stdout is the path, nothing else
    assert saved.parent == cli.cwd
    info = probe_output(saved)
    assert (info.width, info.height, info.duration) == (1280, 720, 5.04)
    lines = PROGRESS_LINE.findall(result.stderr)
    ids = {line[0] for line in lines}
    statuses = [line[1] for line in lines]
    percents = [int(line[2]) for line in lines]
    assert len(ids) == 1
    assert statuses[0] == "IN_QUEUE"
    assert "IN_PROGRESS" in statuses
    assert statuses[-1] == "COMPLETED"
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert len(set(percents)) >= 3  # 0, at least one step on the way, 100
    with live.client() as client:
        record = client.generations.get(ids.pop())
    assert record.video is not None
    assert saved.name == record.video.file_name  # the server's file name, in the cwd
    assert f"{record.id} COMPLETED (1280x720, 5.04 s, 20 credits)" in result.stderr


def test_generate_from_an_image_with_options_as_json(cli: Cli, live: Account) -> None:
    result = cli(
        "generate",
        "the waves roll in",
        "--image",
        str(LANDSCAPE_PNG),
        "--aspect",
        "9:16",
        "--no-audio",
        "--seed",
        "7",
        "-o",
        "clip.mp4",
        "--json",
        account=live,
    )

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)  # the raw record and nothing else
    assert record["status"] == "COMPLETED"
    assert record["input"]["image_url"].startswith("http")  # the upload, stored
    assert record["input"]["aspect_ratio"] == "9:16"
    assert record["input"]["generate_audio"] is False
    assert record["input"]["seed"] == 7
    assert record["data"]["video"]["width"] == 720
    info = probe_output(cli.cwd / "clip.mp4")
    assert (info.width, info.height, info.has_audio) == (720, 1280, False)
    assert "saved clip.mp4" in result.stderr


def test_a_rejected_body_is_an_api_error_naming_the_field(cli: Cli, live: Account) -> None:
    result = cli("generate", "a cat", "--duration", "7", account=live)

    assert result.returncode == 3
    assert result.stdout == ""
    assert "400" in result.stderr
    assert "duration" in result.stderr
    with live.client() as client:
        assert client.credits().total == 1000  # nothing stored, nothing charged


def test_a_wrong_key_is_an_api_error(cli: Cli, live: Account) -> None:
    result = cli("generate", "a cat", "--api-key", "rs_not_a_key", account=live)

    assert result.returncode == 3
    assert "401" in result.stderr
    assert "REELSERVE_API_KEY" in result.stderr


def test_an_unreachable_server_is_exit_4(cli: Cli, unused_port: int) -> None:
    base = f"http://127.0.0.1:{unused_port}/api/v1"
    result = cli("generate", "a cat", "--base-url", base, "--api-key", "rs_x")

    assert result.returncode == 4
    assert "could not connect" in result.stderr
    assert result.stdout == ""


def test_usage_errors_are_exit_2(cli: Cli, live: Account) -> None:
    no_key = cli("credits")
    assert no_key.returncode == 2
    assert "REELSERVE_API_KEY" in no_key.stderr

    missing = cli("generate", "a cat", "--image", "nowhere.png", account=live)
    assert missing.returncode == 2
    assert "nowhere.png" in missing.stderr

    no_folder = cli("generate", "a cat", "-o", "no/such/dir/clip.mp4", account=live)
    assert no_folder.returncode == 2

    both = cli("list", "--running", "--status", "FAILED", account=live)
    assert both.returncode == 2
    with live.client() as client:
        assert client.generations.list().items == []  # none of them created anything


def test_status_list_and_credits_of_a_finished_generation(cli: Cli, live: Account) -> None:
    with live.client() as client:
        record = client.generations.create_and_wait(prompt="a lighthouse", poll_interval=0.1)

    shown = cli("status", record.id, account=live)
    assert shown.returncode == 0, shown.stderr
    assert record.id in shown.stdout
    assert "COMPLETED" in shown.stdout
    assert "1280x720, 5.04 s, audio" in shown.stdout
    assert "a lighthouse" in shown.stdout

    raw = cli("status", record.id, "--json", account=live)
    assert json.loads(raw.stdout)["id"] == record.id

    followed = cli("status", record.id, "--follow", account=live)
    assert followed.returncode == 0
    assert PROGRESS_LINE.findall(followed.stderr)[-1][1:] == ("COMPLETED", "100")

    listed = cli("list", account=live)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split("\t")[:3] == [record.id, "COMPLETED", "100%"]
    filtered = cli("list", "--status", "completed", "--json", account=live)
    assert [item["id"] for item in json.loads(filtered.stdout)] == [record.id]
    none = cli("list", "--status", "FAILED", "--json", account=live)
    assert json.loads(none.stdout) == []

    balance = cli("credits", account=live)
    assert balance.returncode == 0
    assert f"workspace {live.workspace}:" in balance.stdout
    assert "total 980" in balance.stdout  # 1000 less the 20 captured
    assert json.loads(cli("credits", "--json", account=live).stdout)["total"] == 980


def test_cancel_list_running_and_status_of_a_canceled_one(cli: Cli, queued: Account) -> None:
    with queued.client() as client:
        first = client.generations.create(prompt="one")
        second = client.generations.create(prompt="two")

    running = cli("list", "--running", account=queued)
    assert running.returncode == 0
    rows = [line.split("\t") for line in running.stdout.splitlines()]
    assert {(row[0], row[1]) for row in rows} == {(first.id, "IN_QUEUE"), (second.id, "IN_QUEUE")}

    canceled = cli("cancel", first.id, account=queued)
    assert canceled.returncode == 0, canceled.stderr
    assert "CANCELED" in canceled.stdout

    again = cli("cancel", first.id, account=queued)
    assert again.returncode == 3
    assert "409" in again.stderr
    assert "already CANCELED" in again.stderr

    status = cli("status", first.id, account=queued)
    assert status.returncode == 1  # it ended CANCELED
    assert "CANCELED" in status.stdout

    as_json = cli("cancel", second.id, "--json", account=queued)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["status"] == "CANCELED"
    assert json.loads(cli("credits", "--json", account=queued).stdout)["total"] == 1000

    unknown = cli("status", "gen_nope", account=queued)
    assert unknown.returncode == 3
    assert "404" in unknown.stderr


def test_ctrl_c_without_a_terminal_leaves_the_generation_running(cli: Cli, queued: Account) -> None:
    proc = subprocess.Popen(
        command("generate", "a long one"),
        cwd=cli.cwd,
        env=clean_env(queued.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the IN_QUEUE line: the task exists
        match = PROGRESS_LINE.match(first)
        assert match is not None, first
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=20)
    finally:
        watchdog.cancel()

    generation_id = match.group(1)
    assert proc.returncode == 130
    assert stdout == ""
    assert f"reelserve status {generation_id}" in rest
    with queued.client() as client:
        assert client.generations.get(generation_id).status == "IN_QUEUE"
