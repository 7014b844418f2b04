"""Real processes for acceptance tests: ``reelserve serve`` and ``reelserve worker``
started through the installed entry point, talking over loopback HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KEY_LINE = re.compile(r"API key \(shown once\): (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reelserve(*args: str, env: Mapping[str, str]) -> str:
    """Run a one-shot CLI command and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "reelserve", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[str]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn(root: Path, name: str, args: list[str], env: Mapping[str, str]) -> Process:
    """Start ``python -m reelserve ARGS`` with ``env`` over ours; output in ``root/name.log``."""
    log = root / f"{name}.log"
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            [sys.executable, "-m", "reelserve", *args],
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Process(name, popen, log)


@dataclass
class Deployment:
    """A server and its workers sharing one data folder (and maybe a PostgreSQL URL)."""

    root: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)
    key: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def _spawn(self, name: str, args: list[str], extra_env: Mapping[str, str]) -> Process:
        log_name = f"{name}-{len(self.processes)}"
        process = spawn(self.root, log_name, args, {**self.env, **extra_env})
        self.processes.append(process)
        return process

    def start_server(self, *args: str) -> Process:
        server = self._spawn("serve", ["serve", "--port", str(self.port), *args], {})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.popen.poll() is not None:
                raise AssertionError(f"serve exited:\n{server.text()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"serve never became ready:\n{server.text()}")
        found = KEY_LINE.search(server.text())
        if found:
            self.key = found.group(1)
        return server

    def start_worker(self, profile: str, **env: str) -> Process:
        worker = self._spawn("worker", ["worker"], {"REELSERVE_PROFILE": profile, **env})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if worker.popen.poll() is not None:
                raise AssertionError(f"worker exited:\n{worker.text()}")
            if "serving" in worker.text():
                return worker
            time.sleep(0.2)
        raise AssertionError(f"worker never started serving:\n{worker.text()}")

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def wait(self, gen_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        record: dict[str, Any] = {}
        while time.monotonic() < deadline:
            record = httpx.get(
                f"{self.base}/generation/{gen_id}", headers=self.headers, timeout=10
            ).json()
            if record["status"] in ("COMPLETED", "FAILED", "CANCELED"):
                return record
            time.sleep(0.2)
        raise AssertionError(f"{gen_id} not finished after {timeout}s: {record}")
