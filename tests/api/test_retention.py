"""Retention through the running service: the background job deletes the files of old
tasks and the record then shows the video's metadata with ``url: null`` and ``expired_at``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reelserve.client import Client
from tests.api.conftest import MODEL, ServiceFactory
from tests.fixtures import LANDSCAPE_PNG


def test_the_record_says_when_files_expired(make_service: ServiceFactory, tmp_path: Path) -> None:
    service = make_service(output_retention_s=0.5, upload_retention_s=0.5, retention_interval_s=0.1)
    with LANDSCAPE_PNG.open("rb") as start:
        response = service.client.post(
            f"/api/v1/generation/{MODEL}",
            headers=service.auth,
            data={"prompt": "the waves roll in"},
            files={"image_url": ("start.png", start, "image/png")},
        )
    assert response.status_code == 200, response.text
    done = service.wait(response.json()["id"])
    assert done["status"] == "COMPLETED", done
    link = done["data"]["videos"][0]["url"]
    upload_link = done["input"]["image_url"]
    assert service.client.get(link).status_code == 200

    expired = service.wait(
        done["id"], timeout=15, until=lambda r: r["data"]["videos"][0]["url"] is None
    )
    video = expired["data"]["videos"][0]
    assert video["expires_at"] is None
    assert video["expired_at"] >= done["completed_at"]
    assert video["file_name"] == done["data"]["videos"][0]["file_name"]
    assert expired["data"]["video"] == video
    assert expired["input"]["image_url"] is None
    # The links handed out before are dead: the files are gone.
    assert service.client.get(link).status_code == 404
    assert service.client.get(upload_link).status_code == 404
    assert not list(service.settings.blobs_dir.rglob("*.mp4"))
    # History shows the same.
    history = service.client.get("/api/v1/generations", headers=service.auth).json()
    assert history["items"][0]["data"]["videos"][0]["url"] is None
    # A replayed stream tells the same: its stored events were rewritten, none was added.
    stream = service.client.get(f"/api/v1/generation/{done['id']}/events", headers=service.auth)
    replayed = [
        json.loads(line.removeprefix("data: "))
        for line in stream.text.splitlines()
        if line.startswith("data: ")
    ]
    assert [r["status"] for r in replayed][-1] == "COMPLETED"
    assert all(r["input"]["image_url"] is None for r in replayed)
    assert replayed[-1]["data"]["videos"][0] == video
    time.sleep(0.3)  # another tick changes nothing
    assert service.get(done["id"]) == expired

    # The SDK reads the expired record and refuses to download it, saying why.
    with Client("http://testserver/api/v1", service.key, http_client=service.client) as sdk:
        record = sdk.generations.get(done["id"])
        assert record.video is not None
        assert record.video.url is None
        assert record.video.expired_at is not None
        with pytest.raises(ValueError, match="expired"):
            sdk.generations.download(record, tmp_path)
