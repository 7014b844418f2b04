"""Retention on SQLite and PostgreSQL, with real blob stores (the local folder, and S3 on
a real S3-compatible server on loopback): files of finished tasks past their age are
deleted, the task is marked, and the record says the file expired."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reelserve.blobs import open_blobs
from reelserve.core.ids import new_generation_id
from reelserve.core.ports import Blobs, NewGeneration
from reelserve.core.records import Generation, present, snapshot
from reelserve.core.retention import FileKind
from reelserve.services.retention import RetentionPolicy, RetentionReport, expire_once
from reelserve.settings import Settings
from reelserve.store import SqlStore
from tests.conftest import funded
from tests.s3_server import S3Server

MODEL = "kling-ai/kling-v2.6"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    settings = Settings(data_dir=tmp_path / "data")
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        settings = settings.with_overrides(**server.settings_overrides(server.new_bucket()))
    return open_blobs(settings)


def finished(
    store: SqlStore, blobs: Blobs, tmp_path: Path, workspace_id: str, *, complete: bool = True
) -> Generation:
    """A task with an uploaded image that ran to COMPLETED (or FAILED) with its files stored."""
    gen_id = new_generation_id()
    upload = f"uploads/{workspace_id}/{gen_id}-image_url.png"
    output = f"outputs/{workspace_id}/{gen_id}-1.mp4"
    source = tmp_path / f"{gen_id}.bin"
    source.write_bytes(b"bytes of " + gen_id.encode())
    blobs.put_file(upload, source)
    store.submit(
        NewGeneration(
            id=gen_id,
            workspace_id=workspace_id,
            model=MODEL,
            mode="image-to-video",
            input={"prompt": "waves", "image_url": f"blob:{upload}"},
            plan={},
            price=20,
            max_attempts=1,
            deadline_s=3600.0,
        ),
        None,
    )
    claimed = store.claim("w1", [MODEL], 30)
    assert claimed is not None
    assert claimed.id == gen_id
    if complete:
        blobs.put_file(output, source)
        video = {"key": output, "file_name": f"{gen_id}.mp4", "width": 1280, "height": 720}
        return store.complete(gen_id, 1, "w1", {"type": "video", "videos": [video]}, 20)
    return store.fail(gen_id, 1, "w1", "VIDEO_GENERATION_FAILED", "no")


def keys(gen: Generation) -> tuple[str, str]:
    upload = gen.input["image_url"].removeprefix("blob:")
    return upload, f"outputs/{gen.workspace_id}/{gen.id}-1.mp4"


def shown(gen: Generation) -> dict[str, object]:
    """The public record, with a stand-in signer (links are tested with the blob stores)."""
    return present(snapshot(gen), lambda key: (f"https://h/{key}", datetime.now(UTC)))


def test_files_past_their_age_expire_and_the_record_says_so(
    store: SqlStore, blobs: Blobs, tmp_path: Path
) -> None:
    ws = funded(store, permanent=100)
    old = finished(store, blobs, tmp_path, ws.id)
    time.sleep(1.0)
    young = finished(store, blobs, tmp_path, ws.id)
    # The young task is 0.8 s from its age: room for a slow machine.
    report = expire_once(store, blobs, RetentionPolicy(output_age_s=0.8, upload_age_s=0.8))

    assert report == RetentionReport(outputs=1, uploads=1, failed=0)
    for key in keys(old):
        assert not blobs.exists(key)
    for key in keys(young):
        assert blobs.exists(key)
    reloaded = store.get(old.id)
    assert reloaded is not None
    assert reloaded.outputs_expired_at is not None
    assert reloaded.uploads_expired_at is not None
    record = shown(reloaded)
    video = record["data"]["videos"][0]  # type: ignore[index]
    assert video["url"] is None
    assert video["expires_at"] is None
    assert video["expired_at"].endswith("Z")
    assert (video["file_name"], video["width"], video["height"]) == (f"{old.id}.mp4", 1280, 720)
    assert "key" not in video
    assert record["data"]["video"] == video  # type: ignore[index]
    assert record["input"]["image_url"] is None  # type: ignore[index]
    assert record["input"]["prompt"] == "waves"  # type: ignore[index]
    # Its stored events read the same, so a replayed stream shows no dead links.
    replay = store.events_after(old.id, 0)
    assert [e.status.value for e in replay][-1] == "COMPLETED"
    assert all(e.snapshot["input"]["image_url"] is None for e in replay)
    assert replay[-1].snapshot["data"]["videos"][0]["expired_at"] == video["expired_at"]
    assert store.events_after(young.id, 0)[0].snapshot["input"]["image_url"].startswith("blob:")
    # The young task is untouched and still links to its files.
    young_record = shown(store.get(young.id))  # type: ignore[arg-type]
    assert young_record["data"]["videos"][0]["url"].startswith("https://h/outputs/")  # type: ignore[index]


def test_each_kind_has_its_own_age_and_zero_keeps_forever(
    store: SqlStore, blobs: Blobs, tmp_path: Path
) -> None:
    ws = funded(store, permanent=100)
    done = finished(store, blobs, tmp_path, ws.id)
    failed = finished(store, blobs, tmp_path, ws.id, complete=False)
    time.sleep(0.2)
    assert expire_once(store, blobs, RetentionPolicy(0, 0)) == RetentionReport()
    # Uploads only: a FAILED task's upload goes too; the COMPLETED task keeps its output.
    report = expire_once(store, blobs, RetentionPolicy(output_age_s=0, upload_age_s=0.1))
    assert report == RetentionReport(outputs=0, uploads=2)
    upload, output = keys(done)
    assert not blobs.exists(upload)
    assert blobs.exists(output)
    assert not blobs.exists(keys(failed)[0])
    record = shown(store.get(done.id))  # type: ignore[arg-type]
    assert record["data"]["videos"][0]["url"] is not None  # type: ignore[index]
    assert record["input"]["image_url"] is None  # type: ignore[index]


def test_replicas_running_it_at_once_expire_each_task_once(
    store: SqlStore, blobs: Blobs, tmp_path: Path
) -> None:
    ws = funded(store, permanent=1000)
    tasks = [finished(store, blobs, tmp_path, ws.id) for _ in range(8)]
    time.sleep(0.2)
    policy = RetentionPolicy(output_age_s=0.1, upload_age_s=0.1, batch=3)
    reports: list[RetentionReport] = []
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            reports.append(expire_once(store, blobs, policy))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(r.outputs for r in reports) == len(tasks)  # each mark made exactly once
    assert sum(r.uploads for r in reports) == len(tasks)
    for gen in tasks:
        assert not any(blobs.exists(key) for key in keys(gen))
        assert store.mark_expired(gen.id, FileKind.OUTPUTS) is False  # already marked


@pytest.mark.s3
def test_a_failed_delete_leaves_the_task_for_the_next_run(
    store: SqlStore, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    blobs = open_blobs(
        Settings(data_dir=tmp_path).with_overrides(**s3_server.settings_overrides(bucket))
    )
    ws = funded(store, permanent=100)
    gen = finished(store, blobs, tmp_path, ws.id)
    time.sleep(0.2)
    # A store that refuses: the same server, a bucket that is not there.
    missing = open_blobs(
        Settings(data_dir=tmp_path).with_overrides(
            **s3_server.settings_overrides("reelserve-no-such-bucket")
        )
    )
    policy = RetentionPolicy(output_age_s=0.1, upload_age_s=0)
    assert expire_once(store, missing, policy) == RetentionReport(failed=1)
    reloaded = store.get(gen.id)
    assert reloaded is not None
    assert reloaded.outputs_expired_at is None
    assert expire_once(store, blobs, policy) == RetentionReport(outputs=1)
    assert not blobs.exists(keys(gen)[1])
