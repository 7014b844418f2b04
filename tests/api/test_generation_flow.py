"""Create, follow and download, end to end through the ASGI app."""

from __future__ import annotations

import json
from pathlib import Path

from reelserve.media import probe_output
from tests.api.conftest import MODEL, Service, assert_error
from tests.fixtures import CLIP_WITH_AUDIO, LANDSCAPE_PNG, PORTRAIT_WEBP, SQUARE_JPEG


def test_text_to_video_completes_with_the_contract_record(service: Service, tmp_path: Path) -> None:
    response = service.create({"prompt": "a cat walking through neon rain", "mood": "calm"})
    assert response.status_code == 200, response.text
    record = response.json()
    assert list(record)[:2] == ["id", "status"]
    assert record["id"].startswith("gen_")
    assert record["status"] == "IN_QUEUE"
    assert record["data"] is None
    assert record["usage"] == {"total": 20, "subscription": 0, "permanent": 20}
    assert record["input"] == {
        "prompt": "a cat walking through neon rain",
        "feature": "text-image-to-video",
        "generate_audio": True,
        "aspect_ratio": "16:9",
        "character_orientation": "video",
        "quality": "standard",
        "keep_original_sound": True,
        "duration": 5,
        "mood": "calm",
        "n": 1,
    }

    done = service.wait(record["id"])
    assert done["status"] == "COMPLETED", done
    assert done["progress"] == 100
    assert done["queue_position"] is None
    assert done["usage"] == {"total": 20, "subscription": 0, "permanent": 20}
    assert "code" not in done
    video = done["data"]["videos"][0]
    assert done["data"]["video"] == video
    assert done["data"]["type"] == "video"
    assert done["data"]["actual_prompt"] == "a cat walking through neon rain"
    assert video["file_name"] == f"{record['id']}.mp4"
    assert video["content_type"] == "video/mp4"
    assert (video["width"], video["height"], video["fps"]) == (1280, 720, 24)
    assert video["duration"] == 5.04
    assert video["has_audio"] is True
    assert video["expires_at"].endswith("Z")
    assert service.credits()["total"] == 980

    # The signed link needs no Bearer token.
    download = service.client.get(video["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    path = tmp_path / "out.mp4"
    path.write_bytes(download.content)
    info = probe_output(path)
    assert (info.width, info.height, info.duration, info.fps) == (1280, 720, 5.04, 24)
    assert info.video_codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert info.audio_codec == "aac"
    assert info.audio_channels == 2


def test_sizes_follow_aspect_ratio_and_duration(service: Service) -> None:
    tall = service.create(
        {"prompt": "x", "aspect_ratio": "9:16", "duration": 10, "generate_audio": False}
    ).json()
    square = service.create({"prompt": "x", "aspect_ratio": "1:1", "quality": "pro"}).json()
    assert tall["usage"]["total"] == 30  # 3 credits/s without audio
    assert square["usage"]["total"] == 35  # 7 credits/s pro with audio
    tall_video = service.wait(tall["id"])["data"]["video"]
    square_video = service.wait(square["id"])["data"]["video"]
    assert (tall_video["width"], tall_video["height"]) == (720, 1280)
    assert tall_video["duration"] == 10.04
    assert tall_video["has_audio"] is False
    assert (square_video["width"], square_video["height"]) == (960, 960)


def test_image_modes_through_multipart_uploads(service: Service) -> None:
    with LANDSCAPE_PNG.open("rb") as start, SQUARE_JPEG.open("rb") as end:
        response = service.client.post(
            f"/api/v1/generation/{MODEL}",
            headers=service.auth,
            data={
                "prompt": "from first to last",
                "duration": "10",
                "generate_audio": "false",
                "seed": "7",
            },
            files={
                "image_url": ("start.png", start, "image/png"),
                "end_image_url": ("end.jpg", end, "image/jpeg"),
            },
        )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["input"]["duration"] == 10
    assert record["input"]["generate_audio"] is False
    assert record["input"]["seed"] == 7
    assert "/api/v1/files/uploads/" in record["input"]["image_url"]
    assert record["input"]["end_image_url"].split("?")[0].endswith(".jpg")
    # The stored upload is reachable by its signed URL and is the same bytes.
    assert service.client.get(record["input"]["image_url"]).content == LANDSCAPE_PNG.read_bytes()
    done = service.wait(record["id"])
    assert done["status"] == "COMPLETED", done
    assert done["data"]["video"]["duration"] == 10.04


def test_image_to_video_from_a_url(make_service: object) -> None:
    from tests.media_server import serve_files

    svc = make_service(allow_private_urls=True)  # type: ignore[operator]
    with serve_files({"/portrait.webp": PORTRAIT_WEBP.read_bytes()}) as base:
        record = svc.create(
            {"prompt": "x", "image_url": f"{base}/portrait.webp", "aspect_ratio": "9:16"}
        ).json()
        done = svc.wait(record["id"])
    assert done["status"] == "COMPLETED", done
    assert done["input"]["image_url"] == f"{base}/portrait.webp"


def test_motion_control_with_uploads_bills_the_reference_length(service: Service) -> None:
    with LANDSCAPE_PNG.open("rb") as image, CLIP_WITH_AUDIO.open("rb") as video:
        response = service.client.post(
            "/api/v1/generation/kling-ai/motion-control-v2.6",
            headers=service.auth,
            data={"character_orientation": "image"},
            files={"image_url": ("c.png", image), "video_url": ("ref.mp4", video)},
        )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["input"]["feature"] == "motion-control"
    assert record["usage"]["total"] == 16  # 3.5 s reference → 4 billed seconds × 4
    done = service.wait(record["id"])
    assert done["status"] == "COMPLETED", done
    video = done["data"]["video"]
    assert abs(video["duration"] - 3.5) < 0.05
    assert video["has_audio"] is True  # keep_original_sound copies the reference's track
    assert done["usage"]["total"] == 16


def test_motion_control_from_url_reserves_the_maximum_and_captures_the_actual(
    make_service: object,
) -> None:
    from tests.media_server import serve_files

    svc = make_service(allow_private_urls=True)  # type: ignore[operator]
    files = {"/c.png": LANDSCAPE_PNG.read_bytes(), "/ref.mp4": CLIP_WITH_AUDIO.read_bytes()}
    with serve_files(files) as base:
        record = svc.create(
            {
                "image_url": f"{base}/c.png",
                "video_url": f"{base}/ref.mp4",
                "keep_original_sound": False,
            }
        ).json()
        assert record["usage"]["total"] == 120  # up to 30 s with orientation "video"
        done = svc.wait(record["id"])
    assert done["status"] == "COMPLETED", done
    assert done["usage"]["total"] == 16
    assert done["data"]["video"]["has_audio"] is False
    assert svc.credits()["total"] == 1000 - 16


def test_unfetchable_url_fails_the_task_and_charges_nothing(make_service: object) -> None:
    from tests.media_server import serve_files

    svc = make_service(allow_private_urls=True)  # type: ignore[operator]
    with serve_files({}) as base:
        record = svc.create({"prompt": "x", "image_url": f"{base}/missing.png"}).json()
        done = svc.wait(record["id"])
    assert done["status"] == "FAILED"
    assert done["code"] == "VIDEO_GENERATION_INVALID_INPUT"
    assert "image_url" in done["message"]
    assert done["usage"] == {"total": 0, "subscription": 0, "permanent": 0}
    assert done["data"] is None
    assert svc.credits()["total"] == 1000


def test_sse_streams_data_only_events_to_the_terminal_record(service: Service) -> None:
    with service.client.stream(
        "POST",
        f"/api/v1/generation/sse/{MODEL}",
        headers=service.auth,
        json={"prompt": "a dog"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines()]
    assert not any(line.startswith("event:") for line in lines)
    records = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    ids = [int(line[len("id: ") :]) for line in lines if line.startswith("id: ")]
    assert len(ids) == len(records)
    assert ids == sorted(ids)
    assert records[0]["status"] == "IN_QUEUE"
    assert records[0]["id"]
    assert records[-1]["status"] == "COMPLETED"
    assert records[-1]["data"]["video"]["url"]
    progress = [r["progress"] for r in records]
    assert progress == sorted(progress)
    statuses = [r["status"] for r in records]
    assert statuses.index("IN_PROGRESS") > 0

    # Resuming after the second event replays only what followed it.
    gen_id = records[0]["id"]
    with service.client.stream(
        "GET",
        f"/api/v1/generation/{gen_id}/events",
        headers={**service.auth, "Last-Event-ID": str(ids[1])},
    ) as again:
        resumed = [json.loads(line[6:]) for line in again.iter_lines() if line.startswith("data: ")]
    assert [r["status"] for r in resumed] == statuses[2:]


def test_sse_rejected_before_the_stream_gets_a_json_error(service: Service) -> None:
    response = service.client.post(
        f"/api/v1/generation/sse/{MODEL}", headers=service.auth, json={"duration": 5}
    )
    assert_error(response, 400, "VIDEO_GENERATION_INVALID_INPUT", "prompt")
    assert response.headers["content-type"].startswith("application/json")
