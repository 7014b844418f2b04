"""``reelserve serve --log-format json`` as a real process: every line on stderr is one
JSON object, and the API's create line and the worker's completion line share the
request id. Profile ``fake`` (the GPU model cannot run here; this is about the logs)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.harness import KEY_LINE, free_port

pytestmark = pytest.mark.slow


def test_serve_writes_json_lines_with_one_request_id_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = {
        **os.environ,
        "REELSERVE_DATA_DIR": str(tmp_path / "data"),
        "REELSERVE_PROFILE": "fake",
        "REELSERVE_LOG_FORMAT": "json",
    }
    with stdout.open("w") as out, stderr.open("w") as err:
        server = subprocess.Popen(
            [sys.executable, "-m", "reelserve", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while not KEY_LINE.search(stdout.read_text()):
            assert server.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "no first-start key on stdout"
            time.sleep(0.2)
        found = KEY_LINE.search(stdout.read_text())
        assert found is not None
        auth = {"Authorization": f"Bearer {found.group(1)}", "X-Request-ID": "e2e-7"}
        created = httpx.post(
            f"{base}/generation/kling-ai/kling-v2.6", json={"prompt": "a cat"}, headers=auth
        )
        assert created.status_code == 200, created.text
        assert created.headers["x-request-id"] == "e2e-7"
        gen_id = created.json()["id"]
        while httpx.get(f"{base}/generation/{gen_id}", headers=auth).json()["status"] not in (
            "COMPLETED",
            "FAILED",
        ):
            assert time.monotonic() < deadline + 60, "the task did not end"
            time.sleep(0.2)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert re.search(
            r"^reelserve_tasks_ended_total\{status=\"COMPLETED\"\} 1\.0$", metrics, re.M
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)

    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    mine = [line for line in lines if line.get("request_id") == "e2e-7"]
    messages = {(line["logger"], line["message"]) for line in mine}
    assert any(
        logger == "reelserve.services.submit" and message.startswith("generation created")
        for logger, message in messages
    )
    assert ("reelserve.worker.runner", f"task {gen_id} completed") in messages
    assert any(logger == "uvicorn.access" for logger, _ in messages)  # uvicorn's too
