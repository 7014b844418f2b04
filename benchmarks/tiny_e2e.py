"""Wall time of each mode through the HTTP API (create to the terminal SSE event), tiny
profile against the fake engine.

Starts ``reelserve serve`` (API + embedded worker) on a free port with a fresh data folder,
once with the ``fake`` profile (the service's own cost: queue, fetch, MP4 encode, storage)
and once with ``tiny`` (real diffusers pipelines with tiny random weights), runs every mode
a few times, and prints median seconds per mode and the ratio tiny / fake.

    python benchmarks/tiny_e2e.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MODEL = "kling-ai/kling-v2.6"
KEY_LINE = re.compile(r"API key \(shown once\): (\S+)")

MODES: dict[str, tuple[str, dict[str, Any], dict[str, Path]]] = {
    "text-to-video 5 s": (MODEL, {"prompt": "a cat walking through neon rain"}, {}),
    "image-to-video 5 s": (
        MODEL,
        {"prompt": "waves"},
        {"image_url": FIXTURES / "landscape_640x360.png"},
    ),
    "first+last frame 5 s": (
        MODEL,
        {"prompt": "day to night"},
        {
            "image_url": FIXTURES / "landscape_640x360.png",
            "end_image_url": FIXTURES / "square_480x480.jpg",
        },
    ),
    "motion control 3.5 s": (
        "kling-ai/motion-control-v2.6",
        {},
        {"image_url": FIXTURES / "square_480x480.jpg", "video_url": FIXTURES / "clip_3.5s_av.mp4"},
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    profile: str, data_dir: Path, models_dir: Path
) -> tuple[subprocess.Popen[str], str, str, Path]:
    port = free_port()
    log = data_dir / "serve.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "REELSERVE_DATA_DIR": str(data_dir),
        "REELSERVE_PROFILE": profile,
        "REELSERVE_MODELS_PATH": str(models_dir),
        "REELSERVE_WORKER_POLL_S": "0.1",
        "REELSERVE_FAKE_STEPS": "8",
        "REELSERVE_FAKE_STEP_S": "0",
    }
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reelserve",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited:\n{log.read_text()}")
        try:
            ready = httpx.get(f"{base}/readyz", timeout=2).json()
            if ready.get("models"):
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    key = KEY_LINE.search(log.read_text())
    assert key, log.read_text()
    return proc, base, key.group(1), log


def run_once(
    base: str, key: str, model: str, body: dict[str, Any], files: dict[str, Path]
) -> float:
    """Seconds from the create request to the terminal SSE event, as a client sees it."""
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{base}/generation/sse/{model}"
    started = time.perf_counter()
    handles = {name: path.open("rb") for name, path in files.items()}
    try:
        request: dict[str, Any]
        if files:
            request = {
                "data": {k: str(v) for k, v in body.items()},
                "files": {n: (p.name, handles[n]) for n, p in files.items()},
            }
        else:
            request = {"json": body}
        last: dict[str, Any] = {}
        with httpx.stream("POST", url, headers=headers, timeout=300, **request) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    last = json.loads(line[6:])
    finally:
        for handle in handles.values():
            handle.close()
    elapsed = time.perf_counter() - started
    if last.get("status") != "COMPLETED":
        raise SystemExit(f"{model} ended {last.get('status')}: {last.get('message')}")
    return elapsed


def measure(profile: str, repeat: int, work: Path) -> dict[str, float]:
    proc, base, key, _ = start(profile, work / profile, work / "models")
    try:
        results = {}
        for name, (model, body, files) in MODES.items():
            run_once(base, key, model, body, files)  # warm-up: first load of the pipelines
            times = [run_once(base, key, model, body, files) for _ in range(repeat)]
            results[name] = statistics.median(times)
        return results
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_started = time.perf_counter()
        baseline = measure("fake", args.repeat, work)
        tiny = measure("tiny", args.repeat, work)
        total = time.perf_counter() - build_started
    print(
        f"median wall seconds per job over {args.repeat} runs, through the HTTP API "
        f"({os.cpu_count()} CPUs)"
    )
    print(f"{'mode':<24}{'fake (service only)':>22}{'tiny (diffusers)':>20}{'tiny/fake':>12}")
    for name in MODES:
        print(
            f"{name:<24}{baseline[name]:>22.2f}{tiny[name]:>20.2f}"
            f"{tiny[name] / baseline[name]:>12.2f}"
        )
    print(f"whole benchmark, including building the tiny checkpoints: {total:.1f} s")


if __name__ == "__main__":
    main()
