"""Every method of the sync client against a real reelserve server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelserve.client import (
    Client,
    ConflictError,
    Generation,
    GenerationCanceledError,
    GenerationFailedError,
    RunningItem,
    Status,
    WaitTimeoutError,
)
from tests.client.conftest import Account
from tests.fixtures import CLIP_WITH_AUDIO, LANDSCAPE_PNG, SQUARE_JPEG
from tests.live_service import MOTION_MODEL
from tests.media_server import serve_files

FAST_POLL = 0.05


def test_create_sends_json_and_returns_the_queued_record(qclient: Client) -> None:
    record = qclient.generations.create(prompt="a cat in neon rain", mood="calm", seed=7)
    assert isinstance(record, Generation)
    assert record.id.startswith("gen_")
    assert record.status == Status.IN_QUEUE
    assert not record.done
    assert record.data is None
    assert record.video is None
    assert record.usage is not None
    assert record.usage.total == 20
    assert record.input["prompt"] == "a cat in neon rain"
    assert record.input["mood"] == "calm"  # unknown keys are echoed
    assert record.input["seed"] == 7
    assert isinstance(record.queue_position, int)  # shared queue: other tests queue too
    assert record.created_at is not None
    again = qclient.generations.get(record.id)
    assert (again.id, again.status, again.input) == (record.id, record.status, record.input)


def test_create_uploads_a_path_as_a_multipart_file(qclient: Client, tmp_path: Path) -> None:
    record = qclient.generations.create(
        prompt="from a still", image=LANDSCAPE_PNG, duration=10, generate_audio=False
    )
    # Text parts are coerced by the server: "10" -> 10, "false" -> False.
    assert record.input["duration"] == 10
    assert record.input["generate_audio"] is False
    image_url = record.input["image_url"]
    assert "/api/v1/files/uploads/" in image_url
    # The stored upload is the same bytes, reachable by its signed URL.
    out = qclient.generations.download(image_url, tmp_path / "upload.png")
    assert out.read_bytes() == LANDSCAPE_PNG.read_bytes()


def test_create_uploads_bytes_and_mixes_them_with_paths(qclient: Client) -> None:
    record = qclient.generations.create(
        prompt="first to last", image=LANDSCAPE_PNG.read_bytes(), end_image=SQUARE_JPEG
    )
    assert "/files/uploads/" in record.input["image_url"]
    assert record.input["end_image_url"].split("?")[0].endswith(".jpg")


def test_create_motion_control_uploads_the_reference_video(qclient: Client) -> None:
    record = qclient.generations.create(
        MOTION_MODEL, image=LANDSCAPE_PNG, video=CLIP_WITH_AUDIO, character_orientation="image"
    )
    assert record.input["feature"] == "motion-control"
    assert record.usage is not None
    assert record.usage.total == 16  # 3.5 s reference -> 4 billed seconds x 4


def test_create_and_wait_then_download_and_follow(client: Client, tmp_path: Path) -> None:
    done = client.generations.create_and_wait(prompt="a dog", poll_interval=FAST_POLL)
    assert done.status == Status.COMPLETED
    assert done.done
    video = done.video
    assert video is not None
    assert done.videos == [video]
    assert (video.width, video.height, video.duration) == (1280, 720, 5.04)
    assert video.has_audio is True
    assert video.content_type == "video/mp4"
    assert video.expires_at is not None
    assert done.progress == 100
    assert done.completed_at is not None

    path = client.generations.download(done, tmp_path / "out.mp4")
    assert path == tmp_path / "out.mp4"
    head = path.read_bytes()[:12]
    assert head[4:8] == b"ftyp"  # an MP4 starts with its ftyp box
    into_dir = client.generations.download(video, tmp_path)
    assert into_dir == tmp_path / f"{done.id}.mp4"
    assert into_dir.read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob("*.part"))

    # Following a finished task replays its whole history, terminal record last.
    replay = list(client.generations.follow(done.id))
    assert replay[0].status == Status.IN_QUEUE
    assert replay[-1].status == Status.COMPLETED
    assert replay[-1].video is not None


def test_stream_yields_every_state_from_queued_to_completed(client: Client) -> None:
    records = list(client.generations.stream(prompt="a fox", generate_audio=False))
    statuses = [r.status for r in records]
    assert statuses[0] == Status.IN_QUEUE
    assert statuses[-1] == Status.COMPLETED
    assert Status.IN_PROGRESS in statuses
    assert len({r.id for r in records}) == 1
    progress = [r.progress or 0 for r in records]
    assert progress == sorted(progress)
    last = records[-1].video
    assert last is not None
    assert last.has_audio is False


def test_follow_a_running_task(client: Client) -> None:
    record = client.generations.create(prompt="a bird", aspect_ratio="9:16")
    seen = list(client.generations.follow(record.id))
    assert seen[-1].status == Status.COMPLETED
    assert [r.status for r in seen].count(Status.COMPLETED) == 1
    video = seen[-1].video
    assert video is not None
    assert (video.width, video.height) == (720, 1280)


def test_running_lists_queued_tasks_newest_first(qclient: Client) -> None:
    ids = [qclient.generations.create(prompt=f"p{i}").id for i in range(3)]
    running = qclient.generations.running(limit=2)
    assert all(isinstance(item, RunningItem) for item in running)
    assert [item.id for item in running] == [ids[2], ids[1]]
    assert running[0].status == Status.IN_QUEUE
    assert running[0].usage is not None
    assert running[0].usage.total == 20
    assert running[0].input["prompt"] == "p2"
    assert [i.id for i in qclient.generations.running()] == ids[::-1]


def test_list_pages_with_a_cursor_and_iter_all_walks_them(qclient: Client) -> None:
    ids = [qclient.generations.create(prompt=f"p{i}").id for i in range(5)]
    first = qclient.generations.list(limit=2)
    assert [r.id for r in first.items] == [ids[4], ids[3]]
    assert first.has_more
    second = qclient.generations.list(limit=2, cursor=first.next_cursor)
    assert [r.id for r in second.items] == [ids[2], ids[1]]
    third = qclient.generations.list(limit=2, cursor=second.next_cursor)
    assert [r.id for r in third.items] == [ids[0]]
    assert third.next_cursor is None
    assert [r.id for r in qclient.generations.iter_all(limit=2)] == ids[::-1]
    qclient.generations.cancel(ids[0])
    canceled = qclient.generations.list(status=Status.CANCELED)
    assert [r.id for r in canceled.items] == [ids[0]]


def test_cancel_queued_then_again_is_a_conflict_with_the_record(qclient: Client) -> None:
    record = qclient.generations.create(prompt="x")
    assert qclient.credits().total == 980
    canceled = qclient.generations.cancel(record.id)
    assert canceled.status == Status.CANCELED
    assert canceled.usage is not None
    assert canceled.usage.total == 0
    assert qclient.credits().total == 1000
    with pytest.raises(ConflictError) as info:
        qclient.generations.cancel(record.id)
    assert info.value.status == 409
    assert info.value.code == "CONFLICT"
    assert info.value.record is not None
    assert info.value.record.id == record.id
    assert info.value.record.status == Status.CANCELED
    with pytest.raises(GenerationCanceledError) as waited:
        qclient.generations.wait(record.id, poll_interval=FAST_POLL)
    assert waited.value.record.id == record.id


def test_cancel_a_finished_task_is_a_conflict(client: Client) -> None:
    # A task that fails at once (its image URL answers 404) is finished without encoding.
    with serve_files({}) as base:
        record = client.generations.create(prompt="x", image=f"{base}/missing.png")
        with pytest.raises(GenerationFailedError) as failed:
            client.generations.wait(record.id, timeout=30, poll_interval=FAST_POLL)
    assert failed.value.code == "VIDEO_GENERATION_INVALID_INPUT"
    assert "image_url" in failed.value.message
    assert failed.value.record.status == Status.FAILED
    with pytest.raises(ConflictError) as info:
        client.generations.cancel(record.id)
    assert info.value.record is not None
    assert info.value.record.status == Status.FAILED


def test_wait_gives_up_after_its_timeout(qclient: Client) -> None:
    record = qclient.generations.create(prompt="x")
    with pytest.raises(WaitTimeoutError) as info:
        qclient.generations.wait(record.id, timeout=0.2, poll_interval=FAST_POLL)
    assert info.value.record.status == Status.IN_QUEUE
    assert isinstance(info.value, TimeoutError)


def test_credits_report_the_workspace_balances(qclient: Client, queued: Account) -> None:
    credits = qclient.credits()
    assert credits.workspace == queued.workspace
    assert (credits.total, credits.permanent, credits.subscription) == (1000, 1000, 0)
    assert credits.subscription_period_end is None
    qclient.generations.create(prompt="x")
    assert qclient.credits().total == 980


def test_the_same_idempotency_key_returns_the_first_task(qclient: Client) -> None:
    first = qclient.generations.create(prompt="x", idempotency_key="order-42")
    second = qclient.generations.create(prompt="x", idempotency_key="order-42")
    assert second.id == first.id
    assert qclient.credits().total == 980  # charged once
    # Without a key each create gets its own generated one: two tasks.
    a = qclient.generations.create(prompt="x")
    b = qclient.generations.create(prompt="x")
    assert a.id != b.id
