"""The service as a user runs it: ``reelserve serve`` and ``reelserve worker`` processes,
driven over loopback HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from reelserve.media import probe_output
from tests.acceptance.harness import Deployment, reelserve
from tests.fixtures import CLIP_WITH_AUDIO, LANDSCAPE_PNG, SQUARE_JPEG

pytestmark = pytest.mark.slow
MODEL = "kling-ai/kling-v2.6"


def _sse(deployment: Deployment, body: dict[str, object]) -> list[dict[str, object]]:
    records = []
    with httpx.stream(
        "POST",
        f"{deployment.base}/generation/sse/{MODEL}",
        json=body,
        headers=deployment.headers,
        timeout=180,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            assert not line.startswith("event:")
            if line.startswith("data: "):
                records.append(json.loads(line[6:]))
    return records


def _multipart(
    deployment: Deployment, model: str, data: dict[str, str], files: dict[str, Path]
) -> dict[str, object]:
    handles = {name: path.open("rb") for name, path in files.items()}
    try:
        response = httpx.post(
            f"{deployment.base}/generation/{model}",
            data=data,
            files={name: (path.name, handles[name]) for name, path in files.items()},
            headers=deployment.headers,
            timeout=60,
        )
    finally:
        for handle in handles.values():
            handle.close()
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_every_mode_with_a_separate_tiny_worker(deployment: Deployment, tmp_path: Path) -> None:
    deployment.start_server("--no-worker")
    assert deployment.key.startswith("rs_")
    deployment.start_worker("tiny")
    ready = httpx.get(f"{deployment.base}/readyz").json()
    assert "random weights" in ready["warning"]

    events = _sse(deployment, {"prompt": "a cat walking through neon rain", "seed": 1})
    assert events[0]["status"] == "IN_QUEUE"
    assert events[-1]["status"] == "COMPLETED", events[-1]
    assert any(e["status"] == "IN_PROGRESS" for e in events)
    text_video = events[-1]["data"]["video"]  # type: ignore[index]

    image = _multipart(
        deployment,
        MODEL,
        {"prompt": "a lighthouse", "aspect_ratio": "9:16"},
        {"image_url": LANDSCAPE_PNG},
    )
    first_last = _multipart(
        deployment,
        MODEL,
        {"prompt": "day to night", "aspect_ratio": "1:1"},
        {"image_url": LANDSCAPE_PNG, "end_image_url": SQUARE_JPEG},
    )
    motion = _multipart(
        deployment,
        "kling-ai/motion-control-v2.6",
        {},
        {"image_url": SQUARE_JPEG, "video_url": CLIP_WITH_AUDIO},
    )
    done = {
        name: deployment.wait(str(record["id"]))
        for name, record in (("image", image), ("first_last", first_last), ("motion", motion))
    }
    for name, record in done.items():
        assert record["status"] == "COMPLETED", (name, record)
    assert (text_video["width"], text_video["height"], text_video["duration"]) == (1280, 720, 5.04)
    assert text_video["has_audio"] is True
    image_video = done["image"]["data"]["video"]
    assert (image_video["width"], image_video["height"]) == (720, 1280)
    square = done["first_last"]["data"]["video"]
    assert (square["width"], square["height"], square["has_audio"]) == (960, 960, True)
    motion_video = done["motion"]["data"]["video"]
    assert abs(motion_video["duration"] - 3.5) < 0.05
    assert motion_video["has_audio"] is True
    assert done["motion"]["usage"]["total"] == 16

    # The file behind the signed URL is what the record says it is.
    path = tmp_path / "text.mp4"
    path.write_bytes(httpx.get(text_video["url"], timeout=30).content)
    info = probe_output(path)
    assert (info.width, info.height, info.duration, info.video_codec) == (1280, 720, 5.04, "h264")
    assert (info.audio_codec, info.audio_channels) == ("aac", 2)


def test_sigkill_of_a_worker_loses_nothing_and_charges_once(deployment: Deployment) -> None:
    deployment.start_server("--no-worker")
    doomed = deployment.start_worker("fake", REELSERVE_FAKE_STEPS="40", REELSERVE_FAKE_STEP_S="0.1")
    record = httpx.post(
        f"{deployment.base}/generation/{MODEL}", json={"prompt": "x"}, headers=deployment.headers
    ).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = httpx.get(
            f"{deployment.base}/generation/{record['id']}", headers=deployment.headers
        ).json()
        if now["status"] == "IN_PROGRESS" and now["progress"] > 10:
            break
        time.sleep(0.05)
    assert now["status"] == "IN_PROGRESS"
    doomed.kill()
    deployment.start_worker("fake", REELSERVE_FAKE_STEPS="4", REELSERVE_FAKE_STEP_S="0.01")
    final = deployment.wait(record["id"], timeout=60)
    assert final["status"] == "COMPLETED", final
    assert final["usage"]["total"] == 20
    credits = httpx.get(f"{deployment.base}/credits", headers=deployment.headers).json()
    assert credits["total"] == 1000 - 20
    shown = reelserve("credits", "show", "--workspace", "default", env=deployment.env)
    assert "total 980" in shown


def test_concurrent_creates_accept_exactly_what_the_credits_cover(
    deployment: Deployment,
) -> None:
    deployment.start_server()  # embedded worker, tiny profile
    key = reelserve("keys", "create", "--workspace", "lean", env=deployment.env).strip()
    assert key.startswith("rs_")
    assert "\n" not in key
    reelserve("credits", "grant", "--workspace", "lean", "--permanent", "45", env=deployment.env)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        response = httpx.post(
            f"{deployment.base}/generation/{MODEL}",
            json={"prompt": "x"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200] + [402] * 6
    shown = reelserve("credits", "show", "--workspace", "lean", env=deployment.env)
    assert "permanent 5" in shown


def test_loopback_and_metadata_urls_are_never_fetched(deployment: Deployment) -> None:
    deployment.start_server("--no-worker")
    deployment.start_worker("fake")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        for url in (
            f"http://127.0.0.1:{port}/a.png",
            f"http://localhost:{port}/a.png",
            f"http://2130706433:{port}/a.png",
            "http://169.254.169.254/latest/meta-data",
            f"http://[::ffff:127.0.0.1]:{port}/a.png",
        ):
            response = httpx.post(
                f"{deployment.base}/generation/{MODEL}",
                json={"prompt": "x", "image_url": url},
                headers=deployment.headers,
            )
            assert response.status_code == 400, (url, response.text)
            assert "image_url" in response.json()["message"]
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
